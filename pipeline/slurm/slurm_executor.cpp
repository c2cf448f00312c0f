#include "pipeline/slurm/slurm_executor.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "cache/atomic_file.h"
#include "pipeline/node_exec.h"
#include "pipeline/node_task.h"

namespace qsweep::slurm {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return {};
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The last n lines of a (possibly large) log file.
std::string tail_lines(const fs::path& p, size_t n) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return {};
  f.seekg(0, std::ios::end);
  const std::streamoff size = f.tellg();
  const std::streamoff from = std::max<std::streamoff>(0, size - 16384);
  f.seekg(from);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t pos = s.size(), count = 0;
  while (pos > 0 && count <= n) {
    pos = s.rfind('\n', pos - 1);
    if (pos == std::string::npos) {
      pos = 0;
      break;
    }
    ++count;
  }
  return s.substr(pos == 0 ? 0 : pos + 1);
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  size_t a = s.find_first_not_of(" \n");
  return a == std::string::npos ? std::string() : s.substr(a);
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string r;
  for (const auto& x : v) r += (r.empty() ? "" : sep) + x;
  return r;
}

}  // namespace

std::string check_slurm_available(const CommandRunner& cmd, std::map<std::string, std::string>* config) {
  std::string out, err;
  for (const char* b : {"sbatch", "squeue", "scancel"}) {
    if (cmd({b, "--version"}, &out, &err) < 0)
      return std::string("'") + b +
             "' was not found: --executor slurm needs the Slurm client commands (sbatch, squeue, scancel, "
             "scontrol) in PATH on this machine (Debian/Ubuntu: apt install slurm-client), or run where they are";
  }
  int rc = cmd({"scontrol", "show", "config"}, &out, &err);
  if (rc != 0)
    return "the Slurm controller does not answer (`scontrol show config` exited " + std::to_string(rc) + ": " +
           trim(err.empty() ? out : err) + "); check SLURM_CONF and that slurmctld runs";
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    size_t eq = line.find(" = ");
    if (eq == std::string::npos) continue;
    (*config)[trim(line.substr(0, eq))] = trim(line.substr(eq + 3));
  }
  return {};
}

struct SlurmExecutor::Impl {
  enum class Phase { kWait, kQueued, kLocal, kEnd };
  struct NodeState {
    Phase phase = Phase::kWait;
    std::string job;             ///< current Slurm job id while queued
    std::string state;           ///< last Slurm state seen
    int submits = 0;
    bool running_seen = false;
    Clock::time_point t_run{};
    NodeOutcome out = NodeOutcome::kSkipped;
    SlurmSettings s;
  };
  enum class Probe { kNone, kQueued, kOk, kFailed };

  const Graph& g;
  const ScanResult& scan;
  const Plan& plan;
  cache::Store& store;
  cache::Journal& journal;
  ProgressView& progress;
  SlurmRunOptions o;
  CommandRunner cmd;
  SlurmStats stats;
  std::string prefix;
  std::vector<NodeState> ns;
  std::vector<char> runs;
  bool stop = false;
  std::vector<int> vanished;  // nodes whose jobs left the queue: settled with sacct at the next poll
  Probe probe = Probe::kNone;
  std::string probe_job, probe_token;
  fs::path probe_dir;
  // `local: true` nodes run on threads of this process.
  ResourcePool pool;
  std::mutex mu;
  std::vector<std::tuple<int, NodeOutcome, std::string, double>> local_done;
  std::vector<std::thread> threads;
  int local_running = 0;
  RunSummary sum;

  Impl(const Graph& g_, const ScanResult& s_, const Plan& p_, cache::Store& st, cache::Journal& j, ProgressView& pv,
       SlurmRunOptions opts, CommandRunner c)
      : g(g_), scan(s_), plan(p_), store(st), journal(j), progress(pv), o(std::move(opts)), cmd(std::move(c)),
        ns(g_.nodes.size()), runs(g_.nodes.size(), 0), pool(o.local_capacity) {
    prefix = comment_prefix(store.root());
    for (int i : plan.to_run) {
      runs[i] = 1;
      ns[i].s = effective_settings(o.defaults, g.nodes[i].slurm);
    }
  }

