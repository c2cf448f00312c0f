#include "pipeline/runner.h"

#include <unistd.h>

#include <chrono>
#include <thread>

#include <tbb/flow_graph.h>
#include <tbb/global_control.h>
#include <tbb/task_arena.h>

#include "cache/lock.h"
#include "qsweep_version.h"

namespace qsweep {

namespace {

using Clock = std::chrono::steady_clock;

std::string hostname() {
  char b[256] = {0};
  gethostname(b, sizeof b - 1);
  return b;
}

// Forwards a stage's progress to the view, tagged with the node id.
class NodeProgress : public ProgressSink {
 public:
  NodeProgress(ProgressView& v, std::string node) : v_(v), node_(std::move(node)) {}
  void update(uint64_t done, uint64_t total, const std::string& unit) override {
    v_.node_update(node_, done, total, unit);
  }
  void log(const std::string& line) override { v_.node_log(node_, line); }

 private:
  ProgressView& v_;
  std::string node_;
};

// Sleeps up to `seconds`, waking early when cancel is set.
bool cancellable_sleep(double seconds, const std::atomic<int>& cancel) {
  auto end = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < end) {
    if (cancel.load()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

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

  for (int i : plan_.to_run) {
    int o = outcome_[i].load();
    switch (static_cast<NodeOutcome>(o)) {
      case NodeOutcome::kDone: ++sum.done; break;
      case NodeOutcome::kHit: ++sum.hit; break;
      case NodeOutcome::kFailed: ++sum.failed; break;
      case NodeOutcome::kSkipped: ++sum.skipped; break;
      case NodeOutcome::kCancelled: ++sum.cancelled; break;
    }
  }
  return sum;
}

NodeOutcome Runner::execute(int i, std::atomic<int>& cancel, std::string* msg, double* ran) {
  const Node& n = g_.nodes[i];
  const std::string& key = scan_.nodes[i].key;
  std::string err;
  auto journal = [&](const char* event, nlohmann::json extra = nlohmann::json::object()) {
    extra["run"] = opts_.run_id;
    extra["event"] = event;
    extra["node"] = n.id;
    extra["key"] = key;
    std::string e;
    journal_.append(std::move(extra), &e);
  };

  for (int d : n.deps) {
    int o = outcome_[d].load();
    if (o == static_cast<int>(NodeOutcome::kFailed) || o == static_cast<int>(NodeOutcome::kSkipped) ||
        o == static_cast<int>(NodeOutcome::kCancelled)) {
      *msg = "upstream " + g_.nodes[d].id + " " + outcome_name(static_cast<NodeOutcome>(o));
      journal("node_skipped", {{"reason", *msg}});
      return o == static_cast<int>(NodeOutcome::kCancelled) ? NodeOutcome::kCancelled : NodeOutcome::kSkipped;
    }
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
  if (!pool_.acquire(res, stopping)) {
    *msg = cancel.load() ? "cancelled while waiting for resources" : "not started: an earlier node failed";
    journal("node_skipped", {{"reason", *msg}});
    return cancel.load() ? NodeOutcome::kCancelled : NodeOutcome::kSkipped;
  }
  struct Release {
    ResourcePool& p;
    Resources r;
    ~Release() { p.release(r); }
  } release{pool_, res};

  // Another qsweep may be computing this key: wait for its lock, then re-check.
  std::unique_ptr<cache::KeyLock> lock;
  bool announced = false;
  while (true) {
    lock = cache::KeyLock::try_acquire(store_.lock_path(key), &err);
    if (lock) break;
    if (!err.empty()) {
      *msg = err;
      journal("node_failed", {{"error", *msg}});
      if (!opts_.keep_going) stop_scheduling_ = true;
      return NodeOutcome::kFailed;
    }
    if (!announced) {
      progress_.node_log(n.id, "waiting: another qsweep process is computing this key");
      announced = true;
    }
    if (cancel.load()) {
      *msg = "cancelled while waiting for another process";
      journal("node_skipped", {{"reason", *msg}});
      return NodeOutcome::kCancelled;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::string why;
  auto state = store_.check(key, nullptr, &why);
  if (state == cache::ArtifactState::kValid) {
    *msg = "computed by another process";
    journal("node_hit");
    return NodeOutcome::kHit;
  }
  if (state == cache::ArtifactState::kCorrupt) {
    progress_.node_log(n.id, "cached artifact is corrupt (" + why + "): recomputing");
    if (!store_.remove(key, &err)) {
      *msg = "cannot remove corrupt artifact: " + err;
      journal("node_failed", {{"error", *msg}});
      return NodeOutcome::kFailed;
    }
  }

  progress_.node_start(n.id);
  journal("node_start");
  auto t0 = Clock::now();
  const bool ok = run_stage(i, res, cancel, msg);
  *ran = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!ok) {
    bool was_cancel = cancel.load() != 0 && *msg == "cancelled";
    journal(was_cancel ? "node_skipped" : "node_failed",
            was_cancel ? nlohmann::json{{"reason", "cancelled while running"}} : nlohmann::json{{"error", *msg}});
    if (was_cancel) return NodeOutcome::kCancelled;
    if (!opts_.keep_going) stop_scheduling_ = true;
    return NodeOutcome::kFailed;
  }
  journal("node_done", {{"seconds", *ran}});
  return NodeOutcome::kDone;
}

bool Runner::run_stage(int i, const Resources& granted, std::atomic<int>& cancel, std::string* msg) {
  const Node& n = g_.nodes[i];
  const std::string& key = scan_.nodes[i].key;
  std::string err;
  cache::Store::Pending pending;
  if (!store_.begin(key, &pending, &err)) {
    *msg = err;
    return false;
  }
  NodeProgress sink(progress_, n.id);
  StageContext ctx;
  ctx.node_id = n.id;
  ctx.key = key;
  ctx.experiment_dir = g_.experiment_dir;
  ctx.scratch_dir = store_.scratch_dir(key);
  ctx.journal_dir = store_.root() / "journal" / n.kind;
  ctx.params = n.params;
  ctx.resources = granted;
  ctx.progress = &sink;
  ctx.cancel = &cancel;
  cache::Manifest m;
  for (const auto& in : n.inputs) {
    ResolvedInput ri{in.name, in.is_list, {}};
    for (const auto& it : in.items) {
      if (it.node >= 0) {
        const std::string& k = scan_.nodes[it.node].key;
        ri.items.push_back({g_.nodes[it.node].id, k, store_.output_dir(k), g_.nodes[it.node].axes});
        m.inputs.push_back({in.name, k, g_.nodes[it.node].id});
      } else {
        const std::string& digest = scan_.file_digests.at(it.file);
        ri.items.push_back({"file:" + it.file_shown, digest, it.file, {}});
        m.inputs.push_back({in.name, digest, "file:" + it.file_shown});
      }
    }
    ctx.inputs[in.name] = std::move(ri);
  }

  const std::string started = cache::iso8601_now();
  auto t0 = Clock::now();
  bool ok = false;
  for (int attempt = 0;; ++attempt) {
    ctx.output_dir = pending.out_dir();
    try {
      if (granted.threads > 1) {
        tbb::task_arena arena(granted.threads);
        arena.execute([&] { n.impl->run(ctx); });
      } else {
        n.impl->run(ctx);
      }
      ok = true;
      break;
    } catch (const RetryableError& e) {
      if (attempt >= n.retries || cancel.load()) {
        *msg = std::string(e.what()) + (n.retries ? " (after " + std::to_string(attempt + 1) + " attempts)" : "");
        break;
      }
      double delay = std::min(60.0, opts_.retry_base_s * static_cast<double>(1 << std::min(attempt, 10)));
      nlohmann::json rec{{"run", opts_.run_id}, {"event", "node_retry"}, {"node", n.id}, {"key", key},
                         {"error", e.what()}, {"attempt", attempt + 1}, {"delay_s", delay}};
      journal_.append(rec, &err);
      progress_.node_log(n.id, std::string("retryable error: ") + e.what() + "; retrying in " + std::to_string(delay) + " s");
      // A retry starts from an empty output directory.
      store_.discard(pending);
      if (!cancellable_sleep(delay, cancel) || !store_.begin(key, &pending, &err)) {
        *msg = cancel.load() ? "cancelled" : err;
        return false;
      }
    } catch (const std::exception& e) {
      *msg = e.what();
      break;
    } catch (...) {
      *msg = "unknown exception";
      break;
    }
  }
  if (!ok) {
    store_.discard(pending);
    return false;
  }
  if (cancel.load() >= 2) {
    // Aborted: whatever the stage left may be incomplete; publish nothing.
    store_.discard(pending);
    *msg = "cancelled";
    return false;
  }
  m.key = key;
  m.node = n.id;
  m.kind = n.kind;
  m.stage_version = n.impl->version();
  m.experiment = g_.experiment;
  m.params = n.params;
  m.key_fields = scan_.nodes[i].fields;
  m.outputs = ctx.outputs;
  m.started_at = started;
  m.finished_at = cache::iso8601_now();
  m.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  m.host = hostname();
  m.qsweep_version = QSWEEP_VERSION;
  if (!store_.publish(pending, &m, &err)) {
    *msg = "publishing the artifact failed: " + err;
    return false;
  }
  std::error_code ec;
  std::filesystem::remove_all(ctx.scratch_dir, ec);  // the published artifact supersedes it
  return true;
}

}  // namespace qsweep
