#include "pipeline/expand.h"

#include <algorithm>
#include <regex>
#include <set>

#include "pipeline/interpolate.h"
#include "pipeline/schema.h"

namespace qsweep {

namespace fs = std::filesystem;

std::string axis_of_collection(const std::string& c) { return c.substr(0, c.size() - 1); }

std::string collection_of_axis(const std::string& axis) {
  for (const auto& c : collection_names())
    if (axis_of_collection(c) == axis) return c;
  return {};
}

namespace {

using Combo = std::vector<std::pair<std::string, std::string>>;  // (axis, value) in axis order

bool is_runtime_name(const std::string& path, const Stage& st) {
  static const std::vector<std::string> k_fixed = {"output_dir", "node", "key", "threads"};
  if (path.rfind("inputs.", 0) == 0 || path.rfind("params.", 0) == 0) return true;
  if (std::find(k_fixed.begin(), k_fixed.end(), path) != k_fixed.end()) return true;
  for (const auto& n : st.runtime_placeholders())
    if (path == n || path.rfind(n + ".", 0) == 0) return true;
  return false;
}

std::string escape_literal(const std::string& s) {
  std::string r;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s.compare(i, 2, "${") == 0) r += "$";
    r += s[i];
  }
  return r;
}

class Expander {
 public:
  Expander(const Experiment& e, const StageRegistry& reg, Graph* g, Diagnostics* d)
      : e_(e), reg_(reg), g_(g), d_(d) {}

  bool run() {
    g_->experiment = e_.name;
    g_->experiment_dir = e_.dir;
    size_t before = d_->size();
    for (const auto& sd : e_.stages) expand_stage(sd);
    if (d_->size() != before) return false;
    for (size_t i = 0; i < g_->nodes.size(); ++i) resolve_inputs(static_cast<int>(i));
    if (d_->size() != before) return false;
    return link_graph(g_, d_);
  }

 private:
  struct PendingInput {
    std::string name;
    bool is_list;
    std::vector<std::pair<std::string, YAML::Node>> refs;  // interpolated text, node for loc
  };

  void err(const YAML::Node& n, const StageDef& sd, std::string msg, std::string hint = {}) {
    d_->push_back({n.IsDefined() ? loc_of(n, *sd.file) : sd.loc, std::move(msg), std::move(hint)});
  }

  // --- matrix ---------------------------------------------------------------
  bool matrix_axes(const StageDef& sd, std::vector<std::pair<std::string, std::vector<std::string>>>* axes) {
    if (!sd.matrix.IsDefined() || sd.matrix.IsNull()) return true;
    for (auto it = sd.matrix.begin(); it != sd.matrix.end(); ++it) {
      const std::string axis = it->first.Scalar();
      if (axis == "include" || axis == "exclude") continue;
      const std::string coll = collection_of_axis(axis);
      std::vector<std::string> values;
      const YAML::Node& v = it->second;
      if (v.IsScalar() && (v.Scalar() == "*" || v.Scalar() == "all")) {
        if (coll.empty()) {
          err(v, sd, "stages." + sd.name + ".matrix." + axis + ": '" + v.Scalar() + "' only works for axes over a collection (model, dataset, recipe, task, backend)", "list the values");
          return false;
        }
        auto cit = e_.collections.find(coll);
        if (cit != e_.collections.end())
          for (const auto& en : cit->second) values.push_back(en.name);
        if (values.empty()) {
          err(v, sd, "stages." + sd.name + ".matrix." + axis + ": '*' but the experiment defines no " + coll, "add entries under `" + coll + ":`");
          return false;
        }
      } else if (v.IsSequence()) {
        for (const auto& x : v) {
          if (!x.IsScalar()) {
            err(x, sd, "stages." + sd.name + ".matrix." + axis + ": values must be scalars");
            return false;
          }
          std::string s;
          if (!interp_common(x, sd, "matrix." + axis, &s)) return false;
          if (!coll.empty() && !e_.find_entry(coll, s)) {
            std::vector<std::string> names;
            if (auto cit = e_.collections.find(coll); cit != e_.collections.end())
              for (const auto& en : cit->second) names.push_back(en.name);
            err(x, sd, "stages." + sd.name + ".matrix." + axis + ": '" + s + "' is not defined under " + coll, names.empty() ? "define it under `" + coll + ":`" : suggest(s, names));
            return false;
          }
          if (std::find(values.begin(), values.end(), s) != values.end()) {
            err(x, sd, "stages." + sd.name + ".matrix." + axis + ": duplicate value '" + s + "'");
            return false;
          }
          values.push_back(s);
        }
        if (values.empty()) {
          err(v, sd, "stages." + sd.name + ".matrix." + axis + ": empty list", "give at least one value, or remove the axis");
          return false;
        }
      } else {
        err(v, sd, "stages." + sd.name + ".matrix." + axis + ": expected a list of values or \"*\"");
        return false;
      }
      axes->push_back({axis, std::move(values)});
    }
    return true;
  }

