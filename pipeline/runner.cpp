#include "pipeline/runner.h"

#include <unistd.h>

#include <chrono>
#include <thread>

#include <tbb/flow_graph.h>
#include <tbb/global_control.h>
#include <tbb/task_arena.h>

#include "pipeline/node_exec.h"

namespace qsweep {

namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

std::string make_run_id() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y%m%dT%H%M%SZ", &tm);
  return std::string(b) + "-" + std::to_string(getpid());
}

std::string RunSummary::text() const {
  std::string s = std::to_string(done) + " done, " + std::to_string(hit) + " cached, " +
                  std::to_string(failed) + " failed";
  if (skipped) s += ", " + std::to_string(skipped) + " skipped";
  if (cancelled) s += ", " + std::to_string(cancelled) + " cancelled";
  return s;
}

Runner::Runner(const Graph& g, const ScanResult& scan, const Plan& plan, cache::Store& store,
               cache::Journal& journal, ProgressView& progress, RunOptions opts)
    : g_(g), scan_(scan), plan_(plan), store_(store), journal_(journal), progress_(progress),
      opts_(std::move(opts)), pool_(opts_.capacity), outcome_(g.nodes.size()) {
  for (auto& o : outcome_) o.store(-1);
}

RunSummary Runner::run(std::atomic<int>& cancel) {
  RunSummary sum;
  sum.hit = plan_.n_cached;
  progress_.begin(g_.experiment, plan_.to_run.size(), plan_.n_cached);
  const int jobs = opts_.jobs > 0 ? opts_.jobs : std::max(1, opts_.capacity.threads);

  {
    // Node bodies mostly wait (on a process, the network): `jobs` of them may
    // be in flight even beyond the core count, which is TBB's default limit on
    // worker threads (it would silently cap -j and print a warning). Stage
    // arenas of several threads need workers on top.
    tbb::global_control parallelism(
        tbb::global_control::max_allowed_parallelism,
        std::max<size_t>(tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism),
                         static_cast<size_t>(jobs) + static_cast<size_t>(std::max(0, opts_.capacity.threads))));
    tbb::task_arena arena(jobs);
    arena.execute([&] {
      tbb::flow::graph fg;
      std::vector<std::unique_ptr<tbb::flow::continue_node<tbb::flow::continue_msg>>> fn(g_.nodes.size());
      for (int i : plan_.to_run) {
        fn[i] = std::make_unique<tbb::flow::continue_node<tbb::flow::continue_msg>>(
            fg, [this, i, &cancel](const tbb::flow::continue_msg&) {
              std::string msg;
              auto t0 = Clock::now();
              const std::string& id = g_.nodes[i].id;
              double ran = -1;  // seconds the stage itself ran (not the wait for resources)
              NodeOutcome o = execute(i, cancel, &msg, &ran);
              outcome_[i].store(static_cast<int>(o));
              double secs = ran >= 0 ? ran : std::chrono::duration<double>(Clock::now() - t0).count();
              progress_.node_end(id, o, secs, msg);
            });
      }
      for (int i : plan_.to_run)
        for (int d : g_.nodes[i].deps)
          if (fn[d]) tbb::flow::make_edge(*fn[d], *fn[i]);
      for (int i : plan_.to_run)
        if (plan_.state[i] == PlanState::kReady) fn[i]->try_put(tbb::flow::continue_msg());
      fg.wait_for_all();
    });
  }

  for (int i : plan_.to_run) sum.add(static_cast<NodeOutcome>(outcome_[i].load()));
  return sum;
}

NodeOutcome Runner::execute(int i, std::atomic<int>& cancel, std::string* msg, double* ran) {
  const Node& n = g_.nodes[i];
  const std::string& key = scan_.nodes[i].key;
  auto journal = [&](const char* event, nlohmann::json extra) {
    journal_node_event(journal_, opts_.run_id, event, n.id, key, std::move(extra));
  };

  const auto ended = [this](int d) -> std::optional<NodeOutcome> {
    const int o = outcome_[d].load();
    return o < 0 ? std::nullopt : std::optional<NodeOutcome>(static_cast<NodeOutcome>(o));
  };
  if (const auto o = upstream_failure(g_, i, ended, msg)) {
    journal("node_skipped", {{"reason", *msg}});
    return *o;
  }
  auto stopping = [&] { return cancel.load() != 0 || stop_scheduling_.load(); };
  if (stopping()) {
    *msg = cancel.load() ? "cancelled before start" : "not started: an earlier node failed (use --keep-going)";
    journal("node_skipped", {{"reason", *msg}});
    return cancel.load() ? NodeOutcome::kCancelled : NodeOutcome::kSkipped;
  }

  Resources res = n.resources;
  if (std::string e = pool_.fit(&res); !e.empty()) {
    *msg = e;
    journal("node_failed", {{"error", *msg}});
    if (!opts_.keep_going) stop_scheduling_ = true;
    return NodeOutcome::kFailed;
  }
  std::vector<int> gpu_ids;
  if (!pool_.acquire(res, stopping, &gpu_ids)) {
    *msg = cancel.load() ? "cancelled while waiting for resources" : "not started: an earlier node failed";
    journal("node_skipped", {{"reason", *msg}});
    return cancel.load() ? NodeOutcome::kCancelled : NodeOutcome::kSkipped;
  }
  struct Release {
    ResourcePool& p;
    Resources r;
    std::vector<int> ids;
    ~Release() { p.release(r, ids); }
  } release{pool_, res, gpu_ids};

  ExecOptions eo;
  eo.run_id = opts_.run_id;
  eo.retry_base_s = opts_.retry_base_s;
  eo.gpu_ids = gpu_ids;
  const NodeTask task = make_node_task(g_, scan_, store_, i);
  NodeOutcome o = execute_node(task, *n.impl, res, store_, journal_, progress_, cancel, eo, msg, ran);
  if (o == NodeOutcome::kFailed && !opts_.keep_going) stop_scheduling_ = true;
  return o;
}

}  // namespace qsweep