  const std::string& key(int i) const { return scan.nodes[i].key; }
  fs::path node_dir(int i) const { return store.root() / "slurm" / key(i); }

  void jrec(const char* event, int i, json extra = json::object()) {
    journal_node_event(journal, o.run_id, event, g.nodes[i].id, key(i), std::move(extra));
  }

  int call(const std::vector<std::string>& argv, std::string* out, std::string* err, bool monitor) {
    if (monitor) ++stats.monitor_calls;
    return cmd(argv, out, err);
  }

  // ---- ending nodes ------------------------------------------------------

  void end(int i, NodeOutcome out, double secs, const std::string& msg) {
    ns[i].phase = Phase::kEnd;
    ns[i].out = out;
    ns[i].job.clear();
    progress.node_end(g.nodes[i].id, out, secs, msg);
    if (out == NodeOutcome::kFailed) sum.failures.push_back(g.nodes[i].id + ": " + msg);
  }

  /// scancel the given queued nodes' jobs (one call) and put them back to kWait.
  void unqueue(const std::vector<int>& nodes) {
    std::vector<std::string> argv = {"scancel"};
    for (int i : nodes)
      if (ns[i].phase == Phase::kQueued) {
        argv.push_back(ns[i].job);
        jrec("slurm_cancel", i, {{"job", ns[i].job}});
        ns[i].phase = Phase::kWait;
        ns[i].job.clear();
        ns[i].running_seen = false;
      }
    if (argv.size() == 1) return;
    std::string out, err;
    call(argv, &out, &err, false);
  }

  /// Queued nodes downstream of i (transitively) that have not started.
  std::vector<int> queued_dependents(int i) {
    std::vector<int> r;
    std::vector<char> seen(g.nodes.size(), 0);
    std::deque<int> q{i};
    while (!q.empty()) {
      int x = q.front();
      q.pop_front();
      for (int u : g.nodes[x].users) {
        if (seen[u] || !runs[u]) continue;
        seen[u] = 1;
        if (ns[u].phase == Phase::kQueued && !ns[u].running_seen) r.push_back(u);
        q.push_back(u);
      }
    }
    return r;
  }

  /// Nodes with a job in Slurm (only those whose job has not started: pending_only).
  std::vector<int> queued(bool pending_only) const {
    std::vector<int> r;
    for (int i : plan.to_run)
      if (ns[i].phase == Phase::kQueued && !(pending_only && ns[i].running_seen)) r.push_back(i);
    return r;
  }

  /// After a failure without --keep-going: start nothing more, cancel what has not started.
  void fail_fast() {
    if (o.keep_going) return;
    stop = true;
    unqueue(queued(/*pending_only=*/true));
  }

  /// Every node still waiting fails with `why` (the probe or its submission failed).
  void fail_waiting(const std::string& why) {
    for (int i : plan.to_run)
      if (ns[i].phase == Phase::kWait) {
        jrec("node_failed", i, {{"error", why}});
        end(i, NodeOutcome::kFailed, 0, why);
      }
  }

  json read_result(int i, const std::string& job) {
    const std::string text = read_file(node_dir(i) / (job + ".result.json"));
    if (text.empty()) return json();
    json j = json::parse(text, nullptr, false);
    return j.is_discarded() ? json() : j;
  }

