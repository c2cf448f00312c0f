#include "pipeline/schema.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <regex>

namespace qsweep {

using Type = Schema::Type;

const Schema* Schema::prop(const std::string& name) const {
  for (const auto& [k, v] : props)
    if (k == name) return v.get();
  return nullptr;
}

std::vector<std::string> Schema::prop_names() const {
  std::vector<std::string> r;
  for (const auto& [k, v] : props) r.push_back(k);
  return r;
}

SourceLoc loc_of(const YAML::Node& n, const std::string& file) {
  SourceLoc l;
  l.file = file;
  if (n.IsDefined() && n.Mark().line >= 0) {
    l.line = n.Mark().line + 1;
    l.column = n.Mark().column + 1;
  }
  return l;
}

namespace {

std::shared_ptr<Schema> make(Type t, std::string doc) {
  auto s = std::make_shared<Schema>();
  s->type = t;
  s->doc = std::move(doc);
  return s;
}

std::shared_ptr<Schema> object(std::string doc) { return make(Type::kObject, std::move(doc)); }

void add(std::shared_ptr<Schema>& obj, const std::string& name, SchemaPtr s, bool required = false) {
  obj->props.emplace_back(name, std::move(s));
  if (required) obj->required.push_back(name);
}

SchemaPtr resources_schema(const std::string& what) {
  auto r = object(what);
  auto threads = make(Type::kInt, "CPU threads");
  threads->minimum = 0;
  add(r, "threads", threads);
  add(r, "memory", make(Type::kSize, "memory in bytes, or with a unit: 512MiB, 4GiB, 8GB"));
  auto gpu = make(Type::kInt, "GPU devices");
  gpu->minimum = 0;
  add(r, "gpu", gpu);
  auto api = make(Type::kInt, "concurrent remote API calls");
  api->minimum = 0;
  add(r, "api", api);
  return r;
}

// Per-stage settings of the Slurm executor (pipeline/slurm/slurm_job.h);
// they win over the --slurm-* command-line options.
SchemaPtr slurm_stage_schema() {
  auto s = object("how `qsweep run --executor slurm` submits this stage's nodes (ignored by the local executor)");
  add(s, "partition", make(Type::kString, "sbatch --partition"));
  add(s, "account", make(Type::kString, "sbatch --account"));
  add(s, "qos", make(Type::kString, "sbatch --qos"));
  add(s, "constraint", make(Type::kString, "sbatch --constraint (node features)"));
  add(s, "time", make(Type::kString, "sbatch --time: MINUTES, HH:MM:SS or D-HH:MM:SS"));
  auto args = make(Type::kList, "extra sbatch arguments, e.g. [\"--exclusive\", \"--nice=10\"]");
  args->items = make(Type::kString, "");
  add(s, "sbatch_args", args);
  auto local = make(Type::kBool, "run this stage's nodes in the runner instead (e.g. downloads where compute nodes have no internet)");
  local->default_value = false;
  add(s, "local", local);
  auto retry_on = make(Type::kList, "Slurm end states after which a node is resubmitted (default NODE_FAIL, PREEMPTED, BOOT_FAIL)");
  auto state = make(Type::kString, "");
  state->enum_values = {"NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "CANCELLED", "OUT_OF_MEMORY", "TIMEOUT", "FAILED"};
  retry_on->items = state;
  add(s, "retry_on", retry_on);
  auto resubmits = make(Type::kInt, "how often a node is resubmitted after those states (default 2)");
  resubmits->minimum = 0;
  add(s, "resubmits", resubmits);
  return s;
}

const char* type_name(Type t) {
  switch (t) {
    case Type::kString: return "a string";
    case Type::kInt: return "an integer";
    case Type::kNumber: return "a number";
    case Type::kBool: return "true or false";
    case Type::kSize: return "a size (bytes, or e.g. 4GiB)";
    case Type::kList: return "a list";
    case Type::kObject: return "a mapping";
    case Type::kMap: return "a mapping";
    case Type::kAny: return "any value";
    case Type::kStringOrList: return "a string or a list of strings";
  }
  return "?";
}

std::string node_kind(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null: return "nothing (null)";
    case YAML::NodeType::Scalar: return "'" + n.Scalar() + "'";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    default: return "an undefined value";
  }
}

}  // namespace

Schema::Type schema_type(ParamType t) {
  switch (t) {
    case ParamType::kString: return Type::kString;
    case ParamType::kInt: return Type::kInt;
    case ParamType::kNumber: return Type::kNumber;
    case ParamType::kBool: return Type::kBool;
    case ParamType::kStringList: return Type::kList;
    case ParamType::kStringMap: return Type::kMap;
    case ParamType::kAny: return Type::kAny;
  }
  return Type::kAny;
}

SchemaPtr params_schema(const std::vector<ParamSpec>& specs) {
  auto p = object("parameters of this stage kind; defaults are filled in and are part of the key");
  for (const auto& s : specs) {
    auto ps = make(schema_type(s.type), s.doc);
    if (s.type == ParamType::kStringList || s.type == ParamType::kStringMap)
      ps->items = make(Type::kString, "");
    ps->default_value = s.default_value;
    add(p, s.name, ps, s.required);
  }
  return p;
}

SchemaPtr experiment_schema(const StageRegistry& registry) {
  auto root = object("a qsweep experiment: models x recipes x tasks expanded into a DAG of stages");
  auto version = make(Type::kInt, "experiment format version (1)");
  version->default_value = 1;
  add(root, "version", version);
  add(root, "name", make(Type::kString, "experiment name ([A-Za-z0-9_.-]); used by `cache gc --keep`"));
  add(root, "description", make(Type::kString, "free text"));
  auto imports = make(Type::kList, "files (relative to this one) whose vars, models, datasets, recipes, tasks, backends and stages are merged in");
  imports->items = make(Type::kString, "");
  add(root, "imports", imports);
  add(root, "cache", make(Type::kString, "cache directory, relative to this file (default .qsweep/cache in the working directory; --cache and QSWEEP_CACHE override)"));
  auto vars = make(Type::kMap, "variables for ${vars.NAME}");
  vars->items = make(Type::kAny, "");
  add(root, "vars", vars);
  add(root, "limits", resources_schema("global resource limits (defaults: all cores, physical memory, visible GPUs, 16 API calls)"));
  for (const char* coll : {"models", "datasets", "recipes", "tasks", "backends"}) {
    auto m = make(Type::kMap, std::string("named ") + coll + "; each entry's fields are read by the stages that use it, and by ${" +
                                  std::string(coll).substr(0, std::string(coll).size() - 1) + ".FIELD} in a matrix over them");
    m->items = make(Type::kMap, "");
    const_cast<Schema*>(m->items.get())->items = make(Type::kAny, "");
    add(root, coll, m);
  }

  auto stage = object("one stage: a kind, instantiated once per matrix combination");
  add(stage, "name", make(Type::kString, "stage name ([A-Za-z][A-Za-z0-9_-]*); node ids are name[axis values]"), true);
  auto kind = make(Type::kString, "stage kind");
  kind->enum_values = registry.kinds();
  add(stage, "kind", kind, true);
  add(stage, "description", make(Type::kString, "free text"));
  auto matrix = make(Type::kMap, "axes: name -> list of values, or \"*\" for every entry of models/datasets/recipes/tasks/backends (axis model/dataset/recipe/task/backend); plus include/exclude lists of {axis: value}");
  matrix->items = make(Type::kAny, "");
  add(stage, "matrix", matrix);
  auto inputs = make(Type::kMap, "input name -> node id (\"fetch[${model}]\"), a wildcard (\"score[*,${recipe}]\"), \"file:path\", or a list of these");
  inputs->items = make(Type::kStringOrList, "");
  add(stage, "inputs", inputs);
  auto params = make(Type::kMap, "parameters of the kind (see the kind's schema)");
  params->items = make(Type::kAny, "");
  add(stage, "params", params);
  auto override_item = object("params merged on top for the combinations that match `when`");
  auto when = make(Type::kMap, "axis -> value");
  when->items = make(Type::kString, "");
  add(override_item, "when", when, true);
  auto oparams = make(Type::kMap, "parameters");
  oparams->items = make(Type::kAny, "");
  add(override_item, "params", oparams, true);
  auto overrides = make(Type::kList, "per-combination parameter overrides, applied in order");
  overrides->items = override_item;
  add(stage, "overrides", overrides);
  add(stage, "resources", resources_schema("what one node of this stage holds while running (default: the kind's)"));
  auto retries = make(Type::kInt, "retries for errors the stage marks retryable (exponential backoff from 1 s)");
  retries->minimum = 0;
  retries->default_value = 0;
  add(stage, "retries", retries);
  add(stage, "slurm", slurm_stage_schema());
  auto stages = make(Type::kList, "the stages of the DAG");
  stages->items = stage;
  add(root, "stages", stages);
  return root;
}

void validate(const YAML::Node& node, const Schema& schema, const std::string& file,
              const std::string& path, Diagnostics* out) {
  auto fail = [&](const YAML::Node& at, std::string msg, std::string hint = {}) {
    out->push_back({loc_of(at, file), std::move(msg), std::move(hint)});
  };
  const std::string where = path.empty() ? "the document" : "'" + path + "'";
  switch (schema.type) {
    case Type::kAny:
      return;
    case Type::kString:
    case Type::kInt:
    case Type::kNumber:
    case Type::kBool:
    case Type::kSize: {
      if (!node.IsScalar()) {
        fail(node, where + ": expected " + type_name(schema.type) + ", got " + node_kind(node));
        return;
      }
      // Numbers and bools are checked after interpolation unless literal.
      const std::string& text = node.Scalar();
      if (text.find("${") != std::string::npos) return;
      nlohmann::json j;
      std::string err;
      if (!scalar_to_json(text, node.Tag() == "!", schema.type, &j, &err)) {
        fail(node, where + ": " + err);
        return;
      }
      if (schema.type == Type::kInt && j.get<int64_t>() < schema.minimum)
        fail(node, where + ": must be at least " + std::to_string(schema.minimum) + ", got " + text);
      if (!schema.enum_values.empty() &&
          std::find(schema.enum_values.begin(), schema.enum_values.end(), text) ==
              schema.enum_values.end())
        fail(node, where + ": unknown value '" + text + "'", suggest(text, schema.enum_values));
      return;
    }
    case Type::kStringOrList:
      if (node.IsScalar()) return;
      if (node.IsSequence()) {
        for (size_t i = 0; i < node.size(); ++i)
          if (!node[i].IsScalar())
            fail(node[i], where + "[" + std::to_string(i) + "]: expected a string, got " + node_kind(node[i]));
        return;
      }
      fail(node, where + ": expected " + std::string(type_name(schema.type)) + ", got " + node_kind(node));
      return;
    case Type::kList:
      if (!node.IsSequence()) {
        fail(node, where + ": expected a list, got " + node_kind(node));
        return;
      }
      if (schema.items)
        for (size_t i = 0; i < node.size(); ++i)
          validate(node[i], *schema.items, file, path + "[" + std::to_string(i) + "]", out);
      return;
    case Type::kMap:
      if (node.IsNull()) return;  // an empty mapping written as `key:`
      if (!node.IsMap()) {
        fail(node, where + ": expected a mapping, got " + node_kind(node));
        return;
      }
      for (auto it = node.begin(); it != node.end(); ++it) {
        if (!it->first.IsScalar()) {
          fail(it->first, where + ": keys must be plain strings");
          continue;
        }
        if (schema.items)
          validate(it->second, *schema.items, file,
                   (path.empty() ? "" : path + ".") + it->first.Scalar(), out);
      }
      return;
    case Type::kObject: {
      if (!node.IsMap()) {
        fail(node, where + ": expected a mapping, got " + node_kind(node));
        return;
      }
      std::vector<std::string> seen, suggested;
      for (auto it = node.begin(); it != node.end(); ++it) {
        if (!it->first.IsScalar()) {
          fail(it->first, where + ": keys must be plain strings");
          continue;
        }
        const std::string& k = it->first.Scalar();
        const std::string sub = (path.empty() ? "" : path + ".") + k;
        if (std::find(seen.begin(), seen.end(), k) != seen.end()) {
          fail(it->first, "duplicate key '" + sub + "'");
          continue;
        }
        seen.push_back(k);
        const Schema* ps = schema.prop(k);
        if (!ps) {
          fail(it->first, "unknown key '" + sub + "'", suggest(k, schema.prop_names()));
          suggested.push_back(nearest(k, schema.prop_names()));
          continue;
        }
        validate(it->second, *ps, file, sub, out);
      }
      // A misspelt required key is reported once, as unknown with a "did you mean".
      for (const auto& r : schema.required)
        if (std::find(seen.begin(), seen.end(), r) == seen.end() &&
            std::find(suggested.begin(), suggested.end(), r) == suggested.end())
          fail(node, where + ": missing required key '" + r + "'");
      return;
    }
  }
}

bool parse_size(const std::string& text, uint64_t* out) {
  static const std::regex re(R"(^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?B|B)?\s*$)");
  std::smatch m;
  if (!std::regex_match(text, m, re)) return false;
  double v = std::strtod(m[1].str().c_str(), nullptr);
  std::string u = m[2].str();
  double mul = 1;
  if (!u.empty() && u != "B") {
    int p = std::string("KMGT").find(u[0]) + 1;
    double base = u.size() == 3 ? 1024.0 : 1000.0;
    mul = std::pow(base, p);
  }
  double r = v * mul;
  if (r > 1.8e19) return false;
  *out = static_cast<uint64_t>(std::llround(r));
  return true;
}

bool scalar_to_json(const std::string& text, bool quoted, Type type, nlohmann::json* out,
                    std::string* err) {
  // Hand-written YAML 1.2 core-schema scalars (no std::regex: this runs for
  // every param of every node, 10^5 times in a large sweep).
  auto digits = [](const char* p, const char* e) {
    if (p == e) return false;
    for (; p != e; ++p)
      if (*p < '0' || *p > '9') return false;
    return true;
  };
  auto as_int = [&](nlohmann::json* j) {
    const char* b = text.c_str();
    const char* e = b + text.size();
    const char* p = (b != e && (*b == '-' || *b == '+')) ? b + 1 : b;
    if (!digits(p, e)) return false;
    errno = 0;
    long long v = std::strtoll(b, nullptr, 10);
    if (errno == ERANGE) return false;
    *j = static_cast<int64_t>(v);
    return true;
  };
  auto as_float = [&](nlohmann::json* j) {
    if (text.empty()) return false;
    // Only decimal forms: reject hex, inf, nan, and leading/trailing space.
    for (char c : text)
      if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+'))
        return false;
    char* end = nullptr;
    errno = 0;
    double v = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size() || errno == ERANGE || !std::isfinite(v)) return false;
    *j = v;
    return true;
  };
  auto as_bool = [&](nlohmann::json* j) {
    if (text == "true" || text == "True" || text == "TRUE") return *j = true, true;
    if (text == "false" || text == "False" || text == "FALSE") return *j = false, true;
    return false;
  };
  switch (type) {
    case Type::kString:
      *out = text;
      return true;
    case Type::kInt:
      if (as_int(out)) return true;
      *err = "expected an integer, got '" + text + "'";
      return false;
    case Type::kNumber:
      if (as_int(out)) {
        *out = static_cast<double>(out->get<int64_t>());
        return true;
      }
      if (as_float(out)) return true;
      *err = "expected a number, got '" + text + "'";
      return false;
    case Type::kBool:
      if (as_bool(out)) return true;
      *err = "expected true or false, got '" + text + "'";
      return false;
    case Type::kSize: {
      uint64_t v;
      if (parse_size(text, &v)) {
        *out = v;
        return true;
      }
      *err = "expected a size such as 4GiB, 512MB or a byte count, got '" + text + "'";
      return false;
    }
    default:
      if (quoted) {
        *out = text;
        return true;
      }
      if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") {
        *out = nullptr;
        return true;
      }
      if (as_bool(out) || as_int(out) || as_float(out)) return true;
      *out = text;
      return true;
  }
}

