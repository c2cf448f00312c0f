// qsweep plan | explain | dag | show | status | schema: read-only views.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "cache/journal.h"
#include "pipeline/cli/slurm_commands.h"
#include "pipeline/slurm/slurm_job.h"
#include "pipeline/cli/commands.h"
#include "pipeline/plan.h"
#include "pipeline/schema.h"
#include "stages/registry.h"

namespace qsweep::cli {

namespace {

const char* state_label(const NodeScan& ns, PlanState ps) {
  if (ps == PlanState::kCached) return "cached";
  if (ns.state == cache::ArtifactState::kCorrupt) return "corrupt";
  return plan_state_name(ps);
}

std::string short_key(const std::string& k) { return k.substr(0, 12); }

// Latest journal record of `node` with event node_done or node_hit whose key
// satisfies pred.
template <typename Pred>
const nlohmann::json* last_built(const std::vector<nlohmann::json>& recs, const std::string& node, Pred pred) {
  for (auto it = recs.rbegin(); it != recs.rend(); ++it) {
    const auto& r = *it;
    if (r.value("node", "") != node) continue;
    std::string ev = r.value("event", "");
    if ((ev == "node_done" || ev == "node_hit") && pred(r.value("key", ""))) return &r;
  }
  return nullptr;
}

}  // namespace

int print_plan(const Session& s, const std::vector<int>& t, bool json) {
  Plan p = make_plan(s.graph, s.scan, t);
  size_t unresolved = 0;
  std::string first_reason;
  for (const auto& ns : s.scan.nodes) {
    if (ns.unresolved.empty()) continue;
    ++unresolved;
    if (first_reason.empty() && ns.unresolved.rfind("after ", 0) != 0) first_reason = ns.unresolved;
  }
  if (json) {
    nlohmann::json out = {{"experiment", s.exp.name}, {"cache", s.store->root().string()}, {"nodes", nlohmann::json::array()}};
    for (int i : s.graph.topo) {
      const Node& n = s.graph.nodes[i];
      nlohmann::json deps = nlohmann::json::array();
      for (int d : n.deps) deps.push_back(s.graph.nodes[d].id);
      nlohmann::json node = {{"id", n.id}, {"kind", n.kind}, {"key", s.scan.nodes[i].key},
                             {"state", state_label(s.scan.nodes[i], p.state[i])}, {"deps", deps}};
      if (!s.scan.nodes[i].unresolved.empty()) node["unresolved"] = s.scan.nodes[i].unresolved;
      out["nodes"].push_back(std::move(node));
    }
    std::printf("%s\n", out.dump(2).c_str());
    return k_exit_ok;
  }
  size_t width = 0;
  for (const auto& n : s.graph.nodes) width = std::max(width, n.id.size());
  std::printf("%s: %zu nodes: %zu cached, %zu to-run, %zu blocked (cache %s)\n", s.exp.name.c_str(),
              s.graph.nodes.size(), p.n_cached, p.n_ready, p.n_blocked, s.store->root().c_str());
  for (int i : s.graph.topo) {
    if (p.state[i] == PlanState::kUnneeded) continue;
    const Node& n = s.graph.nodes[i];
    const NodeScan& ns = s.scan.nodes[i];
    std::string extra;
    if (p.state[i] == PlanState::kBlocked) {
      std::string waits;
      size_t n_waits = 0;
      for (int d : n.deps)
        if (p.state[d] == PlanState::kReady || p.state[d] == PlanState::kBlocked) {
          if (++n_waits <= 3) waits += (waits.empty() ? "" : ", ") + s.graph.nodes[d].id;
        }
      if (n_waits > 3) waits += " and " + std::to_string(n_waits - 3) + " more";
      extra = "  after " + waits;
    }
    if (ns.state == cache::ArtifactState::kCorrupt) extra = "  (" + ns.why + ")";
    const std::string key = ns.unresolved.empty() ? short_key(ns.key) : std::string("?") + std::string(11, ' ');
    std::printf("  %-8s %-*s %s%s\n", state_label(ns, p.state[i]), static_cast<int>(width), n.id.c_str(),
                key.c_str(), extra.c_str());
  }
  if (unresolved)
    std::printf("%zu node(s) have no key yet (shown as ?): %s\n`qsweep run` resolves them when it can "
                "(pin hf://ORG/NAME@<commit> to plan offline)\n",
                unresolved, first_reason.c_str());
  return k_exit_ok;
}

int cmd_plan(const GlobalOptions& g, const std::string& file, const std::vector<std::string>& targets, bool json) {
  Session s;
  if (!open_session(file, g, true, &s, /*allow_unresolved=*/true)) return k_exit_usage;
  std::vector<int> t;
  if (!resolve_targets(s.graph, targets, &t)) return k_exit_usage;
  return print_plan(s, t, json);
}

int cmd_explain(const GlobalOptions& g, const std::string& file, const std::string& node) {
  Session s;
  if (!open_session(file, g, true, &s)) return k_exit_usage;
  const Node* n = s.graph.find(node);
  if (!n) {
    std::vector<std::string> ids;
    for (const auto& x : s.graph.nodes) ids.push_back(x.id);
    std::fprintf(stderr, "qsweep: error: no node '%s' in %s (%s)\n", node.c_str(), file.c_str(),
                 suggest(node, ids).empty() ? "run `qsweep plan` to list node ids" : suggest(node, ids).c_str());
    return k_exit_usage;
  }
  int i = s.graph.by_id.at(node);
  const NodeScan& ns = s.scan.nodes[i];
  const char* st = ns.state == cache::ArtifactState::kValid ? "cached" : ns.state == cache::ArtifactState::kCorrupt ? "corrupt" : "not cached";
  std::printf("%s  (%s)\n  key %s\n  hashed fields:\n", n->id.c_str(), st, ns.key.c_str());
  for (const auto& f : ns.fields) std::printf("    %-20s %s\n", f.name.c_str(), f.value.c_str());
  if (ns.state == cache::ArtifactState::kCorrupt) std::printf("  the cached artifact is corrupt: %s; the next run recomputes it\n", ns.why.c_str());
  if (ns.state == cache::ArtifactState::kValid) return k_exit_ok;

  std::string err;
  auto recs = cache::Journal::load(s.store->journal_path(), &err);
  const nlohmann::json* prev = last_built(recs, n->id, [&](const std::string& k) {
    return k != ns.key && s.store->check(k, nullptr, nullptr) == cache::ArtifactState::kValid;
  });
  if (!prev) {
    std::printf("  no earlier artifact of this node is in the cache (never built here, or collected by gc)\n");
    return k_exit_ok;
  }
  cache::Manifest m;
  std::string why;
  s.store->check(prev->value("key", ""), &m, &why);
  std::printf("  differs from the artifact built %s (key %s) in:\n", m.finished_at.c_str(), short_key(m.key).c_str());
  for (const auto& line : diff_key_fields(m.key_fields, ns.fields)) std::printf("    %s\n", line.c_str());
  // Name the upstream nodes whose keys changed.
  for (const auto& in : n->inputs)
    for (const auto& it : in.items) {
      if (it.node < 0) continue;
      const std::string& k = s.scan.nodes[it.node].key;
      bool same = std::any_of(m.inputs.begin(), m.inputs.end(), [&](const cache::ManifestInput& mi) { return mi.key == k; });
      if (!same) std::printf("    upstream %s changed (qsweep explain %s '%s')\n", s.graph.nodes[it.node].id.c_str(), file.c_str(), s.graph.nodes[it.node].id.c_str());
    }
  return k_exit_ok;
}

int cmd_dag(const GlobalOptions& g, const std::string& file, const std::string& format) {
  Session s;
  if (!open_session(file, g, true, &s)) return k_exit_usage;
  Plan p = make_plan(s.graph, s.scan, {});
  auto esc = [](const std::string& x) {
    std::string r;
    for (char c : x) r += (c == '"' ? std::string("\\\"") : std::string(1, c));
    return r;
  };
  if (format == "dot") {
    std::printf("digraph \"%s\" {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n", esc(s.exp.name).c_str());
    for (size_t i = 0; i < s.graph.nodes.size(); ++i) {
      const char* color = p.state[i] == PlanState::kCached ? "#b7e4c7" : p.state[i] == PlanState::kReady ? "#ffe8a3" : "#e9ecef";
      std::printf("  n%zu [label=\"%s\\n%s\", fillcolor=\"%s\"];\n", i, esc(s.graph.nodes[i].id).c_str(),
                  state_label(s.scan.nodes[i], p.state[i]), color);
    }
    for (size_t i = 0; i < s.graph.nodes.size(); ++i)
      for (int d : s.graph.nodes[i].deps) std::printf("  n%d -> n%zu;\n", d, i);
    std::printf("}\n");
  } else {
    std::printf("flowchart LR\n");
    for (size_t i = 0; i < s.graph.nodes.size(); ++i)
      std::printf("  n%zu[\"%s\"]:::%s\n", i, esc(s.graph.nodes[i].id).c_str(),
                  p.state[i] == PlanState::kCached ? "cached" : p.state[i] == PlanState::kReady ? "ready" : "blocked");
    for (size_t i = 0; i < s.graph.nodes.size(); ++i)
      for (int d : s.graph.nodes[i].deps) std::printf("  n%d --> n%zu\n", d, i);
    std::printf("  classDef cached fill:#b7e4c7\n  classDef ready fill:#ffe8a3\n  classDef blocked fill:#e9ecef\n");
  }
  return k_exit_ok;
}

int cmd_show(const GlobalOptions& g, const std::string& what, const std::string& file, bool json) {
  std::string key;
  std::unique_ptr<cache::Store> store;
  Session s;
  if (!file.empty()) {
    if (!open_session(file, g, false, &s)) return k_exit_usage;
    const Node* n = s.graph.find(what);
    if (n) key = s.scan.nodes[s.graph.by_id.at(what)].key;
    store = std::move(s.store);
  } else {
    store = open_store(resolve_cache_dir(g, nullptr));
    if (!store) return k_exit_usage;
  }
  if (key.empty() && cache::Digest128::from_hex(what)) key = what;
  if (key.empty()) {
    std::string err;
    auto recs = cache::Journal::load(store->journal_path(), &err);
    if (const nlohmann::json* r = last_built(recs, what, [](const std::string&) { return true; })) key = r->value("key", "");
  }
  if (key.empty()) {
    std::fprintf(stderr, "qsweep: error: '%s' is neither a key nor a node built in cache %s%s\n", what.c_str(),
                 store->root().c_str(), file.empty() ? " (pass -e EXPERIMENT to resolve a node id)" : "");
    return k_exit_usage;
  }
  cache::Manifest m;
  std::string why;
  auto st = store->check(key, &m, &why);
  if (st == cache::ArtifactState::kMissing) {
    std::fprintf(stderr, "qsweep: error: no artifact %s in cache %s (not built yet, or collected by gc)\n", key.c_str(), store->root().c_str());
    return k_exit_failed;
  }
  if (st == cache::ArtifactState::kCorrupt) {
    std::fprintf(stderr, "qsweep: error: artifact %s is corrupt: %s (the next run recomputes it)\n", key.c_str(), why.c_str());
    return k_exit_failed;
  }
  if (json) {
    std::printf("%s\n", cache::manifest_to_json(m).c_str());
    return k_exit_ok;
  }
  std::printf("node        %s\nkind        %s (version %lld)\nkey         %s\nexperiment  %s\npath        %s\n",
              m.node.c_str(), m.kind.c_str(), static_cast<long long>(m.stage_version), m.key.c_str(),
              m.experiment.c_str(), store->output_dir(m.key).c_str());
  std::printf("built       %s .. %s (%.3f s) on %s, qsweep %s\n", m.started_at.c_str(), m.finished_at.c_str(),
              m.seconds, m.host.c_str(), m.qsweep_version.c_str());
  std::printf("inputs\n");
  for (const auto& in : m.inputs) std::printf("  %-12s %s  %s\n", in.name.c_str(), in.node.c_str(), in.key.c_str());
  std::printf("params      %s\n", m.params.dump().c_str());
  if (!m.outputs.empty()) std::printf("outputs     %s\n", m.outputs.dump().c_str());
  std::printf("files\n");
  uint64_t total = 0;
  for (const auto& f : m.files) {
    std::printf("  %10s  %s  %s\n", human_bytes(f.size).c_str(), f.xxh3.c_str(), f.path.c_str());
    total += f.size;
  }
  std::printf("  %10s  total\n", human_bytes(total).c_str());
  return k_exit_ok;
}

int cmd_status(const GlobalOptions& g, const std::string& file, int runs, bool json) {
  std::filesystem::path dir;
  if (!file.empty()) {
    Session s;
    if (!open_session(file, g, false, &s)) return k_exit_usage;
    dir = s.store->root();
  } else {
    dir = resolve_cache_dir(g, nullptr);
  }
  auto store = open_store(dir);
  if (!store) return k_exit_usage;
  std::string err;
  auto recs = cache::Journal::load(store->journal_path(), &err);
  struct Run {
    nlohmann::json start, end;
    std::vector<std::string> order;
    std::map<std::string, nlohmann::json> last;  // node -> latest node_* record
    std::map<std::string, std::pair<std::string, std::string>> job;  // node -> (Slurm job id, state)
  };
  std::vector<std::string> run_order;
  std::map<std::string, Run> by_run;
  for (const auto& r : recs) {
    std::string id = r.value("run", "");
    if (id.empty()) continue;
    if (!by_run.count(id)) run_order.push_back(id);
    Run& run = by_run[id];
    std::string ev = r.value("event", "");
    if (ev == "run_start") run.start = r;
    else if (ev == "run_end") run.end = r;
    else if (r.contains("node")) {
      std::string n = r.value("node", "");
      if (!run.last.count(n) && !run.job.count(n)) run.order.push_back(n);
      if (ev.rfind("slurm_", 0) == 0) {
        // Slurm executor records: the job and its last known state.
        auto& [job, state] = run.job[n];
        if (r.contains("job")) job = r.value("job", "");
        state = ev == "slurm_submit" ? "PENDING" : ev == "slurm_cancel" ? "CANCELLED"
              : r.value("state", state);
      } else {
        run.last[n] = r;
        if (r.contains("job") && r.value("executor", "") != "local") {
          auto& [job, state] = run.job[n];
          job = r.value("job", "");
          if (ev == "node_start") state = "RUNNING";
        }
      }
    }
  }
  // Live states of this cache's Slurm jobs that have not ended in the
  // journal: one squeue call, when the Slurm client is installed.
  std::map<std::string, std::string> live;
  {
    std::vector<std::string> ids;
    size_t first_run = run_order.size() > static_cast<size_t>(runs) ? run_order.size() - runs : 0;
    for (size_t k = first_run; k < run_order.size(); ++k)
      for (const auto& [n, js] : by_run[run_order[k]].job)
        if (!js.first.empty() && (js.second == "PENDING" || js.second == "RUNNING")) ids.push_back(js.first);
    if (!ids.empty()) {
      std::string joined, out, e;
      for (const auto& i : ids) joined += (joined.empty() ? "" : ",") + i;
      if (make_slurm_command_runner()({"squeue", "--noheader", "--states=all",
                                       std::string("--Format=") + slurm::k_squeue_format, "--jobs=" + joined},
                                      &out, &e) == 0)
        for (const auto& j : slurm::parse_squeue(out)) live[j.id] = j.state;
    }
  }
  char myhost[256] = {0};
  gethostname(myhost, sizeof myhost - 1);
  nlohmann::json out = nlohmann::json::array();
  size_t first = run_order.size() > static_cast<size_t>(runs) ? run_order.size() - runs : 0;
  if (run_order.empty() && !json) std::printf("no runs recorded in %s\n", store->journal_path().c_str());
  for (size_t k = first; k < run_order.size(); ++k) {
    Run& run = by_run[run_order[k]];
    std::string status;
    if (!run.end.is_null()) {
      status = run.end.value("status", "?");
    } else {
      int pid = run.start.value("pid", 0);
      bool alive = run.start.value("host", "") == myhost && pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
      status = alive ? "running" : "interrupted";
    }
    nlohmann::json jr = {{"run", run_order[k]}, {"experiment", run.start.value("experiment", "?")},
                         {"started", run.start.value("t", "?")}, {"status", status},
                         {"executor", run.start.value("executor", "local")},
                         {"cached_at_start", run.start.value("n_cached", 0)}, {"nodes", nlohmann::json::array()}};
    std::map<std::string, int> counts;
    for (const auto& n : run.order) {
      const nlohmann::json r = run.last.count(n) ? run.last[n] : nlohmann::json::object();
      std::string ev = r.value("event", "");
      std::string st = ev == "node_done" ? "done" : ev == "node_hit" ? "hit" : ev == "node_failed" ? "failed"
                     : ev == "node_skipped" ? "skipped" : ev == "node_retry" ? "retrying"
                     : (status == "running" ? "running" : "interrupted");
      nlohmann::json jn = {{"node", n}, {"key", r.value("key", "")}};
      if (auto it = run.job.find(n); it != run.job.end()) {
        std::string sst = it->second.second;
        if (auto l = live.find(it->second.first); l != live.end()) sst = l->second;
        jn["slurm_job"] = it->second.first;
        jn["slurm_state"] = sst;
        // A queued job of a runner that is gone goes on in Slurm.
        if (ev.empty() || ev == "node_start" || ev == "node_retry")
          st = sst == "PENDING" ? "queued" : sst == "RUNNING" ? "running" : st;
      }
      ++counts[st];
      jn["state"] = st;
      if (r.contains("error")) jn["error"] = r["error"];
      if (r.contains("reason")) jn["reason"] = r["reason"];
      if (r.contains("seconds")) jn["seconds"] = r["seconds"];
      jr["nodes"].push_back(jn);
    }
    out.push_back(jr);
    if (json) continue;
    std::string cs;
    for (const auto& [st, c] : counts) cs += (cs.empty() ? "" : ", ") + std::to_string(c) + " " + st;
    std::printf("run %s  %s  %s  %s  (%s%s%d cached at start)\n", run_order[k].c_str(), jr["experiment"].get<std::string>().c_str(),
                jr["started"].get<std::string>().c_str(), status.c_str(), cs.c_str(), cs.empty() ? "" : "; ",
                jr["cached_at_start"].get<int>());
    for (const auto& jn : jr["nodes"]) {
      std::string extra;
      if (jn.contains("error")) extra = ": " + jn["error"].get<std::string>();
      if (jn.contains("reason")) extra = ": " + jn["reason"].get<std::string>();
      size_t nl = extra.find('\n');
      if (nl != std::string::npos) extra = extra.substr(0, nl) + " ...";
      std::string job;
      if (jn.contains("slurm_job"))
        job = "  [job " + jn["slurm_job"].get<std::string>() + " " + jn["slurm_state"].get<std::string>() + "]";
      std::printf("  %-11s %s%s%s\n", jn["state"].get<std::string>().c_str(), jn["node"].get<std::string>().c_str(),
                  job.c_str(), extra.c_str());
    }
  }
  if (json) std::printf("%s\n", out.dump(2).c_str());
  return k_exit_ok;
}

int cmd_schema() {
  auto reg = make_builtin_registry();
  std::printf("%s\n", to_json_schema(*reg).dump(2).c_str());
  return k_exit_ok;
}

}  // namespace qsweep::cli
