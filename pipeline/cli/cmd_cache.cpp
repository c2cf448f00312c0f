// qsweep cache ls | verify | gc
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "pipeline/cli/commands.h"

namespace qsweep::cli {

namespace {

// The node id recorded in an artifact's manifest, also when its files are
// damaged (Store::check fills the manifest only for valid artifacts); empty
// when the manifest itself is unreadable.
std::string manifest_node(const cache::Store& store, const std::string& key) {
  std::ifstream f(store.artifact_dir(key) / "manifest.json");
  std::stringstream ss;
  ss << f.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  return j.is_object() && j.contains("node") && j["node"].is_string() ? j["node"].get<std::string>() : "";
}

}  // namespace

int cmd_cache_ls(const GlobalOptions& g, bool json) {
  auto store = open_store(resolve_cache_dir(g, nullptr));
  if (!store) return k_exit_usage;
  std::string err;
  auto keys = store->keys(&err);
  if (!err.empty()) {
    std::fprintf(stderr, "qsweep: error: %s\n", err.c_str());
    return k_exit_failed;
  }
  nlohmann::json out = nlohmann::json::array();
  uint64_t total = 0;
  for (const auto& k : keys) {
    cache::Manifest m;
    std::string why;
    auto st = store->check(k, &m, &why);
    uint64_t size = 0;
    for (const auto& f : m.files) size += f.size;
    total += size;
    if (json) {
      out.push_back({{"key", k}, {"node", m.node}, {"kind", m.kind}, {"experiment", m.experiment},
                     {"bytes", size}, {"finished_at", m.finished_at},
                     {"state", st == cache::ArtifactState::kValid ? "valid" : "corrupt"}});
      continue;
    }
    if (st != cache::ArtifactState::kValid)
      std::printf("%s  %10s  %-24s CORRUPT: %s\n", k.c_str(), "?", "", why.c_str());
    else
      std::printf("%s  %10s  %s  %-10s %s\n", k.c_str(), human_bytes(size).c_str(), m.finished_at.c_str(),
                  m.experiment.c_str(), m.node.c_str());
  }
  if (json)
    std::printf("%s\n", out.dump(2).c_str());
  else
    std::printf("%zu artifact(s), %s in %s\n", keys.size(), human_bytes(total).c_str(), store->root().c_str());
  return k_exit_ok;
}

int cmd_cache_verify(const GlobalOptions& g, bool delete_corrupt) {
  auto store = open_store(resolve_cache_dir(g, nullptr));
  if (!store) return k_exit_usage;
  std::string err;
  auto keys = store->keys(&err);
  size_t bad = 0;
  for (const auto& k : keys) {
    cache::Manifest m;
    std::string why;
    if (store->verify(k, &m, &why) == cache::ArtifactState::kValid) continue;
    ++bad;
    std::string node = manifest_node(*store, k);
    std::printf("CORRUPT %s%s%s: %s\n", k.c_str(), node.empty() ? "" : " ", node.c_str(), why.c_str());
    if (delete_corrupt) {
      if (store->remove(k, &err))
        std::printf("  removed; the next run recomputes it\n");
      else
        std::printf("  cannot remove: %s\n", err.c_str());
    }
  }
  std::printf("verified %zu artifact(s): %zu corrupt%s\n", keys.size(), bad,
              bad && !delete_corrupt ? " (runs recompute them; `qsweep cache verify --delete` removes them now)" : "");
  return bad ? k_exit_failed : k_exit_ok;
}

int cmd_cache_gc(const GlobalOptions& g, const std::vector<std::string>& keep, bool dry_run) {
  std::set<std::string> live;
  std::filesystem::path dir;
  for (const auto& file : keep) {
    Session s;
    if (!open_session(file, g, false, &s)) {
      std::fprintf(stderr, "qsweep: gc: nothing removed (fix %s first)\n", file.c_str());
      return k_exit_usage;
    }
    if (dir.empty()) dir = s.store->root();
    if (s.store->root() != dir) {
      std::fprintf(stderr, "qsweep: error: %s uses cache %s but %s was given first; collect one cache at a time\n",
                   file.c_str(), s.store->root().c_str(), dir.c_str());
      return k_exit_usage;
    }
    for (const auto& n : s.scan.nodes) live.insert(n.key);
  }
  auto store = open_store(dir);
  if (!store) return k_exit_usage;
  std::string err;
  size_t removed = 0;
  uint64_t bytes = 0;
  for (const auto& k : store->keys(&err)) {
    if (live.count(k)) continue;
    cache::Manifest m;
    std::string why;
    store->check(k, &m, &why);
    uint64_t size = 0;
    for (const auto& f : m.files) size += f.size;
    std::printf("%s %s %s (%s)\n", dry_run ? "would remove" : "remove", k.c_str(), m.node.c_str(), human_bytes(size).c_str());
    if (!dry_run && !store->remove(k, &err)) {
      std::fprintf(stderr, "qsweep: error: %s\n", err.c_str());
      continue;
    }
    ++removed;
    bytes += size;
  }
  size_t tmp = dry_run ? 0 : store->clean_stale_tmp();
  uint64_t scratch_bytes = 0;
  const size_t scratch = dry_run ? 0 : store->clean_scratch(live, &scratch_bytes);
  uint64_t slurm_bytes = 0;
  const size_t slurm = dry_run ? 0
                               : store->clean_per_key("plans", live, &slurm_bytes) +
                                     store->clean_per_key("slurm", live, &slurm_bytes);
  std::string extra;
  if (tmp) extra += ", and " + std::to_string(tmp) + " stale temp dir(s)";
  if (scratch)
    extra += ", and " + std::to_string(scratch) + " scratch dir(s) of unfinished nodes (" +
             human_bytes(scratch_bytes) + ")";
  if (slurm)
    extra += ", and " + std::to_string(slurm) + " node plan(s) / Slurm job folder(s) (" + human_bytes(slurm_bytes) + ")";
  std::printf("%s %zu artifact(s), %s; kept %zu referenced key(s)%s\n", dry_run ? "would remove" : "removed", removed,
              human_bytes(bytes).c_str(), live.size(), extra.c_str());
  return k_exit_ok;
}

}  // namespace qsweep::cli
