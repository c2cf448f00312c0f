#pragma once
// NodeTask: everything needed to run one node, detached from the Graph — its
// id, kind, key, resolved params and inputs (paths into the cache, local
// files), resources and retry budget. The local runner builds one per node
// and runs it in process; the Slurm executor writes it into the cache as
// <cache>/plans/<key>.json and `qsweep exec-node --cache DIR KEY` rebuilds it
// on a compute node, so both run the same node the same way.
//
// Plan file format (JSON object, "format": "qsweep-node-plan", "version": 1):
//   node, kind, key, stage_version, experiment, experiment_dir, params,
//   inputs {name: {is_list, items [{node, key, path, axes [[axis, value]]}]}},
//   key_fields [{name, value}], resources {threads, memory, gpu, api},
//   retries, qsweep_version.
// Paths are absolute: the cache and the experiment's local input files must
// be on a filesystem the compute nodes see (the Slurm executor probes this).

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cache/hash.h"
#include "cache/store.h"
#include "pipeline/graph.h"
#include "pipeline/scan.h"
#include "pipeline/stage.h"

namespace qsweep {

inline constexpr int k_node_plan_version = 1;

struct NodeTask {
  std::string node;  ///< node id
  std::string kind;
  std::string key;   ///< 32 hex digits
  int64_t stage_version = 0;
  std::string experiment;
  std::filesystem::path experiment_dir;
  nlohmann::json params;
  std::map<std::string, ResolvedInput> inputs;
  std::vector<cache::KeyField> key_fields;
  Resources resources;
  int retries = 0;
};

/// The task of node i of a scanned graph (inputs point into store).
NodeTask make_node_task(const Graph& g, const ScanResult& scan, const cache::Store& store, int i);

nlohmann::json node_task_to_json(const NodeTask& t);

/// Parses a plan file's JSON; false + *err naming the field on anything
/// malformed (never throws).
bool node_task_from_json(const nlohmann::json& j, NodeTask* t, std::string* err);

/// <cache>/plans/<key>.json
std::filesystem::path node_plan_path(const cache::Store& store, const std::string& key);

/// Writes the plan file atomically (tmp + rename); false + *err.
bool write_node_plan(const cache::Store& store, const NodeTask& t, std::string* err);

/// Reads the plan of key; false + *err saying what to do when it is missing.
bool read_node_plan(const cache::Store& store, const std::string& key, NodeTask* t, std::string* err);

}  // namespace qsweep