  /// A job of node i ended (or left the queue): settle the node.
  void finish(int i, const JobInfo& info, std::atomic<int>& cancel) {
    NodeState& n = ns[i];
    const std::string job = n.job;
    const json res = read_result(i, job);
    const std::string log_tail = tail_lines(node_dir(i) / (job + ".log"), 30);
    const double secs = res.is_object() && res.contains("seconds") ? res["seconds"].get<double>()
                        : n.running_seen ? std::chrono::duration<double>(Clock::now() - n.t_run).count()
                                         : 0.0;
    const bool valid = store.check(key(i), nullptr, nullptr) == cache::ArtifactState::kValid;
    const std::string state = effective_state(info, log_tail);
    jrec("slurm_end", i, {{"job", job}, {"state", state}, {"reason", info.reason}, {"exit", info.exit_code}});
    if (valid) {
      const bool hit = res.is_object() && res.value("outcome", "") == "hit";
      end(i, hit ? NodeOutcome::kHit : NodeOutcome::kDone, secs, hit ? "computed by another process" : "");
      return;
    }
    const std::string log = (node_dir(i) / (job + ".log")).string();
    const std::string reported = res.is_object() ? res.value("error", "") : "";
    std::string msg;
    if (state == "FAILED" && !reported.empty()) {
      // The stage itself failed: its own message.
      msg = reported + " (Slurm job " + job + " on " + res.value("host", "?") + "; log " + log + ")";
    } else if (state == "COMPLETED") {
      msg = "Slurm job " + job + " completed but the artifact is not in the cache " + store.root().string() +
            " (log " + log + ")";
    } else if (info.state.empty() || info.state == "UNKNOWN") {
      msg = "Slurm job " + job + " left the queue with no record of how it ended (no result file, no " +
            "job-completion log, no accounting); see " + log;
    } else {
      // Slurm ended it: its reason first, then what the node saw.
      msg = end_message(info, log_tail, g.nodes[i].resources, n.s.time) +
            (reported.empty() ? "" : "; the node reported: " + reported) + "; log " + log;
    }
    const bool retry = std::find(n.s.retry_on.begin(), n.s.retry_on.end(), state) != n.s.retry_on.end() &&
                       n.submits <= n.s.resubmits && cancel.load() == 0 && !stop;
    if (retry) {
      ++stats.resubmitted;
      jrec("node_retry", i, {{"job", job}, {"slurm_state", state}, {"error", msg}, {"attempt", n.submits}});
      progress.node_log(g.nodes[i].id, msg + "; resubmitting (" + std::to_string(n.submits) + " of " +
                                           std::to_string(n.s.resubmits) + " resubmissions)");
      unqueue(queued_dependents(i));
      n.phase = Phase::kWait;
      n.job.clear();
      n.running_seen = false;
      return;
    }
    jrec("node_failed", i, {{"job", job}, {"slurm_state", state}, {"error", msg}});
    end(i, NodeOutcome::kFailed, secs, msg);
    unqueue(queued_dependents(i));  // they can never run; schedule() marks them skipped
    fail_fast();
  }

  // ---- submission ---------------------------------------------------------

  /// An sbatch error with what to do about it.
  std::string explain_sbatch_error(const std::string& err, const SlurmSettings& s) {
    std::string e = trim(err);
    std::string lower = e;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    if (lower.find("invalid partition") != std::string::npos) {
      std::string out, er;
      std::string parts;
      if (call({"sinfo", "-h", "-o", "%R"}, &out, &er, false) == 0) {
        std::istringstream in(out);
        std::string p;
        while (std::getline(in, p))
          if (!trim(p).empty()) parts += (parts.empty() ? "" : ", ") + trim(p);
      }
      return "partition '" + s.partition + "' does not exist on this cluster (sbatch: " + e + ")" +
             (parts.empty() ? "" : "; partitions: " + parts) + "; pass --slurm-partition or set the stage's slurm.partition";
    }
    if (lower.find("account") != std::string::npos)
      return "sbatch rejected the account" + (s.account.empty() ? std::string() : " '" + s.account + "'") + " (" + e +
             "); pass --slurm-account NAME (see `sacctmgr show assoc user=$USER`)";
    if (lower.find("qos") != std::string::npos) return "sbatch rejected the QOS '" + s.qos + "' (" + e + ")";
    if (lower.find("time limit") != std::string::npos)
      return "sbatch rejected the time limit '" + s.time + "' (" + e + "); see `sinfo -o '%P %l'`";
    return "sbatch failed: " + e;
  }

  /// sbatch; the job id, or empty + *err.
  std::string sbatch(const std::vector<std::string>& argv, const SlurmSettings& s, std::string* err) {
    std::string out, er;
    auto t0 = Clock::now();
    int rc = call(argv, &out, &er, false);
    ++stats.sbatch_calls;
    stats.submit_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    if (rc != 0) {
      *err = rc < 0 ? er : explain_sbatch_error(er.empty() ? out : er, s);
      return {};
    }
    std::string id = trim(out);
    id = id.substr(0, id.find(';'));  // "123;cluster"
    if (id.empty() || !std::all_of(id.begin(), id.end(), ::isdigit)) {
      *err = "sbatch printed no job id: '" + trim(out) + "'";
      return {};
    }
    return id;
  }

