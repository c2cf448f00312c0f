#pragma once
// What most commands share: load an experiment, open its cache, expand the
// matrix, scan keys. Errors are printed to stderr as diagnostics.

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cache/file_digest.h"
#include "cache/store.h"
#include "pipeline/experiment.h"
#include "pipeline/graph.h"
#include "pipeline/scan.h"

namespace qsweep::cli {

/// Exit codes of the qsweep executable.
inline constexpr int k_exit_ok = 0;
inline constexpr int k_exit_failed = 1;     ///< a node failed / verify found corruption
inline constexpr int k_exit_usage = 2;      ///< bad command line, experiment or cache
inline constexpr int k_exit_cancelled = 130;

struct GlobalOptions {
  std::string cache_dir;          ///< --cache; empty = QSWEEP_CACHE, experiment, default
  std::vector<std::string> sets;  ///< --set vars.NAME=VALUE
};

struct Session {
  std::unique_ptr<StageRegistry> registry;
  Experiment exp;
  Graph graph;
  ScanResult scan;
  std::unique_ptr<cache::Store> store;
  std::unique_ptr<cache::FileDigestCache> digests;
};

/// Precedence: --cache, then QSWEEP_CACHE, then the experiment's `cache:`,
/// then .qsweep/cache in the working directory.
std::filesystem::path resolve_cache_dir(const GlobalOptions& g, const Experiment* e);

/// Loads + expands + scans (checking the cache when check_cache). False after
/// printing every diagnostic to stderr. allow_unresolved: nodes whose key
/// needs something unreachable (a Hub revision offline) are left without one
/// (NodeScan::unresolved) instead of failing (plan only; run needs keys).
bool open_session(const std::string& file, const GlobalOptions& g, bool check_cache, Session* s,
                  bool allow_unresolved = false);

/// Opens just the store (status, show, cache ls/verify/gc); nullptr after
/// printing the error. Read-only commands pass create = false: a missing
/// cache is reported, not created.
std::unique_ptr<cache::Store> open_store(const std::filesystem::path& dir, bool create = false);

/// Node indices for command-line targets; prints an error naming the first
/// pattern that matches nothing (with a suggestion) and returns false.
bool resolve_targets(const Graph& g, const std::vector<std::string>& patterns, std::vector<int>* out);

/// "1.2 MiB" style.
std::string human_bytes(uint64_t n);

}  // namespace qsweep::cli
