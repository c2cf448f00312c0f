#pragma once
// The run journal: append-only JSON lines, one record per event, each written
// with a single write(2) on an O_APPEND descriptor and flushed at once, so a
// crash loses nothing already written and concurrent runners interleave whole
// lines. A torn last line is skipped on load.
//
// Record format version 1 (fields every record has):
//   {"v":1,"t":ISO-8601 UTC,"run":RUN_ID,"event":EVENT, ...}
// Events and their extra fields:
//   run_start   experiment, file, pid, host, argv, cache
//   node_start  node, key
//   node_hit    node, key
//   node_done   node, key, seconds
//   node_failed node, key, error, (attempt)
//   node_retry  node, key, error, attempt, delay_s
//   node_skipped node, key, reason   (upstream failed, or cancelled)
//   run_end     status ("ok" | "failed" | "cancelled"), counts {done,hit,failed,skipped},
//               slurm {sbatch_calls, submit_seconds, monitor_calls, polls, adopted, resubmitted} (or null)
// The Slurm executor (docs/slurm.md) adds:
//   slurm_probe  job                      slurm_probe_failed job, error
//   slurm_submit node, key, job, after [job ids], submit (1, 2, ... with resubmissions)
//   slurm_adopt  node, key, job, state    slurm_cancel node, key, job
//   slurm_end    node, key, job, state, reason, exit
// and the jobs' `qsweep exec-node` writes node_start / node_done / node_hit /
// node_failed / node_retry with job (the Slurm job id) and host.
// A run with run_start and no run_end was interrupted (or is still running:
// `qsweep status` checks whether its pid is alive on this host).

#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace qsweep::cache {

inline constexpr int k_journal_version = 1;

class Journal {
 public:
  explicit Journal(std::filesystem::path path);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  /// Adds "v" and "t" when absent, writes one line. Thread-safe.
  bool append(nlohmann::json record, std::string* err);

  /// All parseable records in file order; a missing file is an empty journal.
  static std::vector<nlohmann::json> load(const std::filesystem::path& path, std::string* err);

 private:
  std::filesystem::path path_;
  std::mutex mu_;
  int fd_ = -1;
};

/// Current time as ISO-8601 UTC with milliseconds, e.g. 2026-11-25T15:21:25.123Z.
std::string iso8601_now();

}  // namespace qsweep::cache
