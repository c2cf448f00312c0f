// qsweep run: plan, then execute with the TBB runner; Ctrl-C handling.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "cache/journal.h"
#include "pipeline/cli/commands.h"
#include "pipeline/plan.h"
#include "pipeline/progress.h"
#include "pipeline/runner.h"
#include "stages/process.h"

namespace qsweep::cli {

namespace {

// SIGINT/SIGTERM are blocked in every thread and taken by one sigwait()
// thread: the first one asks running stages to stop at a checkpoint, the
// second aborts them (SIGKILL to their process groups), a third exits.
class SignalWatcher {
 public:
  explicit SignalWatcher(std::atomic<int>* cancel) : cancel_(cancel) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    std::thread([this] { loop(); }).detach();
  }

 private:
  void loop() {
    while (true) {
      int sig = 0;
      if (sigwait(&set_, &sig) != 0) continue;
      int level = ++*cancel_;
      if (level == 1) {
        std::fprintf(stderr, "\nqsweep: %s: stopping: no new nodes start; running stages finish or stop at a checkpoint (press Ctrl-C again to abort them)\n", strsignal(sig));
      } else if (level == 2) {
        std::fprintf(stderr, "\nqsweep: aborting running stages; nothing half-written is published\n");
        kill_all_children(SIGKILL);
      } else {
        std::fprintf(stderr, "\nqsweep: exiting now\n");
        kill_all_children(SIGKILL);
        _exit(k_exit_cancelled);
      }
    }
  }
  std::atomic<int>* cancel_;
  sigset_t set_;
};

std::string host() {
  char b[256] = {0};
  gethostname(b, sizeof b - 1);
  return b;
}

}  // namespace

int cmd_run(const GlobalOptions& g, const RunArgs& a) {
  static std::atomic<int> cancel{0};
  SignalWatcher watcher(&cancel);  // before any other thread exists

  Session s;
  if (!open_session(a.experiment, g, true, &s)) return k_exit_usage;
  std::vector<int> targets;
  if (!resolve_targets(s.graph, a.targets, &targets)) return k_exit_usage;
  Plan plan = make_plan(s.graph, s.scan, targets);

  Limits lim = s.exp.limits;
  if (a.threads > 0) lim.threads = a.threads;
  if (a.gpus >= 0) lim.gpu = a.gpus;
  if (a.api > 0) lim.api = a.api;
  RunOptions ro;
  ro.capacity = machine_capacity(lim);
  ro.jobs = a.jobs;
  ro.keep_going = a.keep_going;
  ro.run_id = make_run_id();

  std::unique_ptr<ProgressView> view;
  std::string mode = a.progress;
  if (mode == "auto") {
    const char* term = std::getenv("TERM");
    bool tty = isatty(fileno(stderr)) && term && std::string(term) != "dumb" && !std::getenv("CI");
    mode = tty ? "live" : "lines";
  }
  if (mode == "live")
    view = make_live_progress(stderr);
  else if (mode == "lines")
    view = make_line_progress(stderr, a.verbose);
  else
    view = make_null_progress();

  // Leftovers of killed runs (their key locks are free) go before we start.
  s.store->clean_stale_tmp();
  if (plan.to_run.empty()) {
    std::fprintf(stderr, "qsweep: %s: all %zu node(s) cached, nothing to run\n", s.exp.name.c_str(), plan.n_cached);
    return k_exit_ok;
  }

  cache::Journal journal(s.store->journal_path());
  std::string err;
  nlohmann::json argv = nlohmann::json::array();
  argv.push_back(a.experiment);
  for (const auto& t : a.targets) argv.push_back(t);
  journal.append({{"run", ro.run_id}, {"event", "run_start"}, {"experiment", s.exp.name},
                  {"file", a.experiment}, {"pid", static_cast<int>(getpid())}, {"host", host()},
                  {"argv", argv}, {"cache", s.store->root().string()},
                  {"n_to_run", plan.to_run.size()}, {"n_cached", plan.n_cached}},
                 &err);

  Runner runner(s.graph, s.scan, plan, *s.store, journal, *view, ro);
  RunSummary sum = runner.run(cancel);

  std::string status = cancel.load() ? "cancelled" : (sum.failed || sum.skipped) ? "failed" : "ok";
  journal.append({{"run", ro.run_id}, {"event", "run_end"}, {"status", status},
                  {"counts", {{"done", sum.done}, {"hit", sum.hit}, {"failed", sum.failed},
                              {"skipped", sum.skipped}, {"cancelled", sum.cancelled}}}},
                 &err);
  view->end(s.exp.name + ": " + sum.text() + (status == "ok" ? "" : " (" + status + ")"));
  if (status == "cancelled") return k_exit_cancelled;
  return status == "ok" ? k_exit_ok : k_exit_failed;
}

}  // namespace qsweep::cli
