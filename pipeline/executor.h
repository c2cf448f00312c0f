#pragma once
// An executor runs a Plan: it decides where and when each node that must run
// is started and learns how it ended. Two implementations share the graph,
// scan, plan, cache and node execution (node_exec.h):
//   local  (runner.h)            a oneTBB flow graph in this process
//   slurm  (slurm/slurm_executor.h)  one Slurm job per node, `qsweep exec-node`
// Both journal every node's outcome and never compute a key twice (per-key
// locks in the cache).

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/graph.h"
#include "pipeline/progress.h"

namespace qsweep {

struct RunSummary {
  size_t done = 0, hit = 0, failed = 0, skipped = 0, cancelled = 0;
  bool ok() const { return failed == 0 && skipped == 0 && cancelled == 0; }
  /// Counts one node's outcome.
  void add(NodeOutcome o) {
    switch (o) {
      case NodeOutcome::kDone: ++done; break;
      case NodeOutcome::kHit: ++hit; break;
      case NodeOutcome::kFailed: ++failed; break;
      case NodeOutcome::kSkipped: ++skipped; break;
      case NodeOutcome::kCancelled: ++cancelled; break;
    }
  }
  std::vector<std::string> failures;  ///< "node: message"
  std::string text() const;
};

/// Whether node i can no longer run because an input ended without an
/// artifact: the outcome i gets (kCancelled after a cancelled input, else
/// kSkipped) and *why = "upstream ID OUTCOME"; nullopt when no input failed.
/// ended(d): the upstream's outcome once it ended, nullopt before (or when it
/// is cached and never ran).
inline std::optional<NodeOutcome> upstream_failure(const Graph& g, int i,
                                                   const std::function<std::optional<NodeOutcome>(int)>& ended,
                                                   std::string* why) {
  for (int d : g.nodes[i].deps) {
    const std::optional<NodeOutcome> o = ended(d);
    if (!o || *o == NodeOutcome::kDone || *o == NodeOutcome::kHit) continue;
    *why = "upstream " + g.nodes[d].id + " " + outcome_name(*o);
    return *o == NodeOutcome::kCancelled ? NodeOutcome::kCancelled : NodeOutcome::kSkipped;
  }
  return std::nullopt;
}

class Executor {
 public:
  virtual ~Executor() = default;
  /// Runs the plan. cancel: 0 run, 1 stop starting nodes and let running ones
  /// finish (or stop at a checkpoint), 2 abort running ones. Never throws.
  virtual RunSummary run(std::atomic<int>& cancel) = 0;
};

}  // namespace qsweep
