#include "pipeline/slurm/slurm_job.h"

#include <algorithm>
#include <sstream>

#include "cache/hash.h"

namespace qsweep::slurm {

namespace fs = std::filesystem;

namespace {

// POSIX-shell single quoting.
std::string sh_quote(const std::string& s) {
  std::string r = "'";
  for (char c : s) r += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return r + "'";
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> r;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      r.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  r.push_back(cur);
  return r;
}

std::string human_mib(uint64_t bytes) {
  const uint64_t mib = (bytes + (1u << 20) - 1) >> 20;
  return mib >= 1024 && mib % 1024 == 0 ? std::to_string(mib / 1024) + "G" : std::to_string(mib) + "M";
}

bool contains(const std::string& hay, const char* needle) { return hay.find(needle) != std::string::npos; }

}  // namespace

SlurmSettings effective_settings(const SlurmSettings& cli, const nlohmann::json& b) {
  SlurmSettings s = cli;
  if (!b.is_object()) return s;
  auto str = [&](const char* k, std::string* dst) {
    if (b.contains(k) && b[k].is_string()) *dst = b[k].get<std::string>();
  };
  str("partition", &s.partition);
  str("account", &s.account);
  str("qos", &s.qos);
  str("constraint", &s.constraint);
  str("time", &s.time);
  if (b.contains("sbatch_args") && b["sbatch_args"].is_array()) {
    // Stage arguments come after the command line's: sbatch lets the last win.
    for (const auto& a : b["sbatch_args"]) s.sbatch_args.push_back(a.get<std::string>());
  }
  if (b.contains("retry_on") && b["retry_on"].is_array()) {
    s.retry_on.clear();
    for (const auto& a : b["retry_on"]) s.retry_on.push_back(a.get<std::string>());
  }
  if (b.contains("resubmits") && b["resubmits"].is_number_integer()) s.resubmits = b["resubmits"].get<int>();
  if (b.contains("local") && b["local"].is_boolean()) s.local = b["local"].get<bool>();
  return s;
}

std::vector<std::string> sbatch_argv(const SlurmSettings& s, const JobSpec& j) {
  std::vector<std::string> a = {"sbatch", "--parsable", "--job-name=" + j.job_name, "--comment=" + j.comment,
                                "--output=" + j.log.string(), "--open-mode=append",
                                "--cpus-per-task=" + std::to_string(std::max(1, j.resources.threads))};
  if (j.resources.memory) a.push_back("--mem=" + human_mib(j.resources.memory));
  if (j.resources.gpu > 0) a.push_back("--gres=gpu:" + std::to_string(j.resources.gpu));
  if (!s.time.empty()) a.push_back("--time=" + s.time);
  if (!s.partition.empty()) a.push_back("--partition=" + s.partition);
  if (!s.account.empty()) a.push_back("--account=" + s.account);
  if (!s.qos.empty()) a.push_back("--qos=" + s.qos);
  if (!s.constraint.empty()) a.push_back("--constraint=" + s.constraint);
  if (!j.after_ok.empty()) {
    std::string d = "--dependency=afterok";
    for (const auto& id : j.after_ok) d += ":" + id;
    a.push_back(d);
    a.push_back("--kill-on-invalid-dep=no");
  }
  for (const auto& x : s.sbatch_args) a.push_back(x);
  a.push_back(j.script.string());
  return a;
}

std::string job_script(const fs::path& qsweep_bin, const fs::path& cache, const std::string& key,
                       const std::string& node, const std::string& run_id) {
  std::ostringstream o;
  o << "#!/bin/sh\n"
    << "# qsweep node " << node << " (key " << key << ")\n"
    << "# Submitted by `qsweep run --executor slurm` (run " << run_id << "); the node's plan is\n"
    << "# " << (cache / "plans" / (key + ".json")).string() << ".\n"
    << "export QSWEEP_RUN_ID=" << sh_quote(run_id) << "\n"
    << "export QSWEEP_SLURM_JOB=\"${SLURM_JOB_ID:-}\"\n"
    << "exec " << sh_quote(qsweep_bin.string()) << " exec-node --cache " << sh_quote(cache.string()) << " "
    << key << "\n";
  return o.str();
}

std::string comment_prefix(const fs::path& cache_root) {
  const std::string root = fs::weakly_canonical(cache_root).string();
  return "qsweep:" + cache::hash_bytes(root.data(), root.size()).hex().substr(0, 8) + ":";
}

std::vector<JobInfo> parse_squeue(const std::string& out) {
  std::vector<JobInfo> r;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    auto f = split(line, '|');
    if (f.size() < 5 || f[0].empty() || !std::isdigit(static_cast<unsigned char>(f[0][0]))) continue;
    JobInfo j{f[0], f[1], f[2], f[3], f[4] == "(null)" ? "" : f[4]};
    if (j.reason == "None") j.reason.clear();
    r.push_back(std::move(j));
  }
  return r;
}

