#include "pipeline/experiment.h"

#include <cstdlib>
#include <regex>
#include <set>

#include "pipeline/interpolate.h"
#include "pipeline/schema.h"

namespace qsweep {

namespace fs = std::filesystem;

const Entry* Experiment::find_entry(const std::string& collection, const std::string& name) const {
  auto it = collections.find(collection);
  if (it == collections.end()) return nullptr;
  for (const auto& e : it->second)
    if (e.name == name) return &e;
  return nullptr;
}

std::optional<std::string> resolve_common(const Experiment& e, const std::string& path,
                                          const std::optional<std::string>& fallback) {
  if (path.rfind("env.", 0) == 0) {
    const char* v = std::getenv(path.substr(4).c_str());
    if (v) return std::string(v);
    return fallback;
  }
  if (path.rfind("vars.", 0) == 0) {
    std::string rest = path.substr(5);
    size_t dot = rest.find('.');
    auto it = e.vars.find(rest.substr(0, dot));
    if (it == e.vars.end()) return std::nullopt;
    if (dot == std::string::npos) return json_to_text(it->second);
    const nlohmann::json* v = json_path(it->second, rest.substr(dot + 1));
    if (!v) return std::nullopt;
    return json_to_text(*v);
  }
  if (path == "experiment.name") return e.name;
  if (path == "experiment.dir") return e.dir.string();
  return std::nullopt;
}

namespace {

constexpr size_t k_max_nodes = 1'000'000;  // guards against alias bombs

class Loader {
 public:
  Loader(const StageRegistry& reg, const LoadOptions& opts, Experiment* e, Diagnostics* d)
      : reg_(reg), opts_(opts), e_(e), d_(d) {}

  void load_file(const fs::path& path, const std::string& shown, bool top, const SourceLoc& from,
                 std::vector<std::string> chain) {
    fs::path canon = fs::weakly_canonical(path);
    for (const auto& c : chain)
      if (c == canon.string()) {
        std::string cyc;
        for (const auto& x : chain) cyc += x + " -> ";
        d_->push_back({from, "import cycle: " + cyc + canon.string(), "remove one of the imports"});
        return;
      }
    chain.push_back(canon.string());
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
      d_->push_back({from, "cannot read experiment file '" + shown + "': " +
                               (fs::exists(path, ec) ? "not a regular file" : "no such file"),
                     top ? "check the path" : "imports are relative to the importing file"});
      return;
    }
    e_->files.push_back(shown);
    const std::string& file = e_->files.back();
    YAML::Node doc;
    try {
      doc = YAML::LoadFile(path.string());
    } catch (const YAML::ParserException& ex) {
      SourceLoc l{file, ex.mark.line + 1, ex.mark.column + 1};
      d_->push_back({l, "YAML syntax error: " + ex.msg, ""});
      return;
    } catch (const std::exception& ex) {
      d_->push_back({SourceLoc{file}, std::string("cannot parse YAML: ") + ex.what(), ""});
      return;
    }
    if (!doc.IsDefined() || doc.IsNull()) {
      if (top) d_->push_back({SourceLoc{file}, "experiment file is empty", "see docs/experiment-format.md"});
      return;
    }
    size_t before = d_->size();
    validate(doc, *schema_, file, "", d_);
    if (d_->size() != before) return;
    if (!top)
      for (const char* k : {"name", "cache", "limits", "version", "description"})
        if (doc[k].IsDefined())
          d_->push_back({loc_of(doc[k], file), std::string("'") + k + "' may only be set in the top-level experiment, not in an import", "move it to " + e_->files.front()});
    if (top) {
      if (!doc["version"].IsDefined()) {
        d_->push_back({loc_of(doc, file), "missing required key 'version'", "add `version: 1` at the top"});
      } else if (doc["version"].Scalar() != "1") {
        d_->push_back({loc_of(doc["version"], file), "experiment format version " + doc["version"].Scalar() + " is not supported by this qsweep (supports 1)", "upgrade qsweep or convert the file"});
      }
      if (!doc["name"].IsDefined()) {
        d_->push_back({loc_of(doc, file), "missing required key 'name'", "add `name: my-experiment`"});
      } else {
        e_->name = doc["name"].Scalar();
        static const std::regex name_re("^[A-Za-z0-9_.-]+$");
        if (!std::regex_match(e_->name, name_re))
          d_->push_back({loc_of(doc["name"], file), "invalid experiment name '" + e_->name + "'", "use letters, digits, '_', '.', '-'"});
      }
      if (doc["description"].IsDefined()) e_->description = doc["description"].Scalar();
      if (doc["cache"].IsDefined()) cache_node_ = {doc["cache"], &file};
      if (doc["limits"].IsDefined()) limits_node_ = {doc["limits"], &file};
    }
    // Imports first, so that this file's definitions (and vars) come after.
    if (doc["imports"].IsDefined()) {
      for (const auto& imp : doc["imports"]) {
        fs::path p = fs::path(path).parent_path() / imp.Scalar();
        fs::path shown_p = (fs::path(shown).parent_path() / imp.Scalar()).lexically_normal();
        load_file(p, shown_p.string(), false, loc_of(imp, file), chain);
      }
    }
    if (doc["vars"].IsDefined() && doc["vars"].IsMap())
      for (auto it = doc["vars"].begin(); it != doc["vars"].end(); ++it)
        vars_.push_back({it->first.Scalar(), it->second, &file});
    for (const auto& coll : collection_names()) {
      if (!doc[coll].IsDefined() || !doc[coll].IsMap()) continue;
      for (auto it = doc[coll].begin(); it != doc[coll].end(); ++it)
        add_entry(coll, it->first, it->second, file);
    }
    if (doc["stages"].IsDefined())
      for (const auto& s : doc["stages"]) add_stage(s, file);
  }

