#include "pipeline/scan.h"

#include <algorithm>
#include <exception>
#include <map>

namespace qsweep {

namespace fs = std::filesystem;

bool input_digest(const fs::path& p, cache::FileDigestCache& digests, std::string* hex,
                  std::string* err) {
  std::error_code ec;
  auto st = fs::status(p, ec);
  if (ec || !fs::exists(st)) {
    *err = "no such file or directory: " + p.string();
    return false;
  }
  if (fs::is_regular_file(st)) {
    cache::Digest128 d;
    if (!digests.digest(p, &d, err)) return false;
    *hex = d.hex();
    return true;
  }
  if (!fs::is_directory(st)) {
    *err = "not a regular file or directory: " + p.string();
    return false;
  }
  std::vector<std::pair<std::string, fs::path>> files;
  for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_regular_file(ec)) files.push_back({fs::relative(it->path(), p).generic_string(), it->path()});
  }
  if (ec) {
    *err = "cannot list directory " + p.string() + ": " + ec.message();
    return false;
  }
  std::sort(files.begin(), files.end());
  cache::KeyHasher h;
  for (const auto& [rel, full] : files) {
    cache::Digest128 d;
    if (!digests.digest(full, &d, err)) return false;
    h.field(rel, d.hex());
  }
  *hex = "dir:" + h.finish().hex();
  return true;
}

bool scan_graph(const Graph& g, cache::FileDigestCache& digests, const cache::Store* store,
                ScanResult* out, Diagnostics* diags, const ScanOptions& opt) {
  out->nodes.assign(g.nodes.size(), {});
  const uint64_t hashed_before = digests.hashed_count();
  size_t before = diags->size();
  auto& file_memo = out->file_digests;  // a file used by many nodes is digested once
  file_memo.clear();
  for (int i : g.topo) {
    const Node& n = g.nodes[i];
    if (opt.allow_unresolved) {  // an upstream without a key leaves this one without one
      auto up = std::find_if(n.deps.begin(), n.deps.end(),
                             [&](int d) { return !out->nodes[d].unresolved.empty(); });
      if (up != n.deps.end()) {
        out->nodes[i].unresolved = "after " + g.nodes[*up].id;
        continue;
      }
    }
    cache::KeyHasher h;
    h.field("qsweep-key", k_key_schema_version);
    h.field("kind", n.kind);
    h.field("stage_version", n.impl ? n.impl->version() : 0);
    h.field("params", n.params.dump());
    if (n.impl) {
      // fingerprint() may resolve something outside (a Hub revision) and throw;
      // that is a diagnostic naming the node, not a crash.
      std::vector<cache::KeyField> fp;
      try {
        fp = n.impl->fingerprint(n.params);
      } catch (const std::exception& e) {
        if (opt.allow_unresolved) {
          out->nodes[i].unresolved = e.what();
          continue;
        }
        diags->push_back({n.loc, n.id + ": cannot compute the key: " + e.what(),
                          "the " + n.kind + " stage resolves this when planning; fix the cause and run again"});
        continue;
      }
      for (const auto& f : fp) h.field("fp:" + f.name, f.value);
    }
    bool ok = true;
    for (const auto& in : n.inputs) {
      std::string v = in.is_list ? "[" : "";
      for (size_t k = 0; k < in.items.size(); ++k) {
        const InputItem& it = in.items[k];
        if (k) v += ",";
        if (it.node >= 0) {
          v += out->nodes[it.node].key;
          continue;
        }
        auto m = file_memo.find(it.file);
        if (m == file_memo.end()) {
          std::string hex, err;
          if (!input_digest(it.file, digests, &hex, &err)) {
            diags->push_back({n.loc, n.id + ": input '" + in.name + "' (file:" + it.file_shown + "): " + err,
                              "file inputs are relative to the experiment's directory " + g.experiment_dir.string()});
            ok = false;
            break;
          }
          m = file_memo.emplace(it.file, hex).first;
        }
        v += "file:" + m->second;
      }
      if (in.is_list) v += "]";
      h.field("input:" + in.name, v);
    }
    if (ok && n.impl && n.impl->keys_input_identity()) {
      for (const auto& in : n.inputs) {
        nlohmann::json ids = nlohmann::json::array();
        for (const InputItem& it : in.items) {
          if (it.node < 0) continue;
          nlohmann::json axes = nlohmann::json::array();
          for (const auto& [axis, value] : g.nodes[it.node].axes) axes.push_back({axis, value});
          ids.push_back({{"node", g.nodes[it.node].id}, {"axes", axes}});
        }
        h.field("inputid:" + in.name, ids.dump());
      }
    }
    if (!ok) continue;
    NodeScan& s = out->nodes[i];
    s.key = h.finish().hex();
    s.fields = h.fields();
    if (store) s.state = store->check(s.key, nullptr, &s.why);
  }
  out->files_hashed = digests.hashed_count() - hashed_before;
  return diags->size() == before;
}

std::vector<std::string> diff_key_fields(const std::vector<cache::KeyField>& a,
                                         const std::vector<cache::KeyField>& b) {
  std::vector<std::string> r;
  std::map<std::string, std::string> ma, mb;
  for (const auto& f : a) ma[f.name] = f.value;
  for (const auto& f : b) mb[f.name] = f.value;
  std::vector<std::string> names;
  for (const auto& f : a) names.push_back(f.name);
  for (const auto& f : b)
    if (!ma.count(f.name)) names.push_back(f.name);
  for (const auto& name : names) {
    auto ia = ma.find(name);
    auto ib = mb.find(name);
    if (ia != ma.end() && ib != mb.end() && ia->second == ib->second) continue;
    if (ia == ma.end()) {
      r.push_back(name + ": added (" + ib->second + ")");
      continue;
    }
    if (ib == mb.end()) {
      r.push_back(name + ": removed (was " + ia->second + ")");
      continue;
    }
    if (name == "params") {
      auto ja = nlohmann::json::parse(ia->second, nullptr, false);
      auto jb = nlohmann::json::parse(ib->second, nullptr, false);
      if (ja.is_object() && jb.is_object()) {
        std::vector<std::string> keys;
        for (auto it = ja.begin(); it != ja.end(); ++it) keys.push_back(it.key());
        for (auto it = jb.begin(); it != jb.end(); ++it)
          if (!ja.contains(it.key())) keys.push_back(it.key());
        for (const auto& k : keys) {
          std::string va = ja.contains(k) ? ja[k].dump() : "(absent)";
          std::string vb = jb.contains(k) ? jb[k].dump() : "(absent)";
          if (va != vb) r.push_back("params." + k + ": " + va + " -> " + vb);
        }
        continue;
      }
    }
    r.push_back(name + ": " + ia->second + " -> " + ib->second);
  }
  return r;
}

}  // namespace qsweep