  bool submit(int i, std::string* err) {
    NodeState& n = ns[i];
    const Node& node = g.nodes[i];
    NodeTask task = make_node_task(g, scan, store, i);
    if (!write_node_plan(store, task, err)) return false;
    const fs::path dir = node_dir(i);
    const fs::path script = dir / "job.sh";
    if (!cache::write_file_atomic(script, job_script(o.qsweep_bin, store.root(), key(i), node.id, o.run_id), err,
                                  /*executable=*/true))
      return false;
    JobSpec spec;
    spec.job_name = "qsweep-" + key(i).substr(0, 16);
    spec.comment = prefix + key(i);
    spec.log = dir / "%j.log";
    spec.script = script;
    spec.resources = node.resources;
    if (o.max_threads) spec.resources.threads = std::min(spec.resources.threads, *o.max_threads);
    for (int d : node.deps)
      if (runs[d] && ns[d].phase == Phase::kQueued) spec.after_ok.push_back(ns[d].job);
    if (probe == Probe::kQueued) spec.after_ok.push_back(probe_job);
    const std::string id = sbatch(sbatch_argv(n.s, spec), n.s, err);
    if (id.empty()) return false;
    n.phase = Phase::kQueued;
    n.job = id;
    n.state = "PENDING";
    n.running_seen = false;
    ++n.submits;
    jrec("slurm_submit", i, {{"job", id}, {"after", spec.after_ok}, {"submit", n.submits}});
    progress.node_log(node.id, "submitted as Slurm job " + id +
                                   (spec.after_ok.empty() ? "" : " (after " + join(spec.after_ok, ",") + ")"));
    return true;
  }

  void start_local(int i, std::atomic<int>& cancel) {
    ns[i].phase = Phase::kLocal;
    ++local_running;
    threads.emplace_back([this, i, &cancel] {
      std::string msg;
      double ran = 0;
      Resources res = g.nodes[i].resources;
      NodeOutcome out = NodeOutcome::kFailed;
      if (std::string e = pool.fit(&res); !e.empty()) {
        msg = e;
      } else if (std::vector<int> ids; !pool.acquire(res, [&] { return cancel.load() >= 2; }, &ids)) {
        out = NodeOutcome::kCancelled;
        msg = "cancelled while waiting for resources";
      } else {
        ExecOptions eo;
        eo.run_id = o.run_id;
        eo.journal_extra = {{"executor", "local"}};
        eo.gpu_ids = ids;
        NodeTask t = make_node_task(g, scan, store, i);
        out = execute_node(t, *g.nodes[i].impl, res, store, journal, progress, cancel, eo, &msg, &ran);
        pool.release(res, ids);
      }
      std::lock_guard<std::mutex> lk(mu);
      local_done.emplace_back(i, out, msg, ran);
    });
  }

  /// Starts every node whose inputs are cached or queued; settles those
  /// that can no longer run.
  void schedule(std::atomic<int>& cancel) {
    for (int i : plan.to_run) {
      NodeState& n = ns[i];
      if (n.phase != Phase::kWait) continue;
      std::string why;
      const auto ended = [this](int d) -> std::optional<NodeOutcome> {
        return runs[d] && ns[d].phase == Phase::kEnd ? std::optional<NodeOutcome>(ns[d].out) : std::nullopt;
      };
      if (const auto out = upstream_failure(g, i, ended, &why)) {
        jrec("node_skipped", i, {{"reason", why}});
        end(i, *out, 0, why);
        continue;
      }
      // Ready when every input is cached, done, or (for a Slurm job) queued.
      bool ready = true;
      for (int d : g.nodes[i].deps)
        ready = ready && (!runs[d] || ns[d].phase == Phase::kEnd || (ns[d].phase == Phase::kQueued && !n.s.local));
      if (cancel.load() || stop || probe == Probe::kFailed) {
        if (probe == Probe::kFailed) continue;  // settle_probe() failed them
        const std::string m = cancel.load() ? "cancelled before start"
                                            : "not started: an earlier node failed (use --keep-going)";
        jrec("node_skipped", i, {{"reason", m}});
        end(i, cancel.load() ? NodeOutcome::kCancelled : NodeOutcome::kSkipped, 0, m);
        continue;
      }
      if (!ready) continue;
      if (n.s.local) {
        start_local(i, cancel);
        continue;
      }
      std::string err;
      if (!submit(i, &err)) {
        jrec("node_failed", i, {{"error", err}});
        end(i, NodeOutcome::kFailed, 0, err);
        fail_fast();
      }
    }
  }