  void finish() {
    // vars: later definitions (the importing file) win; --set wins over all.
    // Overrides are set first so that vars referring to them see them.
    for (const auto& [k, val] : opts_.var_overrides) {
      nlohmann::json j;
      std::string err;
      scalar_to_json(val, false, Schema::Type::kAny, &j, &err);
      e_->vars[k] = j;
    }
    for (const auto& v : vars_) {
      if (opts_.var_overrides.count(v.name)) continue;
      nlohmann::json j;
      if (!to_json(v.node, *v.file, "vars." + v.name, &j)) continue;
      e_->vars[v.name] = std::move(j);
    }
    for (auto& [coll, entries] : raw_entries_)
      for (auto& re : entries) {
        Entry en{re.name, nullptr, loc_of(re.key, *re.file)};
        if (!to_json(re.node, *re.file, coll + "." + re.name, &en.value)) continue;
        if (en.value.is_null()) en.value = nlohmann::json::object();
        e_->collections[coll].push_back(std::move(en));
      }
    if (cache_node_.file) {
      std::string s;
      if (interp(cache_node_.node, *cache_node_.file, "cache", &s))
        e_->cache_dir = (e_->dir / s).lexically_normal();
    }
    if (limits_node_.file) read_limits();
  }

 private:
  struct NamedNode {
    std::string name;
    YAML::Node node;
    const std::string* file;
  };
  struct RawEntry {
    std::string name;
    YAML::Node key, node;
    const std::string* file;
  };
  struct FileNode {
    YAML::Node node;
    const std::string* file = nullptr;
  };

  void add_entry(const std::string& coll, const YAML::Node& key, const YAML::Node& val,
                 const std::string& file) {
    const std::string& name = key.Scalar();
    static const std::regex name_re("^[A-Za-z0-9_.+-]+$");
    if (!std::regex_match(name, name_re)) {
      d_->push_back({loc_of(key, file), "invalid name '" + name + "' in " + coll, "use letters, digits, '_', '.', '+', '-' (names appear in node ids)"});
      return;
    }
    for (const auto& other : raw_entries_[coll])
      if (other.name == name) {
        d_->push_back({loc_of(key, file), "duplicate name '" + name + "' in " + coll, "first defined at " + loc_of(other.key, *other.file).str()});
        return;
      }
    if (!val.IsMap() && !val.IsNull()) {
      d_->push_back({loc_of(val, file), coll + "." + name + ": expected a mapping of fields", ""});
      return;
    }
    raw_entries_[coll].push_back({name, key, val, &file});
  }

  void add_stage(const YAML::Node& s, const std::string& file) {
    StageDef st;
    st.file = &file;
    st.loc = loc_of(s, file);
    st.name = s["name"].Scalar();
    st.kind = s["kind"].Scalar();
    static const std::regex name_re("^[A-Za-z][A-Za-z0-9_-]*$");
    if (!std::regex_match(st.name, name_re)) {
      d_->push_back({loc_of(s["name"], file), "invalid stage name '" + st.name + "'", "start with a letter; use letters, digits, '_', '-'"});
      return;
    }
    for (const auto& o : e_->stages)
      if (o.name == st.name) {
        d_->push_back({loc_of(s["name"], file), "duplicate stage name '" + st.name + "'", "first defined at " + o.loc.str()});
        return;
      }
    if (s["description"].IsDefined()) st.description = s["description"].Scalar();
    // YAML::Node::operator= assigns *content* (and throws for an undefined
    // right-hand side): rebind by construction instead.
    rebind(st.matrix, s["matrix"]);
    rebind(st.inputs, s["inputs"]);
    rebind(st.params, s["params"]);
    rebind(st.overrides, s["overrides"]);
    rebind(st.resources, s["resources"]);
    rebind(st.slurm, s["slurm"]);
    if (s["retries"].IsDefined()) {
      nlohmann::json j;
      std::string err;
      if (!scalar_to_json(s["retries"].Scalar(), false, Schema::Type::kInt, &j, &err)) {
        d_->push_back({loc_of(s["retries"], file), "stages." + st.name + ".retries: " + err, "retries must be a literal integer"});
        return;
      }
      st.retries = static_cast<int>(j.get<int64_t>());
    }
    e_->stages.push_back(std::move(st));
  }

