// qsweep exec-node --cache DIR KEY: runs one node from its plan file
// (<cache>/plans/<key>.json, written by the runner) — what a Slurm job of the
// Slurm executor runs. Same key lock, retries and atomic publish as a local
// run; the outcome goes to the cache's journal and to
// <cache>/slurm/<key>/<job>.result.json for the runner:
//   {"outcome": "done"|"hit"|"failed"|"cancelled", "error", "seconds", "host", "job"}
// Exit 0 when the artifact is in the cache (done or hit), 1 on failure, 2 on
// a bad plan or cache, 130 when cancelled (scancel sends SIGTERM).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "cache/atomic_file.h"
#include "cache/journal.h"
#include "pipeline/cli/commands.h"
#include "pipeline/cli/signals.h"
#include "pipeline/node_exec.h"
#include "pipeline/node_task.h"
#include "pipeline/runner.h"
#include "qsweep_version.h"
#include "stages/registry.h"

namespace qsweep::cli {

namespace fs = std::filesystem;

namespace {

std::string env_or(const char* name, const std::string& dflt) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : dflt;
}

}  // namespace

int cmd_exec_node(const GlobalOptions& g, const ExecNodeArgs& a) {
  static std::atomic<int> cancel{0};
  static SignalWatcher watcher(&cancel, "stopping the node at its next checkpoint (nothing is published)",
                               "aborting the node; nothing half-written is published");

  if (g.cache_dir.empty()) {
    std::fprintf(stderr, "qsweep exec-node: error: --cache DIR is required\n");
    return k_exit_usage;
  }
  auto store = open_store(g.cache_dir);
  if (!store) return k_exit_usage;
  NodeTask task;
  std::string err;
  if (!read_node_plan(*store, a.key, &task, &err)) {
    std::fprintf(stderr, "qsweep exec-node: error: %s\n", err.c_str());
    return k_exit_usage;
  }
  auto registry = make_builtin_registry();
  const Stage* impl = registry->find(task.kind);
  if (!impl) {
    std::fprintf(stderr,
                 "qsweep exec-node: error: node %s: this qsweep (%s) has no stage kind '%s'; run the same qsweep "
                 "version on the compute nodes as on the runner\n",
                 task.node.c_str(), QSWEEP_VERSION, task.kind.c_str());
    return k_exit_usage;
  }
  if (impl->version() != task.stage_version) {
    std::fprintf(stderr,
                 "qsweep exec-node: error: node %s: stage kind '%s' is version %lld in this qsweep (%s) but the "
                 "plan was made with version %lld; run the same qsweep on the compute nodes as on the runner\n",
                 task.node.c_str(), task.kind.c_str(), static_cast<long long>(impl->version()), QSWEEP_VERSION,
                 static_cast<long long>(task.stage_version));
    return k_exit_usage;
  }
  for (const auto& [name, in] : task.inputs)
    for (const auto& it : in.items) {
      std::error_code ec;
      if (!fs::exists(it.path, ec)) {
        std::fprintf(stderr,
                     "qsweep exec-node: error: node %s: input '%s' (%s) is not visible on this host: %s; "
                     "the cache and the experiment's files must be on a filesystem shared with the compute nodes\n",
                     task.node.c_str(), name.c_str(), it.node.c_str(), it.path.c_str());
        return k_exit_usage;
      }
    }

  // What this host grants: the job's CPUs (Slurm's allocation, else the machine).
  Resources granted = task.resources;
  int cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (a.threads > 0) cpus = a.threads;
  else if (const char* v = std::getenv("SLURM_CPUS_PER_TASK"); v && std::atoi(v) > 0) cpus = std::atoi(v);
  granted.threads = std::clamp(granted.threads, 1, cpus);

  const std::string host = host_name();
  const std::string job = env_or("SLURM_JOB_ID", "manual-" + std::to_string(getpid()));
  cache::Journal journal(store->journal_path());
  ExecOptions eo;
  eo.run_id = env_or("QSWEEP_RUN_ID", make_run_id());
  eo.journal_extra = {{"job", job}, {"host", host}};
  // Slurm makes the job's GPUs (--gres=gpu:N) devices 0..N-1 through CUDA_VISIBLE_DEVICES.
  for (int i = 0; i < granted.gpu; ++i) eo.gpu_ids.push_back(i);
  auto view = make_line_progress(stderr, /*verbose=*/true);
  std::fprintf(stderr, "qsweep exec-node: %s (key %s) on %s, Slurm job %s, %d thread(s)\n", task.node.c_str(),
               task.key.c_str(), host.c_str(), job.c_str(), granted.threads);
  std::string msg;
  double ran = 0;
  const NodeOutcome out = execute_node(task, *impl, granted, *store, journal, *view, cancel, eo, &msg, &ran);
  const char* name = out == NodeOutcome::kDone ? "done" : out == NodeOutcome::kHit ? "hit"
                     : out == NodeOutcome::kCancelled ? "cancelled" : "failed";
  const nlohmann::json result = {{"outcome", name}, {"error", msg}, {"seconds", ran}, {"host", host},
                                 {"job", job}, {"node", task.node}, {"run", eo.run_id}};
  std::string werr;
  if (!cache::write_file_atomic(store->root() / "slurm" / task.key / (job + ".result.json"), result.dump(1) + "\n", &werr))
    std::fprintf(stderr, "qsweep exec-node: warning: %s (the runner falls back to Slurm's state and the cache)\n",
                 werr.c_str());
  std::fprintf(stderr, "qsweep exec-node: %s %s%s%s\n", task.node.c_str(), name, msg.empty() ? "" : ": ",
               msg.c_str());
  if (out == NodeOutcome::kDone || out == NodeOutcome::kHit) return k_exit_ok;
  return out == NodeOutcome::kCancelled ? k_exit_cancelled : k_exit_failed;
}

}  // namespace qsweep::cli
