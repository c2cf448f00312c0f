#include "pipeline/graph.h"

#include <algorithm>
#include <queue>

namespace qsweep {

const Node* Graph::find(const std::string& id) const {
  auto it = by_id.find(id);
  return it == by_id.end() ? nullptr : &nodes[it->second];
}

bool link_graph(Graph* g, Diagnostics* diags) {
  const int n = static_cast<int>(g->nodes.size());
  for (auto& node : g->nodes) {
    node.deps.clear();
    node.users.clear();
  }
  for (int i = 0; i < n; ++i) {
    auto& deps = g->nodes[i].deps;
    for (const auto& in : g->nodes[i].inputs)
      for (const auto& it : in.items)
        if (it.node >= 0) deps.push_back(it.node);
    std::sort(deps.begin(), deps.end());
    deps.erase(std::unique(deps.begin(), deps.end()), deps.end());
    for (int d : deps) g->nodes[d].users.push_back(i);
  }
  // Kahn's algorithm; a min-heap on index keeps definition order where free.
  std::vector<int> indeg(n);
  for (int i = 0; i < n; ++i) indeg[i] = static_cast<int>(g->nodes[i].deps.size());
  std::priority_queue<int, std::vector<int>, std::greater<int>> ready;
  for (int i = 0; i < n; ++i)
    if (indeg[i] == 0) ready.push(i);
  g->topo.clear();
  while (!ready.empty()) {
    int i = ready.top();
    ready.pop();
    g->topo.push_back(i);
    for (int u : g->nodes[i].users)
      if (--indeg[u] == 0) ready.push(u);
  }
  if (static_cast<int>(g->topo.size()) == n) return true;
  // Report one cycle: walk deps among the remaining nodes until one repeats.
  int start = -1;
  for (int i = 0; i < n; ++i)
    if (indeg[i] > 0) {
      start = i;
      break;
    }
  std::vector<int> path;
  std::vector<int> pos(n, -1);
  int cur = start;
  while (pos[cur] < 0) {
    pos[cur] = static_cast<int>(path.size());
    path.push_back(cur);
    for (int d : g->nodes[cur].deps)
      if (indeg[d] > 0) {
        cur = d;
        break;
      }
  }
  std::string cyc;
  for (size_t k = pos[cur]; k < path.size(); ++k) cyc += g->nodes[path[k]].id + " <- ";
  cyc += g->nodes[cur].id;
  diags->push_back({g->nodes[cur].loc, "dependency cycle: " + cyc, "a stage cannot (indirectly) consume its own output"});
  return false;
}

namespace {
bool glob_match(const char* p, const char* s) {
  // Iterative '*'/'?' matcher with backtracking to the last star.
  const char *star = nullptr, *ss = nullptr;
  while (*s) {
    if (*p == '?' || *p == *s) {
      ++p, ++s;
    } else if (*p == '*') {
      star = p++, ss = s;
    } else if (star) {
      p = star + 1, s = ++ss;
    } else {
      return false;
    }
  }
  while (*p == '*') ++p;
  return !*p;
}
}  // namespace

std::vector<int> match_nodes(const Graph& g, const std::string& pattern) {
  std::vector<int> r;
  auto it = g.by_id.find(pattern);
  if (it != g.by_id.end()) return {it->second};
  bool glob = pattern.find_first_of("*?") != std::string::npos;
  for (int i = 0; i < static_cast<int>(g.nodes.size()); ++i) {
    const Node& n = g.nodes[i];
    if (n.stage == pattern || (glob && glob_match(pattern.c_str(), n.id.c_str()))) r.push_back(i);
  }
  return r;
}

}  // namespace qsweep
