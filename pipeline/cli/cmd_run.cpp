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
#include "pipeline/cli/signals.h"
#include "pipeline/cli/slurm_commands.h"
#include "pipeline/node_exec.h"
#include "pipeline/runner.h"
#include "pipeline/slurm/slurm_executor.h"
#include "stages/process.h"

namespace qsweep::cli {

namespace {

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


}  // namespace

int cmd_run(const GlobalOptions& g, const RunArgs& a) {
  static std::atomic<int> cancel{0};
  const bool slurm = a.executor == "slurm";
  // Before any other thread exists.
  static SignalWatcher watcher(
      &cancel,
      slurm ? "stopping: no more Slurm jobs are submitted; queued and running ones go on and are watched "
              "(press Ctrl-C again to scancel them; or kill qsweep: the next `qsweep run` adopts them)"
            : "stopping: no new nodes start; running stages finish or stop at a checkpoint (press Ctrl-C again to abort them)",
      slurm ? "cancelling this run's Slurm jobs (scancel); nothing half-written is published"
            : "aborting running stages; nothing half-written is published");

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

  slurm::SlurmRunOptions so;
  slurm::CommandRunner slurm_cmd;
  if (slurm && !plan.to_run.empty()) {
    slurm_cmd = make_slurm_command_runner();
    if (std::string e = slurm::check_slurm_available(slurm_cmd, &so.config); !e.empty()) {
      std::fprintf(stderr, "qsweep: error: %s\n", e.c_str());
      return k_exit_usage;
    }
    so.defaults.partition = a.slurm_partition;
    so.defaults.account = a.slurm_account;
    so.defaults.qos = a.slurm_qos;
    so.defaults.constraint = a.slurm_constraint;
    so.defaults.time = a.slurm_time;
    so.defaults.sbatch_args = a.slurm_sbatch_args;
    std::error_code ec;
    so.qsweep_bin = std::filesystem::read_symlink("/proc/self/exe", ec);
    so.run_id = ro.run_id;
    so.user = std::getenv("USER") && *std::getenv("USER") ? std::getenv("USER") : std::to_string(getuid());
    so.poll_min_s = std::max(0.05, a.slurm_poll);
    so.poll_max_s = std::max(so.poll_min_s, a.slurm_poll_max);
    so.keep_going = a.keep_going;
    so.probe = !a.slurm_no_probe;
    so.local_capacity = ro.capacity;
    if (a.threads > 0) so.max_threads = a.threads;
  }

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
                  {"file", a.experiment}, {"pid", static_cast<int>(getpid())}, {"host", host_name()},
                  {"argv", argv}, {"cache", s.store->root().string()}, {"executor", a.executor},
                  {"n_to_run", plan.to_run.size()}, {"n_cached", plan.n_cached}},
                 &err);

  std::unique_ptr<Executor> executor;
  if (slurm)
    executor = std::make_unique<slurm::SlurmExecutor>(s.graph, s.scan, plan, *s.store, journal, *view, so, slurm_cmd);
  else
    executor = std::make_unique<Runner>(s.graph, s.scan, plan, *s.store, journal, *view, ro);
  RunSummary sum = executor->run(cancel);
  nlohmann::json slurm_stats;
  if (slurm) {
    const auto& st = static_cast<slurm::SlurmExecutor*>(executor.get())->stats();
    slurm_stats = {{"sbatch_calls", st.sbatch_calls}, {"submit_seconds", st.submit_seconds},
                   {"monitor_calls", st.monitor_calls}, {"polls", st.polls}, {"adopted", st.adopted},
                   {"resubmitted", st.resubmitted}};
    if (a.verbose || mode == "lines")
      std::fprintf(stderr, "qsweep: slurm: %zu job(s) submitted (%.1f s in sbatch), %zu adopted, %zu resubmitted; %zu squeue/sacct call(s) in %zu polling interval(s)\n",
                   st.sbatch_calls, st.submit_seconds, st.adopted, st.resubmitted, st.monitor_calls, st.polls);
  }

  std::string status = cancel.load() ? "cancelled" : (sum.failed || sum.skipped) ? "failed" : "ok";
  journal.append({{"run", ro.run_id}, {"event", "run_end"}, {"status", status},
                  {"counts", {{"done", sum.done}, {"hit", sum.hit}, {"failed", sum.failed},
                              {"skipped", sum.skipped}, {"cancelled", sum.cancelled}}},
                  {"slurm", slurm_stats}},
                 &err);
  view->end(s.exp.name + ": " + sum.text() + (status == "ok" ? "" : " (" + status + ")"));
  print_tables(s, plan);
  if (status == "cancelled") return k_exit_cancelled;
  return status == "ok" ? k_exit_ok : k_exit_failed;
}

}  // namespace qsweep::cli