  // ---- probe ----------------------------------------------------------------

  bool start_probe(std::string* err) {
    std::random_device rd;
    std::mt19937_64 rng(rd());
    std::ostringstream tok;
    tok << std::hex << rng() << rng();
    probe_token = tok.str();
    probe_dir = store.root() / "slurm" / "probe" / o.run_id;
    const fs::path marker = probe_dir / "marker", seen = probe_dir / "seen", script = probe_dir / "probe.sh";
    if (!cache::write_file_atomic(marker, probe_token + "\n", err)) return false;
    std::string sh = "#!/bin/sh\n# qsweep: can this compute node see the cache and run qsweep?\n"
                     "m='" + marker.string() + "'\n"
                     "test -r \"$m\" || { echo \"qsweep probe: $(hostname) cannot read $m\" >&2; exit 3; }\n"
                     "'" + o.qsweep_bin.string() + "' --version >/dev/null 2>&1 || exit 4\n"
                     "{ cat \"$m\"; hostname; } > '" + seen.string() + "' || exit 3\n";
    if (!cache::write_file_atomic(script, sh, err, /*executable=*/true)) return false;
    // The run's defaults (partition, account, ...), one CPU for five minutes.
    SlurmSettings s = o.defaults;
    s.time = "5";
    JobSpec spec;
    spec.job_name = "qsweep-probe";
    spec.comment = prefix + "probe";
    spec.log = "/dev/null";
    spec.script = script;
    probe_job = sbatch(sbatch_argv(s, spec), s, err);
    --stats.sbatch_calls;  // counts node jobs only
    if (probe_job.empty()) return false;
    probe = Probe::kQueued;
    journal.append({{"run", o.run_id}, {"event", "slurm_probe"}, {"job", probe_job}}, err);
    err->clear();
    return true;
  }

  /// The probe job ended (state as seen, or empty when it left the queue).
  void settle_probe(const JobInfo& info) {
    const std::string seen = read_file(probe_dir / "seen");
    if (seen.rfind(probe_token + "\n", 0) == 0) {
      probe = Probe::kOk;
      return;
    }
    probe = Probe::kFailed;
    const std::string ex = info.exit_code.substr(0, info.exit_code.find(':'));
    std::string why;
    if (ex == "4")
      why = "compute nodes cannot run " + o.qsweep_bin.string() +
            " (the probe job " + probe_job + " failed to start it): install qsweep on a shared filesystem or the same path on every node";
    else
      why = "compute nodes do not see the cache " + store.root().string() + ": the probe job " + probe_job +
            " (" + (info.state.empty() ? "no state" : info.state) + (ex.empty() ? "" : ", exit " + ex) +
            ") could not read the marker file the runner wrote there; put the cache on a filesystem shared "
            "with the compute nodes (--cache DIR or QSWEEP_CACHE)";
    std::string jerr;
    journal.append({{"run", o.run_id}, {"event", "slurm_probe_failed"}, {"job", probe_job}, {"error", why}}, &jerr);
    unqueue(queued(/*pending_only=*/false));
    fail_waiting(why);
  }

  // ---- monitoring -------------------------------------------------------------

  /// Jobs of this user whose comment names this cache: key -> newest job.
  std::map<std::string, JobInfo> list_own_jobs() {
    std::string out, err;
    const std::vector<std::string> argv = {"squeue", "--noheader", "--user=" + o.user, "--states=all",
                                           std::string("--Format=") + k_squeue_format};
    std::map<std::string, JobInfo> by_key;
    if (call(argv, &out, &err, true) != 0) return by_key;
    for (auto& j : parse_squeue(out)) {
      if (j.comment.rfind(prefix, 0) != 0) continue;
      std::string k = j.comment.substr(prefix.size());
      auto it = by_key.find(k);
      if (it == by_key.end() || std::stoll(j.id) > std::stoll(it->second.id)) by_key[k] = j;
    }
    return by_key;
  }

