#include "pipeline/plan.h"

namespace qsweep {

const char* plan_state_name(PlanState s) {
  switch (s) {
    case PlanState::kCached: return "cached";
    case PlanState::kReady: return "to-run";
    case PlanState::kBlocked: return "blocked";
    case PlanState::kUnneeded: return "unneeded";
  }
  return "?";
}

Plan make_plan(const Graph& g, const ScanResult& scan, const std::vector<int>& targets) {
  const size_t n = g.nodes.size();
  Plan p;
  p.state.assign(n, PlanState::kUnneeded);
  std::vector<char> wanted(n, targets.empty() ? 1 : 0);
  for (int t : targets) wanted[t] = 1;
  auto cached = [&](int i) { return scan.nodes[i].state == cache::ArtifactState::kValid; };
  // Reverse topological order: consumers are decided before their inputs.
  std::vector<char> runs(n, 0);
  for (auto it = g.topo.rbegin(); it != g.topo.rend(); ++it) {
    int i = *it;
    if (!wanted[i]) {
      for (int u : g.nodes[i].users)
        if (runs[u]) wanted[i] = 1;
    }
    if (!wanted[i]) continue;
    if (cached(i)) {
      p.state[i] = PlanState::kCached;
      ++p.n_cached;
    } else {
      runs[i] = 1;
    }
  }
  for (int i : g.topo) {
    if (!runs[i]) continue;
    p.to_run.push_back(i);
    bool blocked = false;
    for (int d : g.nodes[i].deps)
      if (runs[d]) blocked = true;
    p.state[i] = blocked ? PlanState::kBlocked : PlanState::kReady;
    ++(blocked ? p.n_blocked : p.n_ready);
  }
  return p;
}

}  // namespace qsweep