  bool interp(const YAML::Node& n, const std::string& file, const std::string& what, std::string* out) {
    std::string err;
    auto resolve = [&](const std::string& p, const std::optional<std::string>& fb) {
      return resolve_common(*e_, p, fb);
    };
    if (!interpolate(n.Scalar(), resolve, out, &err)) {
      d_->push_back({loc_of(n, file), what + ": " + err, hint_for(err)});
      return false;
    }
    return true;
  }

  std::string hint_for(const std::string& err) {
    if (err.find("${vars.") != std::string::npos) {
      std::vector<std::string> names;
      for (const auto& [k, v] : e_->vars) names.push_back("vars." + k);
      for (const auto& v : vars_) names.push_back("vars." + v.name);
      size_t a = err.find("${") + 2, b = err.find('}', a);
      std::string s = suggest(err.substr(a, b - a), names);
      return s.empty() ? "define it under `vars:` or pass --set vars.NAME=VALUE" : s;
    }
    if (err.find("${env.") != std::string::npos)
      return "set the environment variable, or give a default: ${env.NAME:-default}";
    return "at load time only ${vars.*}, ${env.*} and ${experiment.name|dir} are defined";
  }

  bool to_json(const YAML::Node& n, const std::string& file, const std::string& what,
               nlohmann::json* out) {
    size_t budget = k_max_nodes;
    return to_json_rec(n, file, what, out, &budget, 0);
  }

  bool to_json_rec(const YAML::Node& n, const std::string& file, const std::string& what,
                   nlohmann::json* out, size_t* budget, int depth) {
    if ((*budget)-- == 0 || depth > 64) {
      d_->push_back({loc_of(n, file), what + ": value too large or too deeply nested (alias expansion?)", "simplify the value"});
      return false;
    }
    switch (n.Type()) {
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        *out = nullptr;
        return true;
      case YAML::NodeType::Scalar: {
        std::string s;
        if (!interp(n, file, what, &s)) return false;
        std::string err;
        scalar_to_json(s, n.Tag() == "!", Schema::Type::kAny, out, &err);
        return true;
      }
      case YAML::NodeType::Sequence: {
        *out = nlohmann::json::array();
        for (size_t i = 0; i < n.size(); ++i) {
          nlohmann::json v;
          if (!to_json_rec(n[i], file, what + "[" + std::to_string(i) + "]", &v, budget, depth + 1)) return false;
          out->push_back(std::move(v));
        }
        return true;
      }
      case YAML::NodeType::Map: {
        *out = nlohmann::json::object();
        for (auto it = n.begin(); it != n.end(); ++it) {
          nlohmann::json v;
          if (!to_json_rec(it->second, file, what + "." + it->first.Scalar(), &v, budget, depth + 1)) return false;
          (*out)[it->first.Scalar()] = std::move(v);
        }
        return true;
      }
    }
    return false;
  }

  void read_limits() {
    const YAML::Node& l = limits_node_.node;
    const std::string& f = *limits_node_.file;
    auto get_int = [&](const char* k, std::optional<int>* dst) {
      if (!l[k].IsDefined()) return;
      std::string s;
      if (!interp(l[k], f, std::string("limits.") + k, &s)) return;
      nlohmann::json j;
      std::string err;
      if (!scalar_to_json(s, false, Schema::Type::kInt, &j, &err) || j.get<int64_t>() < 0)
        d_->push_back({loc_of(l[k], f), std::string("limits.") + k + ": expected a non-negative integer, got '" + s + "'", ""});
      else
        *dst = static_cast<int>(j.get<int64_t>());
    };
    get_int("threads", &e_->limits.threads);
    get_int("gpu", &e_->limits.gpu);
    get_int("api", &e_->limits.api);
    if (l["memory"].IsDefined()) {
      std::string s;
      uint64_t v;
      if (interp(l["memory"], f, "limits.memory", &s)) {
        if (parse_size(s, &v))
          e_->limits.memory = v;
        else
          d_->push_back({loc_of(l["memory"], f), "limits.memory: expected a size such as 16GiB, got '" + s + "'", ""});
      }
    }
  }

 public:
  SchemaPtr schema_;

 private:
  const StageRegistry& reg_;
  const LoadOptions& opts_;
  Experiment* e_;
  Diagnostics* d_;
  std::vector<NamedNode> vars_;
  std::map<std::string, std::vector<RawEntry>> raw_entries_;
  FileNode cache_node_, limits_node_;
};

}  // namespace

bool load_experiment(const fs::path& file, const StageRegistry& registry, const LoadOptions& opts,
                     Experiment* out, Diagnostics* diags) {
  *out = Experiment{};
  out->file = file;
  std::error_code ec;
  out->dir = fs::absolute(file, ec).parent_path();
  size_t before = diags->size();
  Loader loader(registry, opts, out, diags);
  loader.schema_ = experiment_schema(registry);
  loader.load_file(file, file.string(), true, SourceLoc{file.string()}, {});
  if (diags->size() != before) return false;
  loader.finish();
  return diags->size() == before;
}

}  // namespace qsweep