  /// At start: cache hits since planning, and jobs of an earlier runner.
  void adopt() {
    ++stats.polls;  // the first polling interval's one call
    auto jobs = list_own_jobs();
    for (int i : plan.to_run) {
      if (store.check(key(i), nullptr, nullptr) == cache::ArtifactState::kValid) {
        jrec("node_hit", i, {{"reason", "published since planning"}});
        end(i, NodeOutcome::kHit, 0, "computed by another process");
        continue;
      }
      auto it = jobs.find(key(i));
      if (it == jobs.end() || !is_active(it->second.state)) continue;
      if (it->second.state == "PENDING" && it->second.reason == "DependencyNeverSatisfied") {
        // An input of it failed in the earlier run: cancel, resubmit when its inputs are there.
        std::string out, err;
        call({"scancel", it->second.id}, &out, &err, false);
        continue;
      }
      NodeState& n = ns[i];
      n.phase = Phase::kQueued;
      n.job = it->second.id;
      n.state = it->second.state;
      n.submits = 1;
      ++stats.adopted;
      jrec("slurm_adopt", i, {{"job", n.job}, {"state", n.state}});
      progress.node_log(g.nodes[i].id, "adopted Slurm job " + n.job + " (" + n.state + ")");
      if (n.state == "RUNNING") {
        n.running_seen = true;
        n.t_run = Clock::now();
        progress.node_start(g.nodes[i].id);
      }
    }
  }

  /// Settles node i whose job left the queue without us seeing its end.
  void vanished_job(int i, std::atomic<int>& cancel) {
    const std::string& job = ns[i].job;
    json res = read_result(i, job);
    if (res.is_object()) {
      const std::string oc = res.value("outcome", "");
      finish(i, {job, oc == "done" || oc == "hit" ? "COMPLETED" : "FAILED", "", "", ""}, cancel);
      return;
    }
    if (store.check(key(i), nullptr, nullptr) == cache::ArtifactState::kValid) {
      finish(i, {job, "COMPLETED", "", "", ""}, cancel);
      return;
    }
    if (o.config_value("JobCompType") == "jobcomp/filetxt") {
      for (const auto& j : parse_jobcomp(read_file(o.config_value("JobCompLoc"))))
        if (j.id == job) {
          finish(i, j, cancel);
          return;
        }
    }
    const std::string acct = o.config_value("AccountingStorageType");
    if (!acct.empty() && acct != "accounting_storage/none") {
      vanished.push_back(i);
      return;
    }
    finish(i, {job, "UNKNOWN", "", "", ""}, cancel);
  }

  /// One monitoring call; returns true when something changed.
  bool poll(std::atomic<int>& cancel) {
    ++stats.polls;
    std::string out, err;
    if (!vanished.empty()) {
      // This interval's call is sacct, for the jobs that left the queue.
      std::vector<std::string> jobs;
      for (int i : vanished) jobs.push_back(ns[i].job);
      std::vector<std::string> argv = {"sacct", "--noheader", "--parsable2", "--allocations",
                                       std::string("--format=") + k_sacct_format, "--jobs=" + join(jobs, ",")};
      std::map<std::string, JobInfo> got;
      if (call(argv, &out, &err, true) == 0)
        for (auto& j : parse_sacct(out)) got[j.id] = j;
      for (int i : vanished) {
        auto it = got.find(ns[i].job);
        finish(i, it != got.end() ? it->second : JobInfo{ns[i].job, "UNKNOWN", "", "", ""}, cancel);
      }
      vanished.clear();
      return true;
    }
    std::vector<std::string> ids;
    for (int i : plan.to_run)
      if (ns[i].phase == Phase::kQueued) ids.push_back(ns[i].job);
    if (probe == Probe::kQueued) ids.push_back(probe_job);
    if (ids.empty()) return false;
    std::vector<std::string> argv = {"squeue", "--noheader", "--states=all", std::string("--Format=") + k_squeue_format,
                                     "--jobs=" + join(ids, ",")};
    int rc = call(argv, &out, &err, true);
    if (rc != 0) {
      progress.node_log("slurm", "squeue failed (" + trim(err) + "); retrying at the next interval");
      return false;
    }
    std::map<std::string, JobInfo> by_id;
    for (auto& j : parse_squeue(out)) by_id[j.id] = j;
    bool changed = false;
    if (probe == Probe::kQueued) {
      auto it = by_id.find(probe_job);
      if (it == by_id.end()) {
        settle_probe({});
        changed = true;
      } else if (!is_active(it->second.state)) {
        settle_probe(it->second);
        changed = true;
      }
      if (probe == Probe::kFailed) return true;
    }
    for (int i : plan.to_run) {
      NodeState& n = ns[i];
      if (n.phase != Phase::kQueued) continue;
      auto it = by_id.find(n.job);
      if (it == by_id.end()) {
        vanished_job(i, cancel);
        changed = true;
        continue;
      }
      const JobInfo& j = it->second;
      if (j.state != n.state) changed = true;
      n.state = j.state;
      if (is_active(j.state)) {
        if (j.state == "RUNNING" && !n.running_seen) {
          n.running_seen = true;
          n.t_run = Clock::now();
          progress.node_start(g.nodes[i].id);
        }
        continue;
      }
      finish(i, j, cancel);
    }
    return changed;
  }