  bool read_partial(const YAML::Node& n, const StageDef& sd, const char* what,
                    const std::vector<std::pair<std::string, std::vector<std::string>>>& axes,
                    std::vector<std::map<std::string, std::string>>* out) {
    if (!n.IsDefined()) return true;
    if (!n.IsSequence()) {
      err(n, sd, std::string("stages.") + sd.name + ".matrix." + what + ": expected a list of {axis: value} mappings");
      return false;
    }
    std::vector<std::string> axis_names;
    for (const auto& a : axes) axis_names.push_back(a.first);
    for (const auto& item : n) {
      if (!item.IsMap()) {
        err(item, sd, std::string("stages.") + sd.name + ".matrix." + what + ": expected a mapping {axis: value}");
        return false;
      }
      std::map<std::string, std::string> m;
      for (auto it = item.begin(); it != item.end(); ++it) {
        const std::string& k = it->first.Scalar();
        if (std::find(axis_names.begin(), axis_names.end(), k) == axis_names.end()) {
          err(it->first, sd, std::string("stages.") + sd.name + ".matrix." + what + ": '" + k + "' is not an axis of this matrix", suggest(k, axis_names));
          return false;
        }
        std::string s;
        if (!it->second.IsScalar() || !interp_common(it->second, sd, std::string("matrix.") + what, &s)) {
          if (!it->second.IsScalar()) err(it->second, sd, std::string("matrix.") + what + "." + k + ": expected a scalar");
          return false;
        }
        std::string coll = collection_of_axis(k);
        if (!coll.empty() && !e_.find_entry(coll, s)) {
          err(it->second, sd, std::string("stages.") + sd.name + ".matrix." + what + ": '" + s + "' is not defined under " + coll);
          return false;
        }
        m[k] = s;
      }
      if (std::string(what) == "include" && m.size() != axes.size()) {
        err(item, sd, "stages." + sd.name + ".matrix.include: each entry must give a value for every axis (" + [&] {
          std::string s;
          for (size_t i = 0; i < axis_names.size(); ++i) s += (i ? ", " : "") + axis_names[i];
          return s;
        }() + ")");
        return false;
      }
      out->push_back(std::move(m));
    }
    return true;
  }