std::vector<JobInfo> parse_sacct(const std::string& out) {
  std::vector<JobInfo> r;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    auto f = split(line, '|');
    if (f.size() < 5 || f[0].empty() || f[0].find('.') != std::string::npos) continue;
    std::string state = f[1].substr(0, f[1].find(' '));  // "CANCELLED by 0"
    JobInfo j{f[0], state, f[2] == "None" ? "" : f[2], f[3], f[4]};
    r.push_back(std::move(j));
  }
  return r;
}

std::vector<JobInfo> parse_jobcomp(const std::string& text) {
  std::vector<JobInfo> r;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    JobInfo j;
    std::istringstream words(line);
    std::string w;
    while (words >> w) {
      size_t eq = w.find('=');
      if (eq == std::string::npos) continue;
      std::string k = w.substr(0, eq), v = w.substr(eq + 1);
      if (k == "JobId") j.id = v;
      else if (k == "JobState") j.state = v;
      else if (k == "ExitCode") j.exit_code = v;
    }
    if (!j.id.empty() && !j.state.empty()) r.push_back(std::move(j));
  }
  return r;
}

bool is_active(const std::string& s) {
  static const char* active[] = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED",
                                 "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESIZING", "SIGNALING",
                                 "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD", "SPECIAL_EXIT"};
  return std::find_if(std::begin(active), std::end(active), [&](const char* a) { return s == a; }) !=
         std::end(active);
}

std::string effective_state(const JobInfo& j, const std::string& log_tail) {
  if (j.state == "OUT_OF_MEMORY") return j.state;
  if ((j.state == "FAILED" || j.state == "CANCELLED") &&
      (contains(log_tail, "exceeded memory limit") || contains(log_tail, "Exceeded job memory limit") ||
       contains(log_tail, "oom-kill") || contains(log_tail, "Out Of Memory")))
    return "OUT_OF_MEMORY";
  return j.state;
}

std::string end_message(const JobInfo& j, const std::string& log_tail, const Resources& r,
                        const std::string& time_limit) {
  const std::string state = effective_state(j, log_tail);
  std::string m = "Slurm job " + j.id + " ended " + state;
  if (!j.reason.empty() && j.reason != "None") m += " (reason " + j.reason + ")";
  if (!j.exit_code.empty() && j.exit_code != "0" && j.exit_code != "0:0") m += ", exit " + j.exit_code;
  if (state == "OUT_OF_MEMORY") {
    m += ": the job exceeded its memory (--mem=" + (r.memory ? human_mib(r.memory) : std::string("the partition default")) +
         "); raise the stage's resources.memory";
  } else if (state == "TIMEOUT") {
    m += ": it hit its time limit (" + (time_limit.empty() ? std::string("the partition default") : "--time=" + time_limit) +
         "); raise the stage's slurm.time or --slurm-time";
  } else if (state == "CANCELLED") {
    m += ": cancelled outside qsweep (scancel, or by an administrator)";
  } else if (state == "NODE_FAIL") {
    m += ": the compute node failed";
  } else if (state == "PREEMPTED") {
    m += ": preempted by a higher-priority job";
  } else if (state == "BOOT_FAIL") {
    m += ": the compute node failed to boot";
  } else if (state == "DEADLINE") {
    m += ": it missed its --deadline";
  }
  return m;
}

}  // namespace qsweep::slurm