namespace {

nlohmann::json schema_json(const Schema& s) {
  nlohmann::json j;
  if (!s.doc.empty()) j["description"] = s.doc;
  if (!s.default_value.is_null()) j["default"] = s.default_value;
  switch (s.type) {
    case Type::kString:
      j["type"] = "string";
      if (!s.enum_values.empty()) j["enum"] = s.enum_values;
      break;
    case Type::kInt:
      j["type"] = "integer";
      if (s.minimum != INT64_MIN) j["minimum"] = s.minimum;
      break;
    case Type::kNumber: j["type"] = "number"; break;
    case Type::kBool: j["type"] = "boolean"; break;
    case Type::kSize:
      j["oneOf"] = {{{"type", "integer"}, {"minimum", 0}},
                    {{"type", "string"}, {"pattern", R"(^\s*[0-9]+(\.[0-9]+)?\s*([KMGT]i?B|B)?\s*$)"}}};
      break;
    case Type::kList:
      j["type"] = "array";
      if (s.items) j["items"] = schema_json(*s.items);
      break;
    case Type::kObject: {
      j["type"] = "object";
      j["additionalProperties"] = false;
      nlohmann::json props = nlohmann::json::object();
      for (const auto& [k, v] : s.props) props[k] = schema_json(*v);
      j["properties"] = props;
      if (!s.required.empty()) j["required"] = s.required;
      break;
    }
    case Type::kMap:
      j["type"] = "object";
      if (s.items) j["additionalProperties"] = schema_json(*s.items);
      break;
    case Type::kAny: break;
    case Type::kStringOrList:
      j["oneOf"] = {{{"type", "string"}}, {{"type", "array"}, {"items", {{"type", "string"}}}}};
      break;
  }
  return j;
}

}  // namespace

nlohmann::json to_json_schema(const StageRegistry& registry) {
  nlohmann::json j = schema_json(*experiment_schema(registry));
  j["$schema"] = "https://json-schema.org/draft/2020-12/schema";
  j["$id"] = "https://qsweep.dev/schema/experiment-1.json";
  j["title"] = "qsweep experiment (format version 1)";
  // Per-kind params: stages[i].params is typed by stages[i].kind.
  nlohmann::json all_of = nlohmann::json::array();
  for (const auto& kind : registry.kinds()) {
    const Stage* st = registry.find(kind);
    all_of.push_back({{"if", {{"properties", {{"kind", {{"const", kind}}}}}}},
                      {"then", {{"properties", {{"params", schema_json(*params_schema(st->params()))}}}}}});
  }
  j["properties"]["stages"]["items"]["allOf"] = all_of;
  return j;
}

}  // namespace qsweep