  bool combos(const StageDef& sd, std::vector<Combo>* out) {
    std::vector<std::pair<std::string, std::vector<std::string>>> axes;
    if (!matrix_axes(sd, &axes)) return false;
    std::vector<std::map<std::string, std::string>> include, exclude;
    if (sd.matrix.IsDefined() && sd.matrix.IsMap()) {
      if (!read_partial(sd.matrix["exclude"], sd, "exclude", axes, &exclude)) return false;
      if (!read_partial(sd.matrix["include"], sd, "include", axes, &include)) return false;
      if (axes.empty() && (sd.matrix["include"].IsDefined() || sd.matrix["exclude"].IsDefined())) {
        err(sd.matrix, sd, "stages." + sd.name + ".matrix: include/exclude without any axis");
        return false;
      }
    }
    if (axes.empty()) {
      out->push_back({});
      return true;
    }
    std::vector<size_t> idx(axes.size(), 0);
    std::set<Combo> seen;
    while (true) {
      Combo c;
      for (size_t a = 0; a < axes.size(); ++a) c.push_back({axes[a].first, axes[a].second[idx[a]]});
      bool excluded = std::any_of(exclude.begin(), exclude.end(), [&](const auto& ex) {
        return std::all_of(ex.begin(), ex.end(), [&](const auto& kv) {
          for (const auto& [a, v] : c)
            if (a == kv.first) return v == kv.second;
          return false;
        });
      });
      if (!excluded) {
        seen.insert(c);
        out->push_back(std::move(c));
      }
      size_t a = axes.size();
      while (a > 0) {
        --a;
        if (++idx[a] < axes[a].second.size()) break;
        idx[a] = 0;
        if (a == 0) {
          a = SIZE_MAX;
          break;
        }
      }
      if (a == SIZE_MAX) break;
    }
    for (const auto& inc : include) {
      Combo c;
      for (const auto& ax : axes) c.push_back({ax.first, inc.at(ax.first)});
      if (seen.insert(c).second) out->push_back(std::move(c));
    }
    if (out->empty()) {
      err(sd.matrix, sd, "stages." + sd.name + ".matrix: every combination is excluded", "check `exclude`");
      return false;
    }
    return true;
  }

  // --- interpolation ----------------------------------------------------------
  bool interp_common(const YAML::Node& n, const StageDef& sd, const std::string& what, std::string* out) {
    std::string e;
    auto resolve = [&](const std::string& p, const std::optional<std::string>& fb) {
      return resolve_common(e_, p, fb);
    };
    if (!interpolate(n.Scalar(), resolve, out, &e)) {
      err(n, sd, "stages." + sd.name + "." + what + ": " + e, "matrix values may use ${vars.*} and ${env.*}");
      return false;
    }
    return true;
  }

  // True when `raw` is exactly one placeholder (`${vars.limit}`) whose value
  // is YAML null: an unquoted param written so is null too (its default).
  bool whole_placeholder_is_null(const std::string& raw, const Combo& c) {
    const nlohmann::json* v = whole_placeholder_value(raw, c);
    return v && v->is_null();
  }

  // The value of `raw` when it is exactly one placeholder of a variable or a
  // collection field (`${backend.spec}`), else null: an unquoted param
  // written so takes a mapping or list value as it is.
  const nlohmann::json* whole_placeholder_value(const std::string& raw, const Combo& c) {
    std::vector<TemplatePart> parts;
    std::string perr;
    if (!parse_template(raw, &parts, &perr) || parts.size() != 1 || !parts[0].is_placeholder)
      return nullptr;
    const std::string& p = parts[0].text;
    const size_t dot = p.find('.');
    const nlohmann::json* v = nullptr;
    if (p.rfind("vars.", 0) == 0) {
      const std::string rest = p.substr(5);
      const size_t d2 = rest.find('.');
      auto it = e_.vars.find(rest.substr(0, d2));
      if (it == e_.vars.end()) return nullptr;
      v = d2 == std::string::npos ? &it->second : json_path(it->second, rest.substr(d2 + 1));
    } else if (dot != std::string::npos) {
      for (const auto& [axis, value] : c) {
        if (axis != p.substr(0, dot)) continue;
        const std::string coll = collection_of_axis(axis);
        const Entry* en = coll.empty() ? nullptr : e_.find_entry(coll, value);
        if (en) v = json_path(en->value, p.substr(dot + 1));
      }
    }
    return v;
  }

