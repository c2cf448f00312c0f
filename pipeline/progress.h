#pragma once
// What the runner tells the user while it runs. Two views: a live one for a
// terminal (nodes done/running/queued, each running node's own progress and
// rate, an ETA), redrawn a few times a second; and plain timestamped lines for
// everything else (CI, logs, pipes).

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

namespace qsweep {

enum class NodeOutcome { kDone, kHit, kFailed, kSkipped, kCancelled };
const char* outcome_name(NodeOutcome o);

class ProgressView {
 public:
  virtual ~ProgressView() = default;
  /// n_total nodes will be considered, n_cached of them are hits already.
  virtual void begin(const std::string& experiment, size_t n_to_run, size_t n_cached) = 0;
  virtual void node_start(const std::string& node) = 0;
  virtual void node_update(const std::string& node, uint64_t done, uint64_t total,
                           const std::string& unit) = 0;
  virtual void node_log(const std::string& node, const std::string& line) = 0;
  virtual void node_end(const std::string& node, NodeOutcome o, double seconds,
                        const std::string& message) = 0;
  virtual void end(const std::string& summary) = 0;
};

/// Timestamped lines ("15:21:25 [3/12] done quantize[...] 2.1s"); `verbose`
/// also prints each node's own log lines.
std::unique_ptr<ProgressView> make_line_progress(FILE* out, bool verbose);

/// A live view for a terminal, redrawn at ~5 Hz from its own thread.
std::unique_ptr<ProgressView> make_live_progress(FILE* out);

/// A view that prints nothing (tests, --quiet).
std::unique_ptr<ProgressView> make_null_progress();

}  // namespace qsweep
