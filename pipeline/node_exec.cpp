#include "pipeline/node_exec.h"

#include <unistd.h>

#include <chrono>
#include <thread>

#include <tbb/task_arena.h>

#include "cache/lock.h"
#include "qsweep_version.h"

namespace qsweep {

namespace {

using Clock = std::chrono::steady_clock;

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

// Runs the stage into a pending dir and publishes it. False + *msg
// ("cancelled" when aborted).
bool run_stage(const NodeTask& t, const Stage& impl, const Resources& granted, cache::Store& store,
               cache::Journal& journal, ProgressView& progress, std::atomic<int>& cancel,
               const ExecOptions& opts, std::string* msg) {
  std::string err;
  cache::Store::Pending pending;
  if (!store.begin(t.key, &pending, &err)) {
    *msg = err;
    return false;
  }
  NodeProgress sink(progress, t.node);
  StageContext ctx;
  ctx.node_id = t.node;
  ctx.key = t.key;
  ctx.experiment_dir = t.experiment_dir;
  ctx.scratch_dir = store.scratch_dir(t.key);
  ctx.journal_dir = store.root() / "journal" / t.kind;
  ctx.params = t.params;
  ctx.resources = granted;
  ctx.gpu_ids = opts.gpu_ids;
  ctx.progress = &sink;
  ctx.cancel = &cancel;
  ctx.inputs = t.inputs;
  cache::Manifest m;
  for (const auto& [name, ri] : t.inputs)
    for (const auto& it : ri.items) m.inputs.push_back({name, it.key, it.node});

  const std::string started = cache::iso8601_now();
  auto t0 = Clock::now();
  bool ok = false;
  for (int attempt = 0;; ++attempt) {
    ctx.output_dir = pending.out_dir();
    try {
      if (granted.threads > 1) {
        tbb::task_arena arena(granted.threads);
        arena.execute([&] { impl.run(ctx); });
      } else {
        impl.run(ctx);
      }
      ok = true;
      break;
    } catch (const RetryableError& e) {
      if (attempt >= t.retries || cancel.load()) {
        *msg = std::string(e.what()) + (t.retries ? " (after " + std::to_string(attempt + 1) + " attempts)" : "");
        break;
      }
      double delay = std::min(60.0, opts.retry_base_s * static_cast<double>(1 << std::min(attempt, 10)));
      nlohmann::json extra = opts.journal_extra;
      extra.update({{"error", e.what()}, {"attempt", attempt + 1}, {"delay_s", delay}});
      journal_node_event(journal, opts.run_id, "node_retry", t.node, t.key, extra);
      progress.node_log(t.node, std::string("retryable error: ") + e.what() + "; retrying in " + std::to_string(delay) + " s");
      // A retry starts from an empty output directory.
      store.discard(pending);
      if (!cancellable_sleep(delay, cancel) || !store.begin(t.key, &pending, &err)) {
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
    store.discard(pending);
    return false;
  }
  if (cancel.load() >= 2) {
    // Aborted: whatever the stage left may be incomplete; publish nothing.
    store.discard(pending);
    *msg = "cancelled";
    return false;
  }
  m.key = t.key;
  m.node = t.node;
  m.kind = t.kind;
  m.stage_version = impl.version();
  m.experiment = t.experiment;
  m.params = t.params;
  m.key_fields = t.key_fields;
  m.outputs = ctx.outputs;
  m.started_at = started;
  m.finished_at = cache::iso8601_now();
  m.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  m.host = host_name();
  m.qsweep_version = QSWEEP_VERSION;
  if (!store.publish(pending, &m, &err)) {
    *msg = "publishing the artifact failed: " + err;
    return false;
  }
  std::error_code ec;
  std::filesystem::remove_all(ctx.scratch_dir, ec);  // the published artifact supersedes it
  return true;
}

}  // namespace

std::string host_name() {
  char b[256] = {0};
  gethostname(b, sizeof b - 1);
  return b;
}

void journal_node_event(cache::Journal& journal, const std::string& run_id, const char* event,
                        const std::string& node, const std::string& key, nlohmann::json extra) {
  extra["run"] = run_id;
  extra["event"] = event;
  extra["node"] = node;
  extra["key"] = key;
  std::string e;
  journal.append(std::move(extra), &e);
}

NodeOutcome execute_node(const NodeTask& t, const Stage& impl, const Resources& granted, cache::Store& store,
                         cache::Journal& journal, ProgressView& progress, std::atomic<int>& cancel,
                         const ExecOptions& opts, std::string* msg, double* ran) {
  auto journal_ev = [&](const char* event, nlohmann::json extra = nlohmann::json::object()) {
    nlohmann::json all = opts.journal_extra;
    all.update(extra);
    journal_node_event(journal, opts.run_id, event, t.node, t.key, std::move(all));
  };
  std::string err;
  std::unique_ptr<cache::KeyLock> lock;
  bool announced = false;
  while (true) {
    lock = cache::KeyLock::try_acquire(store.lock_path(t.key), &err);
    if (lock) break;
    if (!err.empty()) {
      *msg = err;
      journal_ev("node_failed", {{"error", *msg}});
      return NodeOutcome::kFailed;
    }
    if (!announced) {
      progress.node_log(t.node, "waiting: another qsweep process is computing this key");
      announced = true;
    }
    if (cancel.load()) {
      *msg = "cancelled while waiting for another process";
      journal_ev("node_skipped", {{"reason", *msg}});
      return NodeOutcome::kCancelled;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::string why;
  auto state = store.check(t.key, nullptr, &why);
  if (state == cache::ArtifactState::kValid) {
    *msg = "computed by another process";
    journal_ev("node_hit");
    return NodeOutcome::kHit;
  }
  if (state == cache::ArtifactState::kCorrupt) {
    progress.node_log(t.node, "cached artifact is corrupt (" + why + "): recomputing");
    if (!store.remove(t.key, &err)) {
      *msg = "cannot remove corrupt artifact: " + err;
      journal_ev("node_failed", {{"error", *msg}});
      return NodeOutcome::kFailed;
    }
  }

  progress.node_start(t.node);
  journal_ev("node_start");
  auto t0 = Clock::now();
  const bool ok = run_stage(t, impl, granted, store, journal, progress, cancel, opts, msg);
  *ran = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!ok) {
    bool was_cancel = cancel.load() != 0 && *msg == "cancelled";
    if (was_cancel) {
      journal_ev("node_skipped", {{"reason", "cancelled while running"}});
      return NodeOutcome::kCancelled;
    }
    journal_ev("node_failed", {{"error", *msg}});
    return NodeOutcome::kFailed;
  }
  journal_ev("node_done", {{"seconds", *ran}});
  return NodeOutcome::kDone;
}

}  // namespace qsweep