  std::optional<std::string> resolve_axis(const Combo& c, const std::string& p) {
    size_t dot = p.find('.');
    std::string head = p.substr(0, dot);
    for (const auto& [axis, value] : c) {
      if (axis != head) continue;
      if (dot == std::string::npos) return value;
      std::string coll = collection_of_axis(axis);
      if (coll.empty()) return std::nullopt;
      const Entry* en = e_.find_entry(coll, value);
      if (!en) return std::nullopt;
      const nlohmann::json* v = json_path(en->value, p.substr(dot + 1));
      if (!v) return std::nullopt;
      return json_to_text(*v);
    }
    return std::nullopt;
  }

  // Substitutes expansion-time placeholders of a node; runtime ones are kept
  // (re-escaped so that the stage sees them exactly as written).
  bool interp_node(const std::string& text, const YAML::Node& at, const StageDef& sd, const Stage& st,
                   const Combo& c, const std::string& node_id, const std::string& what,
                   const std::set<std::string>* input_names, std::string* out) {
    std::vector<TemplatePart> parts;
    std::string e;
    if (!parse_template(text, &parts, &e)) {
      err(at, sd, node_id + ": " + what + ": " + e);
      return false;
    }
    std::string r;
    for (const auto& part : parts) {
      if (!part.is_placeholder) {
        r += escape_literal(part.text);
        continue;
      }
      const std::string& p = part.text;
      if (is_runtime_name(p, st)) {
        if (input_names && p.rfind("inputs.", 0) == 0) {
          std::string name = p.substr(7);
          name = name.substr(0, name.find('.'));
          if (!input_names->count(name)) {
            std::vector<std::string> names(input_names->begin(), input_names->end());
            err(at, sd, node_id + ": " + what + ": ${" + p + "} names no declared input",
                names.empty() ? "declare it under `inputs:`" : suggest(name, names));
            return false;
          }
        }
        r += "${" + p + (part.fallback ? ":-" + *part.fallback : "") + "}";
        continue;
      }
      std::optional<std::string> v = resolve_axis(c, p);
      if (!v) v = resolve_common(e_, p, std::nullopt);
      if (!v && part.fallback) {
        std::string fb;
        if (!interp_node(*part.fallback, at, sd, st, c, node_id, what, input_names, &fb)) return false;
        v = std::move(fb);
        // fb is already escaped for the stage; append as is.
        r += *v;
        continue;
      }
      if (!v) {
        std::vector<std::string> names;
        for (const auto& [axis, value] : c) names.push_back(axis);
        for (const auto& [k, x] : e_.vars) names.push_back("vars." + k);
        std::string hint = suggest(p, names);
        if (hint.empty()) {
          hint = "defined here: ";
          for (const auto& [axis, value] : c) hint += "${" + axis + "}, ";
          hint += "${vars.*}, ${env.*}, ${experiment.name}, and at run time ${inputs.*}, ${params.*}, ${output_dir}";
        }
        err(at, sd, node_id + ": " + what + ": undefined variable ${" + p + "}", hint);
        return false;
      }
      r += *v;
    }
    *out = std::move(r);
    return true;
  }

