#include "pipeline/cli/session.h"

#include <cstdio>
#include <cstdlib>

#include "pipeline/expand.h"
#include "stages/registry.h"

namespace qsweep::cli {

namespace fs = std::filesystem;

fs::path resolve_cache_dir(const GlobalOptions& g, const Experiment* e) {
  if (!g.cache_dir.empty()) return g.cache_dir;
  if (const char* v = std::getenv("QSWEEP_CACHE"); v && *v) return v;
  if (e && e->cache_dir) return *e->cache_dir;
  return ".qsweep/cache";
}

std::unique_ptr<cache::Store> open_store(const fs::path& dir, bool create) {
  std::error_code ec;
  if (!create && !fs::is_directory(dir, ec)) {
    std::fprintf(stderr,
                 "qsweep: error: no cache at '%s' (nothing has run with it yet); pass --cache DIR, set "
                 "QSWEEP_CACHE, or run from the directory where you ran `qsweep run`\n",
                 dir.c_str());
    return nullptr;
  }
  std::string err;
  auto s = cache::Store::open(dir, &err);
  if (!s) std::fprintf(stderr, "qsweep: error: %s\n", err.c_str());
  return s;
}

bool open_session(const std::string& file, const GlobalOptions& g, bool check_cache, Session* s,
                  bool allow_unresolved) {
  s->registry = make_builtin_registry();
  LoadOptions lo;
  for (const auto& kv : g.sets) {
    size_t eq = kv.find('=');
    if (kv.rfind("vars.", 0) != 0 || eq == std::string::npos || eq == 5) {
      std::fprintf(stderr, "qsweep: error: --set '%s': expected vars.NAME=VALUE\n", kv.c_str());
      return false;
    }
    lo.var_overrides[kv.substr(5, eq - 5)] = kv.substr(eq + 1);
  }
  Diagnostics d;
  if (!load_experiment(file, *s->registry, lo, &s->exp, &d) ||
      !expand_experiment(s->exp, *s->registry, &s->graph, &d)) {
    std::fputs(format_diagnostics(d).c_str(), stderr);
    return false;
  }
  fs::path dir = resolve_cache_dir(g, &s->exp);
  s->store = open_store(dir, /*create=*/true);
  if (!s->store) return false;
  s->digests = std::make_unique<cache::FileDigestCache>(s->store->stat_cache_path());
  ScanOptions so;
  so.allow_unresolved = allow_unresolved;
  if (!scan_graph(s->graph, *s->digests, check_cache ? s->store.get() : nullptr, &s->scan, &d, so)) {
    std::fputs(format_diagnostics(d).c_str(), stderr);
    return false;
  }
  return true;
}

bool resolve_targets(const Graph& g, const std::vector<std::string>& patterns, std::vector<int>* out) {
  for (const auto& p : patterns) {
    auto hits = match_nodes(g, p);
    if (hits.empty()) {
      std::vector<std::string> ids;
      for (const auto& n : g.nodes) ids.push_back(n.id);
      std::string hint = suggest(p, ids);
      std::fprintf(stderr, "qsweep: error: no node matches '%s'%s%s\n", p.c_str(),
                   hint.empty() ? "" : "; ", hint.empty() ? "(run `qsweep plan` to list node ids)" : hint.c_str());
      return false;
    }
    out->insert(out->end(), hits.begin(), hits.end());
  }
  return true;
}

std::string human_bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  char b[32];
  std::snprintf(b, sizeof b, u ? "%.1f %s" : "%.0f %s", v, units[u]);
  return b;
}

}  // namespace qsweep::cli