  void collect_local() {
    std::vector<std::tuple<int, NodeOutcome, std::string, double>> done;
    {
      std::lock_guard<std::mutex> lk(mu);
      done.swap(local_done);
    }
    for (auto& [i, out, msg, ran] : done) {
      --local_running;
      end(i, out, ran, msg);
      if (out == NodeOutcome::kFailed) fail_fast();
    }
  }

  bool all_ended() const {
    for (int i : plan.to_run)
      if (ns[i].phase != Phase::kEnd) return false;
    return true;
  }

  RunSummary run(std::atomic<int>& cancel) {
    sum = RunSummary();
    sum.hit = plan.n_cached;
    progress.begin(g.experiment, plan.to_run.size(), plan.n_cached);
    adopt();
    bool need_probe = false;
    for (int i : plan.to_run)
      if (ns[i].phase == Phase::kWait && !ns[i].s.local) need_probe = true;
    if (o.probe && need_probe) {
      std::string err;
      if (!start_probe(&err)) fail_waiting(err);
    }
    double interval = o.poll_min_s;
    auto next_poll = Clock::now() + std::chrono::duration<double>(interval);
    bool aborted = false;
    while (true) {
      if (cancel.load() >= 2 && !aborted) {
        aborted = true;
        const std::vector<int> in_slurm = queued(/*pending_only=*/false);
        if (probe == Probe::kQueued) {
          std::string out, err;
          call({"scancel", probe_job}, &out, &err, false);
        }
        unqueue(in_slurm);
        for (int i : in_slurm) {
          jrec("node_skipped", i, {{"reason", "cancelled (scancel)"}});
          end(i, NodeOutcome::kCancelled, 0, "cancelled: Slurm job cancelled");
        }
      }
      collect_local();
      schedule(cancel);
      if (all_ended() && local_running == 0) break;
      if (Clock::now() >= next_poll) {
        bool changed = poll(cancel);
        interval = changed ? o.poll_min_s : std::min(o.poll_max_s, interval * 2);
        next_poll = Clock::now() + std::chrono::duration<double>(interval);
        continue;  // schedule what the poll released before sleeping
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    for (auto& t : threads) t.join();
    threads.clear();
    for (int i : plan.to_run) sum.add(ns[i].out);
    return sum;
  }
};

SlurmExecutor::SlurmExecutor(const Graph& g, const ScanResult& scan, const Plan& plan, cache::Store& store,
                             cache::Journal& journal, ProgressView& progress, SlurmRunOptions opts, CommandRunner cmd)
    : impl_(std::make_unique<Impl>(g, scan, plan, store, journal, progress, std::move(opts), std::move(cmd))) {}

SlurmExecutor::~SlurmExecutor() = default;

RunSummary SlurmExecutor::run(std::atomic<int>& cancel) { return impl_->run(cancel); }

const SlurmStats& SlurmExecutor::stats() const { return impl_->stats; }

}  // namespace qsweep::slurm