  // YAML param value -> typed JSON, interpolating every scalar.
  bool param_to_json(const YAML::Node& n, Schema::Type type, const StageDef& sd, const Stage& st,
                     const Combo& c, const std::string& node_id, const std::string& what,
                     const std::set<std::string>& input_names, nlohmann::json* out, int depth = 0) {
    if (depth > 64) {
      err(n, sd, node_id + ": " + what + ": nested too deeply");
      return false;
    }
    auto scalar = [&](const YAML::Node& x, Schema::Type t, const std::string& w, nlohmann::json* j) {
      std::string s;
      if (!interp_node(x.Scalar(), x, sd, st, c, node_id, w, &input_names, &s)) return false;
      std::string e;
      // An unquoted param value (not a list element) that interpolates to
      // YAML's null (`${recipe.x:-null}`) is null: the param falls back to its
      // default, as if not written.
      if (x.Tag() != "!" && w.find('[') == std::string::npos &&
          (s == "null" || s == "~" || (s.empty() && whole_placeholder_is_null(x.Scalar(), c)))) {
        *j = nullptr;
        return true;
      }
      if (x.Tag() != "!" && t == Schema::Type::kAny) {
        const nlohmann::json* v = whole_placeholder_value(x.Scalar(), c);
        if (v && (v->is_object() || v->is_array())) {
          *j = *v;
          return true;
        }
      }
      if (!scalar_to_json(s, x.Tag() == "!", t, j, &e)) {
        err(x, sd, node_id + ": " + w + ": " + e);
        return false;
      }
      return true;
    };
    switch (type) {
      case Schema::Type::kList:
        if (!n.IsSequence()) {
          err(n, sd, node_id + ": " + what + ": expected a list");
          return false;
        }
        *out = nlohmann::json::array();
        for (size_t i = 0; i < n.size(); ++i) {
          nlohmann::json j;
          if (!n[i].IsScalar()) {
            err(n[i], sd, node_id + ": " + what + "[" + std::to_string(i) + "]: expected a string");
            return false;
          }
          if (!scalar(n[i], Schema::Type::kString, what + "[" + std::to_string(i) + "]", &j)) return false;
          out->push_back(std::move(j));
        }
        return true;
      case Schema::Type::kMap:
        if (n.IsNull()) {
          *out = nlohmann::json::object();
          return true;
        }
        if (!n.IsMap()) {
          err(n, sd, node_id + ": " + what + ": expected a mapping");
          return false;
        }
        *out = nlohmann::json::object();
        for (auto it = n.begin(); it != n.end(); ++it) {
          nlohmann::json j;
          if (!it->second.IsScalar()) {
            err(it->second, sd, node_id + ": " + what + "." + it->first.Scalar() + ": expected a string");
            return false;
          }
          if (!scalar(it->second, Schema::Type::kString, what + "." + it->first.Scalar(), &j)) return false;
          (*out)[it->first.Scalar()] = std::move(j);
        }
        return true;
      case Schema::Type::kAny:
        if (n.IsSequence()) {
          *out = nlohmann::json::array();
          for (size_t i = 0; i < n.size(); ++i) {
            nlohmann::json j;
            if (!param_to_json(n[i], type, sd, st, c, node_id, what + "[" + std::to_string(i) + "]", input_names, &j, depth + 1)) return false;
            out->push_back(std::move(j));
          }
          return true;
        }
        if (n.IsMap()) {
          *out = nlohmann::json::object();
          for (auto it = n.begin(); it != n.end(); ++it) {
            nlohmann::json j;
            if (!param_to_json(it->second, type, sd, st, c, node_id, what + "." + it->first.Scalar(), input_names, &j, depth + 1)) return false;
            (*out)[it->first.Scalar()] = std::move(j);
          }
          return true;
        }
        if (n.IsNull()) {
          *out = nullptr;
          return true;
        }
        return scalar(n, type, what, out);
      default:
        if (!n.IsScalar()) {
          err(n, sd, node_id + ": " + what + ": expected a scalar");
          return false;
        }
        return scalar(n, type, what, out);
    }
  }

