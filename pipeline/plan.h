#pragma once
// Plan: which nodes must run for the wanted targets, in dependency order.
// A node runs when it is wanted and not validly cached; an upstream node is
// wanted only when a node that runs consumes it (a cached consumer needs
// nothing). Single-threaded, deterministic.

#include <string>
#include <vector>

#include "pipeline/graph.h"
#include "pipeline/scan.h"

namespace qsweep {

enum class PlanState {
  kCached,   ///< valid artifact in the cache: a hit
  kReady,    ///< will run; every input is available now
  kBlocked,  ///< will run after the upstream nodes that run
  kUnneeded  ///< not needed for the requested targets
};

const char* plan_state_name(PlanState s);

struct Plan {
  std::vector<PlanState> state;  ///< parallel to Graph::nodes
  std::vector<int> to_run;       ///< nodes that run, in topological order
  size_t n_cached = 0, n_ready = 0, n_blocked = 0;
};

/// targets: node indices; empty means every node.
Plan make_plan(const Graph& g, const ScanResult& scan, const std::vector<int>& targets);

}  // namespace qsweep
