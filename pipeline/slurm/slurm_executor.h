#pragma once
// The Slurm executor: every node that must run becomes one Slurm job running
// `qsweep exec-node --cache DIR KEY` (which rebuilds the node from its plan
// file, <cache>/plans/<key>.json, and runs it with the same key lock and
// atomic publish as locally). A node is submitted as soon as each of its
// inputs is cached or queued, with --dependency=afterok on the queued ones,
// so Slurm runs whole waves without the runner.
//
// Monitoring: one `squeue` call per polling interval for all of this run's
// jobs (the interval doubles from poll_min_s to poll_max_s while nothing
// changes); jobs that left squeue are settled from the node's result file
// and the cache, then the job-completion log (jobcomp/filetxt) when the
// cluster keeps one, then one `sacct` call in place of the next squeue where
// accounting is configured. End states map to failures naming Slurm's reason
// (OUT_OF_MEMORY also when slurmstepd's log shows a memory-limit kill);
// states in retry_on (NODE_FAIL, PREEMPTED, BOOT_FAIL by default) are
// resubmitted up to `resubmits` times, the node's queued dependents being
// cancelled and resubmitted after it.
//
// Restart safety: every submission is journaled (slurm_submit, with the job
// id); at start the runner lists its user's jobs once and adopts every queued
// or running job whose comment names this cache and a key it needs (also
// one whose submission it did not live to journal), and settles the rest
// from the cache; exec-node's key lock makes a duplicate job a cache hit.
//
// Before the first node runs, a probe job checks that compute nodes see the
// cache (reads a marker file the runner wrote) and can run this qsweep; the
// first wave waits for it (afterok).
//
// Cancel: 1 = submit nothing more and wait for queued jobs, 2 = scancel them.
// Nodes whose stage says `slurm: {local: true}` run in this process.

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "cache/journal.h"
#include "cache/store.h"
#include "pipeline/executor.h"
#include "pipeline/graph.h"
#include "pipeline/plan.h"
#include "pipeline/progress.h"
#include "pipeline/resources.h"
#include "pipeline/scan.h"
#include "pipeline/slurm/slurm_job.h"

namespace qsweep::slurm {

/// Runs a Slurm client command (argv[0] looked up in PATH): returns its exit
/// status with stdout/stderr in *out/*err, or -1 when it could not be
/// started (*err says why, e.g. not installed). The CLI passes run_process.
using CommandRunner =
    std::function<int(const std::vector<std::string>& argv, std::string* out, std::string* err)>;

struct SlurmRunOptions {
  SlurmSettings defaults;             ///< from --slurm-*; stages' `slurm:` blocks override
  std::filesystem::path qsweep_bin;   ///< absolute path of the qsweep the jobs run
  std::string run_id;
  std::string user;                   ///< whose jobs to adopt (default: $USER / the uid's name)
  double poll_min_s = 2, poll_max_s = 30;
  bool keep_going = false;
  bool probe = true;                  ///< check compute nodes see the cache before the first wave
  Resources local_capacity;           ///< for `local: true` nodes (machine_capacity())
  std::optional<int> max_threads;     ///< --threads: caps every job's --cpus-per-task
  std::map<std::string, std::string> config;  ///< `scontrol show config` (check_slurm_available)
  std::string config_value(const std::string& k) const {
    auto it = config.find(k);
    return it == config.end() ? std::string() : it->second;
  }
};

/// Counters for the benchmark and tests.
struct SlurmStats {
  size_t sbatch_calls = 0;
  size_t monitor_calls = 0;  ///< squeue + sacct + scontrol calls
  size_t polls = 0;          ///< polling intervals that elapsed
  size_t adopted = 0;
  size_t resubmitted = 0;
  double submit_seconds = 0; ///< wall time spent in sbatch
};

class SlurmExecutor : public Executor {
 public:
  SlurmExecutor(const Graph& g, const ScanResult& scan, const Plan& plan, cache::Store& store,
                cache::Journal& journal, ProgressView& progress, SlurmRunOptions opts, CommandRunner cmd);
  ~SlurmExecutor() override;
  RunSummary run(std::atomic<int>& cancel) override;
  const SlurmStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Checks the client commands exist (sbatch, squeue, scancel) and the
/// controller answers; empty or an error message saying what to install or
/// configure. One `scontrol show config` call; *config gets its key/values.
std::string check_slurm_available(const CommandRunner& cmd, std::map<std::string, std::string>* config);

}  // namespace qsweep::slurm