  // --- stages -----------------------------------------------------------------
  void expand_stage(const StageDef& sd) {
    const Stage* st = reg_.find(sd.kind);
    if (!st) {
      d_->push_back({sd.loc, "stage '" + sd.name + "': unknown kind '" + sd.kind + "'", suggest(sd.kind, reg_.kinds())});
      return;
    }
    const auto specs = st->params();
    SchemaPtr ps = params_schema(specs);
    size_t before = d_->size();
    // Structure of params and overrides is checked once per stage.
    if (sd.params.IsDefined() && !sd.params.IsNull())
      validate(sd.params, *ps, *sd.file, "stages." + sd.name + ".params", d_);
    // Overrides are partial: the same keys and types, nothing required.
    Schema partial = *ps;
    partial.required.clear();
    if (sd.overrides.IsDefined())
      for (size_t i = 0; i < sd.overrides.size(); ++i)
        validate(sd.overrides[i]["params"], partial, *sd.file,
                 "stages." + sd.name + ".overrides[" + std::to_string(i) + "].params", d_);
    if (d_->size() != before) return;

    Resources res = st->default_resources();
    if (sd.resources.IsDefined()) {
      auto geti = [&](const char* k, int* dst) {
        if (sd.resources[k].IsDefined()) *dst = std::stoi(sd.resources[k].Scalar());
      };
      try {
        geti("threads", &res.threads);
        geti("gpu", &res.gpu);
        geti("api", &res.api);
      } catch (const std::exception&) {
        err(sd.resources, sd, "stages." + sd.name + ".resources: values must be literal integers");
        return;
      }
      if (sd.resources["memory"].IsDefined() && !parse_size(sd.resources["memory"].Scalar(), &res.memory)) {
        err(sd.resources["memory"], sd, "stages." + sd.name + ".resources.memory: expected a size such as 4GiB");
        return;
      }
    }

    nlohmann::json slurm = nlohmann::json::object();
    if (sd.slurm.IsDefined() && sd.slurm.IsMap()) {
      for (auto it = sd.slurm.begin(); it != sd.slurm.end(); ++it) {
        const std::string k = it->first.Scalar();
        const YAML::Node& v = it->second;
        if (v.IsSequence()) {
          nlohmann::json list = nlohmann::json::array();
          for (const auto& x : v) list.push_back(x.Scalar());
          slurm[k] = list;
        } else if (k == "local") {
          slurm[k] = v.Scalar() == "true" || v.Scalar() == "yes" || v.Scalar() == "on";
        } else if (k == "resubmits") {
          slurm[k] = std::stoi(v.Scalar());  // validated by the schema: a literal integer
        } else {
          slurm[k] = v.Scalar();
        }
      }
      if (slurm.contains("time")) {
        static const std::regex time_re(R"(^(\d+|\d+:\d{2}(:\d{2})?|\d+-\d{1,2}(:\d{2}(:\d{2})?)?|UNLIMITED|INFINITE)$)");
        if (!std::regex_match(slurm["time"].get<std::string>(), time_re)) {
          err(sd.slurm["time"], sd, "stages." + sd.name + ".slurm.time: '" + slurm["time"].get<std::string>() +
                                        "' is not a Slurm time limit; write MINUTES, HH:MM:SS or D-HH:MM:SS");
          return;
        }
      }
    }

    std::set<std::string> input_names;
    if (sd.inputs.IsDefined() && sd.inputs.IsMap())
      for (auto it = sd.inputs.begin(); it != sd.inputs.end(); ++it) input_names.insert(it->first.Scalar());

    std::vector<Combo> cs;
    if (!combos(sd, &cs)) return;
    for (const auto& c : cs) {
      Node node;
      node.stage = sd.name;
      node.kind = sd.kind;
      node.impl = st;
      node.axes = c;
      node.loc = sd.loc;
      node.retries = sd.retries;
      node.resources = res;
      node.slurm = slurm;
      node.id = sd.name;
      if (!c.empty()) {
        node.id += "[";
        for (size_t i = 0; i < c.size(); ++i) node.id += (i ? "," : "") + c[i].second;
        node.id += "]";
      }
      // Effective params node: base, then matching overrides (key-level replace).
      // (emplace, never operator=: that would write into the YAML document)
      std::map<std::string, YAML::Node> eff;
      auto put = [&](const std::string& k, const YAML::Node& v) {
        eff.erase(k);
        eff.emplace(k, v);
      };
      if (sd.params.IsDefined() && sd.params.IsMap())
        for (auto it = sd.params.begin(); it != sd.params.end(); ++it) put(it->first.Scalar(), it->second);
      if (sd.overrides.IsDefined()) {
        bool bad = false;
        for (const auto& ov : sd.overrides) {
          bool match = true;
          for (auto it = ov["when"].begin(); it != ov["when"].end(); ++it) {
            auto v = resolve_axis(c, it->first.Scalar());
            bool is_axis = std::any_of(c.begin(), c.end(), [&](const auto& kv) { return kv.first == it->first.Scalar(); });
            if (!is_axis) {
              std::vector<std::string> names;
              for (const auto& kv : c) names.push_back(kv.first);
              err(it->first, sd, "stages." + sd.name + ".overrides.when: '" + it->first.Scalar() + "' is not an axis of this stage's matrix", suggest(it->first.Scalar(), names));
              bad = true;
              break;
            }
            if (*v != it->second.Scalar()) match = false;
          }
          if (bad) return;
          if (match)
            for (auto it = ov["params"].begin(); it != ov["params"].end(); ++it) put(it->first.Scalar(), it->second);
        }
      }
      node.params = nlohmann::json::object();
      bool ok = true;
      for (const auto& spec : specs) {
        auto it = eff.find(spec.name);
        if (it == eff.end() || (it->second.IsNull() && spec.type != ParamType::kAny)) {
          if (spec.required) {
            err(sd.params, sd, node.id + ": missing required param '" + spec.name + "' (" + spec.doc + ")");
            ok = false;
            continue;
          }
          // Typed like a written value, so that spelling the default out
          // (`timeout_s: 0` -> 0.0) gives the same key as leaving it out.
          node.params[spec.name] = spec.type == ParamType::kNumber && spec.default_value.is_number()
                                       ? nlohmann::json(spec.default_value.get<double>())
                                       : spec.default_value;
          continue;
        }
        nlohmann::json j;
        if (!param_to_json(it->second, schema_type(spec.type), sd, *st, c, node.id, "params." + spec.name, input_names, &j)) {
          ok = false;
          continue;
        }
        if (j.is_null() && spec.type != ParamType::kAny) {  // interpolated to null: the default
          if (spec.required) {
            err(it->second, sd, node.id + ": required param '" + spec.name + "' is null (" + spec.doc + ")");
            ok = false;
            continue;
          }
          j = spec.type == ParamType::kNumber && spec.default_value.is_number()
                  ? nlohmann::json(spec.default_value.get<double>())
                  : spec.default_value;
        }
        node.params[spec.name] = std::move(j);
      }
      if (!ok) return;
      st->resolve_defaults(node.params, node.resources);
      if (std::string e = st->check_params(node.params); !e.empty()) {
        err(sd.params, sd, node.id + ": " + e);
        return;
      }
      // Inputs, interpolated now, resolved once every node exists.
      std::vector<PendingInput> pins;
      if (sd.inputs.IsDefined() && sd.inputs.IsMap()) {
        for (auto it = sd.inputs.begin(); it != sd.inputs.end(); ++it) {
          PendingInput pi{it->first.Scalar(), it->second.IsSequence(), {}};
          std::vector<YAML::Node> items;
          if (it->second.IsSequence())
            for (const auto& x : it->second) items.push_back(x);
          else
            items.push_back(it->second);
          for (const auto& x : items) {
            std::string s;
            if (!interp_node(x.Scalar(), x, sd, *st, c, node.id, "inputs." + pi.name, nullptr, &s)) return;
            if (has_placeholder(s)) {
              err(x, sd, node.id + ": inputs." + pi.name + ": run-time placeholders are not allowed in input references");
              return;
            }
            // Undo the literal escaping of interp_node: references are plain text.
            std::string plain;
            for (size_t k = 0; k < s.size(); ++k) {
              if (s.compare(k, 3, "$${") == 0) continue;
              plain += s[k];
            }
            // A reference written as one whole placeholder that resolves to
            // null/empty (`manifest: ${vars.manifest}` with the variable
            // null) is no reference: an optional input left out.
            const std::string& raw = x.Scalar();
            if (plain.empty() && raw.rfind("${", 0) == 0 && raw.back() == '}' &&
                raw.find("${", 2) == std::string::npos)
              continue;
            pi.refs.push_back({plain, x});
          }
          if (pi.refs.empty() && !pi.is_list) continue;
          pins.push_back(std::move(pi));
        }
      }
      std::sort(pins.begin(), pins.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
      int index = static_cast<int>(g_->nodes.size());
      g_->by_id[node.id] = index;
      g_->nodes.push_back(std::move(node));
      pending_.push_back({std::move(pins), &sd});
    }
  }

  void resolve_inputs(int i) {
    Node& node = g_->nodes[i];
    const auto& [pins, sdp] = pending_[i];
    const StageDef& sd = *sdp;
    for (const auto& pi : pins) {
      NodeInput in{pi.name, pi.is_list, {}};
      for (const auto& [ref, at] : pi.refs) {
        if (ref.rfind("file:", 0) == 0) {
          std::string rel = ref.substr(5);
          if (rel.empty()) {
            err(at, sd, node.id + ": inputs." + pi.name + ": empty file path");
            return;
          }
          fs::path p = fs::path(rel).is_absolute() ? fs::path(rel) : (e_.dir / rel);
          std::error_code fec;
          if (node.impl && fs::is_regular_file(p, fec)) {
            if (std::string e = node.impl->check_file_input(pi.name, p.lexically_normal()); !e.empty()) {
              err(at, sd, node.id + ": inputs." + pi.name + ": " + e);
              return;
            }
          }
          in.items.push_back({-1, p.lexically_normal(), rel});
          continue;
        }
        std::vector<int> hits;
        bool wildcard = ref.find_first_of("*?") != std::string::npos;
        if (wildcard) {
          hits = match_nodes(*g_, ref);
          if (hits.empty()) {
            err(at, sd, node.id + ": inputs." + pi.name + ": '" + ref + "' matches no node", "run `qsweep plan` to list node ids");
            return;
          }
          if (!pi.is_list && hits.size() != 1) {
            err(at, sd, node.id + ": inputs." + pi.name + ": '" + ref + "' matches " + std::to_string(hits.size()) + " nodes", "write the input as a YAML list ([\"" + ref + "\"]) to take them all");
            return;
          }
        } else {
          auto it = g_->by_id.find(ref);
          if (it != g_->by_id.end()) {
            hits.push_back(it->second);
          } else {
            std::vector<std::string> ids;
            std::vector<int> of_stage;
            for (int k = 0; k < static_cast<int>(g_->nodes.size()); ++k) {
              ids.push_back(g_->nodes[k].id);
              if (g_->nodes[k].stage == ref) of_stage.push_back(k);
            }
            std::string hint = suggest(ref, ids);
            if (!of_stage.empty())
              hint = "stage '" + ref + "' has a matrix; name one node, e.g. '" + g_->nodes[of_stage[0]].id + "', or a wildcard '" + ref + "[*]' in a list";
            else if (hint.empty() && ref.find("file") == std::string::npos && ref.find('/') != std::string::npos)
              hint = "for a local file write 'file:" + ref + "'";
            err(at, sd, node.id + ": inputs." + pi.name + ": no node '" + ref + "' in this experiment", hint);
            return;
          }
        }
        for (int h : hits) {
          if (h == i) {
            err(at, sd, node.id + ": inputs." + pi.name + ": a node cannot consume itself");
            return;
          }
          in.items.push_back({h, {}, {}});
        }
      }
      node.inputs.push_back(std::move(in));
    }
  }

  const Experiment& e_;
  const StageRegistry& reg_;
  Graph* g_;
  Diagnostics* d_;
  std::vector<std::pair<std::vector<PendingInput>, const StageDef*>> pending_;
};

}  // namespace

bool expand_experiment(const Experiment& e, const StageRegistry& registry, Graph* out,
                       Diagnostics* diags) {
  *out = Graph{};
  Expander x(e, registry, out, diags);
  return x.run();
}

}  // namespace qsweep
