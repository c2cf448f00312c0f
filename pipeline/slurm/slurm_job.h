#pragma once
// The Slurm side of one node, as pure functions (no processes, no I/O): the
// sbatch command line and job script of a node, parsing what squeue, the
// job-completion log (jobcomp/filetxt) and sacct print, and turning a job's
// end state into a qsweep failure message. slurm_executor.cpp drives them.

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pipeline/stage.h"

namespace qsweep::slurm {

/// How nodes are submitted. The command line (--slurm-*) sets the defaults;
/// a stage's `slurm:` block (Node::slurm) overrides them field by field.
struct SlurmSettings {
  std::string partition, account, qos, constraint;
  std::string time;                      ///< sbatch --time; empty = the partition's default
  std::vector<std::string> sbatch_args;  ///< extra sbatch arguments, appended last
  /// End states after which a node is resubmitted (not counting its own
  /// `retries` for retryable stage errors, which exec-node handles inside the job).
  std::vector<std::string> retry_on = {"NODE_FAIL", "PREEMPTED", "BOOT_FAIL"};
  int resubmits = 2;                     ///< resubmissions per node after those states
  bool local = false;                    ///< run in the runner process instead of a job
};

/// cli with the stage block's fields on top.
SlurmSettings effective_settings(const SlurmSettings& cli, const nlohmann::json& stage_block);

/// What a node's job needs besides its settings.
struct JobSpec {
  std::string job_name;                 ///< "qsweep-<key[0:16]>"
  std::string comment;                  ///< "qsweep:<cache id>:<key>": how a restarted runner finds it
  std::filesystem::path log;            ///< --output (with %j for the job id)
  std::filesystem::path script;         ///< the job script (job_script())
  std::vector<std::string> after_ok;    ///< job ids it must wait for
  Resources resources;                  ///< threads -> --cpus-per-task, memory -> --mem, gpu -> --gres
};

/// ["sbatch", "--parsable", ...flags..., script]. Memory is rounded up to MiB;
/// --kill-on-invalid-dep=no keeps dependents pending when an upstream job
/// fails, so the runner can resubmit the upstream and repoint them.
std::vector<std::string> sbatch_argv(const SlurmSettings& s, const JobSpec& j);

/// The job script: runs `qsweep exec-node --cache CACHE KEY` with the run id
/// in QSWEEP_RUN_ID and QSWEEP_SLURM_JOB set from SLURM_JOB_ID.
std::string job_script(const std::filesystem::path& qsweep_bin, const std::filesystem::path& cache,
                       const std::string& key, const std::string& node, const std::string& run_id);

/// "qsweep:<cache id>:" — cache id: 8 hex digits of the cache root's hash.
std::string comment_prefix(const std::filesystem::path& cache_root);

/// One job as a monitoring command reports it.
struct JobInfo {
  std::string id;
  std::string state;      ///< PENDING, RUNNING, COMPLETED, FAILED, OUT_OF_MEMORY, TIMEOUT, ...
  std::string reason;     ///< squeue's %r (e.g. Dependency, JobLaunchFailure), or empty
  std::string exit_code;  ///< "0", "1", "0:9" (exit:signal) ... as reported
  std::string comment;
};

/// The -O format that parse_squeue reads.
inline constexpr const char* k_squeue_format = "JobID:|,State:|,Reason:|,exit_code:|,Comment:|";
/// Lines "ID|STATE|REASON|EXIT|COMMENT|" -> jobs (malformed lines skipped).
std::vector<JobInfo> parse_squeue(const std::string& out);
/// The sacct format that parse_sacct reads (--parsable2 --noheader).
inline constexpr const char* k_sacct_format = "JobIDRaw,State,Reason,ExitCode,Comment";
/// sacct --parsable2 lines; steps ("123.batch") skipped; "CANCELLED by 0" -> CANCELLED.
std::vector<JobInfo> parse_sacct(const std::string& out);
/// jobcomp/filetxt lines "JobId=12 UserId=... JobState=FAILED ... ExitCode=0:9".
std::vector<JobInfo> parse_jobcomp(const std::string& text);

/// PENDING, RUNNING, CONFIGURING, COMPLETING, SUSPENDED, REQUEUED, ...: the
/// job may still run.
bool is_active(const std::string& state);

/// A job's end, for the user: Slurm's state and reason mapped to what went
/// wrong and what to do. log_tail: the last lines of the job's log, where
/// slurmstepd reports memory-limit kills without cgroups.
std::string end_message(const JobInfo& j, const std::string& log_tail, const Resources& r,
                        const std::string& time_limit);

/// OUT_OF_MEMORY also when the state is FAILED/CANCELLED but the log shows a
/// memory-limit kill (jobacct_gather's OverMemoryKill, the kernel OOM killer).
std::string effective_state(const JobInfo& j, const std::string& log_tail);

}  // namespace qsweep::slurm
