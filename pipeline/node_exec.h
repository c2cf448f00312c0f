#pragma once
// Running one node where it is: take the key's lock (another qsweep process,
// on this host or another one on a shared filesystem, may hold it: wait, then
// re-check the cache, so no key is ever computed twice at once), run the
// stage into a fresh tmp dir (in its own task_arena when it uses several
// threads) retrying RetryableError with backoff, publish atomically, journal.
// The local runner calls it for every node; `qsweep exec-node` calls it inside
// a Slurm job. Resource admission is the caller's business.

#include <atomic>
#include <string>

#include <nlohmann/json.hpp>

#include "cache/journal.h"
#include "cache/store.h"
#include "pipeline/node_task.h"
#include "pipeline/progress.h"
#include "pipeline/stage.h"

namespace qsweep {

struct ExecOptions {
  std::string run_id;              ///< journal run id
  double retry_base_s = 1;         ///< first retry delay; doubles per attempt, capped at 60 s
  nlohmann::json journal_extra = nlohmann::json::object();  ///< added to every record (e.g. the Slurm job id)
  std::vector<int> gpu_ids;        ///< GPU slots granted (StageContext::gpu_ids)
};

/// Returns kDone (computed and published), kHit (another process published
/// it meanwhile), kFailed (*msg says why) or kCancelled. *ran: seconds the
/// stage body ran (set only when it started). Never throws.
NodeOutcome execute_node(const NodeTask& t, const Stage& impl, const Resources& granted, cache::Store& store,
                         cache::Journal& journal, ProgressView& progress, std::atomic<int>& cancel,
                         const ExecOptions& opts, std::string* msg, double* ran);

/// This machine's host name (manifests, journal records).
std::string host_name();

/// Appends {run, event, node, key, ...extra} to the journal (errors ignored:
/// the journal is a record, never a reason to fail a node).
void journal_node_event(cache::Journal& journal, const std::string& run_id, const char* event,
                        const std::string& node, const std::string& key, nlohmann::json extra = nlohmann::json::object());

}  // namespace qsweep
