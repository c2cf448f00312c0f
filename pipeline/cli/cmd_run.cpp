// qsweep run: plan, then execute with the TBB runner; Ctrl-C handling.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "cache/journal.h"
#include "model/util/text_file.h"
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

// The tables of the tabulate nodes this run covered, on stdout, with the
// paths of their files: what a sweep is run for.
void print_tables(const Session& s, const Plan& plan) {
  for (int i : s.graph.topo) {
    const Node& n = s.graph.nodes[i];
    if (n.kind != "tabulate" || plan.state[i] == PlanState::kUnneeded) continue;
    const auto dir = s.store->output_dir(s.scan.nodes[i].key);
    std::error_code ec;
    if (!std::filesystem::is_regular_file(dir / "table.json", ec)) continue;  // not built (a failure upstream)
    std::printf("\n%s\n", n.id.c_str());
    if (std::filesystem::is_regular_file(dir / "table.md", ec)) {
      std::string md;
      try {
        md = model::read_text_file(dir / "table.md");
      } catch (const std::exception&) {
      }
      std::printf("%s", md.c_str());
    }
    if (std::filesystem::is_regular_file(dir / "reproduction.json", ec)) {
      try {
        const auto rep = model::read_json_file(dir / "reproduction.json");
        const auto& c = rep["counts"];
        std::printf("\nReproduction of %s: %d match, %d within noise, %d drift, %d missing\n",
                    rep.value("manifest", std::string()).c_str(), c.value("match", 0), c.value("within_noise", 0),
                    c.value("drift", 0), c.value("missing", 0));
      } catch (const std::exception&) {
      }
    }
    std::printf("\nFiles (%s):\n", dir.c_str());
    for (const char* f : {"table.md", "table.csv", "table.tex", "table.json", "report.html", "reproduction.md"})
      if (std::filesystem::is_regular_file(dir / f, ec)) std::printf("  %s\n", (dir / f).c_str());
  }
  std::fflush(stdout);
}

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
    print_tables(s, plan);
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
  print_tables(s, plan);
  if (status == "cancelled") return k_exit_cancelled;
  return status == "ok" ? k_exit_ok : k_exit_failed;
}

}  // namespace qsweep::cli
