#include "scoring/task.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "model/util/python_random.h"
#include "model/util/text_file.h"
#include "scoring/processors.h"
#include "scoring/yaml_json.h"

namespace qsweep::scoring {

using nlohmann::json;

namespace {

std::string format_error(const std::string& file, std::size_t line, std::size_t column,
                         const std::string& message) {
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

// Levenshtein distance for "did you mean" suggestions. pipeline/diagnostic.h
// has the experiment file's (OSA) version; scoring/ may not depend on
// pipeline/ (ARCHITECTURE.md: scoring -> model only), hence this small copy.
std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

/// The nearest of `known` to `key`, or "" when none is close.
std::string nearest(const std::string& key, const std::vector<std::string>& known) {
  std::string best;
  std::size_t best_d = std::string::npos;
  for (const auto& k : known) {
    const std::size_t d = edit_distance(key, k);
    if (d < best_d) best_d = d, best = k;
  }
  const std::size_t limit = std::max<std::size_t>(2, key.size() / 3);
  return best_d <= limit ? best : std::string{};
}

bool all_digits(const std::string& s) {
  // Python str.isdigit() on ASCII text (non-empty, all 0-9).
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}


const char* node_kind(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Scalar: return "a scalar";
    case YAML::NodeType::Null: return "null";
    default: return "undefined";
  }
}

class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const YAML::Node& n, const std::string& msg) const {
    const auto m = n.Mark();
    throw TaskError(file_, m.is_null() ? 0 : m.line + 1, m.is_null() ? 0 : m.column + 1, msg);
  }

  void check_keys(const YAML::Node& map, const std::vector<std::string>& known,
                  const std::string& where) const {
    for (const auto& kv : map) {
      const std::string key = kv.first.Scalar();
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      std::string msg = "unknown key '" + key + "'" + where;
      const std::string s = nearest(key, known);
      if (!s.empty()) msg += "; did you mean '" + s + "'?";
      fail(kv.first, msg);
    }
  }

  std::string str(const YAML::Node& n, const std::string& key) const {
    if (!n.IsScalar()) fail(n, "key '" + key + "': expected a string, got " + node_kind(n));
    return n.Scalar();
  }
  int integer(const YAML::Node& n, const std::string& key) const {
    if (n.IsScalar()) {
      try {
        std::size_t pos = 0;
        const long v = std::stol(n.Scalar(), &pos);
        if (pos == n.Scalar().size() && v >= 0 && v <= 1000000) return static_cast<int>(v);
      } catch (...) {
      }
      fail(n, "key '" + key + "': expected a non-negative integer, got '" + n.Scalar() + "'");
    }
    fail(n, "key '" + key + "': expected a non-negative integer, got " + node_kind(n));
  }
  double number(const YAML::Node& n, const std::string& key) const {
    if (n.IsScalar()) {
      try {
        std::size_t pos = 0;
        const double v = std::stod(n.Scalar(), &pos);
        if (pos == n.Scalar().size()) return v;
      } catch (...) {
      }
      fail(n, "key '" + key + "': expected a number, got '" + n.Scalar() + "'");
    }
    fail(n, "key '" + key + "': expected a number, got " + node_kind(n));
  }
  bool boolean(const YAML::Node& n, const std::string& key) const {
    if (n.IsScalar() && n.Tag() != "!") {
      const std::string& s = n.Scalar();
      if (s == "true" || s == "True" || s == "TRUE") return true;
      if (s == "false" || s == "False" || s == "FALSE") return false;
    }
    fail(n, "key '" + key + "': expected true or false, got " +
                (n.IsScalar() ? "'" + n.Scalar() + "'" : std::string(node_kind(n))));
  }
  json list(const YAML::Node& n, const std::string& key) const {
    if (!n.IsSequence()) fail(n, "key '" + key + "': expected a list, got " + node_kind(n));
    return yaml_to_json(n);
  }

  std::shared_ptr<const Template> tmpl(const YAML::Node& n, const std::string& source,
                                       const std::string& name) const {
    try {
      return std::make_shared<const Template>(source, name);
    } catch (const TemplateError& e) {
      fail(n, "key '" + name.substr(name.find('.') + 1) + "': template error: " + e.what());
    }
  }

  /// The processor named by a `!function NAME` scalar for `slot`; fails
  /// listing the known names when NAME is not one of them.
  std::string function_name(const YAML::Node& n, const std::string& key, ProcessorSlot slot) const {
    if (!n.IsScalar()) fail(n, "key '" + key + "': !function expects a processor name, got " + node_kind(n));
    const std::string name = n.Scalar();
    if (is_known_processor(slot, name)) return name;
    const auto known = known_processors(slot);
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    std::string msg = "key '" + key + "': unknown processor '" + name + "' (known for " + key + ": " +
                      (list.empty() ? std::string("none") : list) + ")";
    const std::string sug = nearest(name, known);
    if (!sug.empty()) msg += "; did you mean '" + sug + "'?";
    fail(n, msg);
  }

  static bool is_function_tag(const YAML::Node& n) { return n.Tag() == "!function"; }

  DocField doc_field(const YAML::Node& n, const std::string& key, const std::string& task,
                     bool allow_list, ProcessorSlot slot) const {
    DocField f;
    f.set = true;
    if (is_function_tag(n)) {
      f.function = function_name(n, key, slot);
      return f;
    }
    if (n.IsSequence()) {
      if (!allow_list) fail(n, "key '" + key + "': expected a template string, got a list");
      f.literal = yaml_to_json(n);
      return f;
    }
    if (n.IsMap()) {
      if (!allow_list) fail(n, "key '" + key + "': expected a template string, got a mapping");
      json values = json::array();
      for (const auto& kv : n) values.push_back(yaml_to_json(kv.second));
      f.literal = values;
      return f;
    }
    if (!n.IsScalar()) fail(n, "key '" + key + "': expected a template string, got " + node_kind(n));
    const json v = scalar_to_json(n);
    if (v.is_number_integer()) {
      f.literal = v;
      return f;
    }
    f.source = n.Scalar();
    f.tmpl = tmpl(n, f.source, (task.empty() ? std::string("task") : task) + "." + key);
    return f;
  }

  const std::string& file() const { return file_; }

 private:
  std::string file_;
};

const std::vector<std::string> kTopKeys = {
    "task",          "tag",           "dataset_path",    "dataset_name",     "dataset_kwargs",
    "test_split",    "validation_split", "training_split", "fewshot_split",  "output_type",
    "doc_to_text",   "doc_to_target", "doc_to_choice",   "description",      "target_delimiter",
    "fewshot_delimiter", "num_fewshot", "fewshot_config", "generation_kwargs", "metric_list",
    "filter_list",   "process_docs",  "process_results", "metadata",         "should_decontaminate",
    "doc_to_decontamination_query", "repeats", "data_files", "data_format", "subtask_field",
    "subtask_groups", "aggregate_metric_list", "group", "task_alias", "subtask_names"};
const std::vector<std::string> kDataFormats = {"jsonl",           "json",     "arc_json", "mmlu_csv",
                                               "truthfulqa_mc_json", "leaderboard_bbh", "gpqa_zip", "musr"};
const std::vector<std::string> kFewshotKeys = {"sampler", "samples"};
const std::vector<std::string> kGenKeys = {"until", "max_gen_toks", "do_sample", "temperature"};


}  // namespace

TaskError::TaskError(std::string file, std::size_t line, std::size_t column, std::string message)
    : std::runtime_error(format_error(file, line, column, message)),
      file_(std::move(file)),
      line_(line),
      column_(column),
      message_(std::move(message)) {}

const char* to_string(OutputType t) {
  switch (t) {
    case OutputType::multiple_choice: return "multiple_choice";
    case OutputType::loglikelihood: return "loglikelihood";
    case OutputType::loglikelihood_rolling: return "loglikelihood_rolling";
    case OutputType::generate_until: return "generate_until";
  }
  return "?";
}

// ---------------------------------------------------------------- DocField

json DocField::value(const json& doc, bool as_value, bool digits_to_int) const {
  if (!set) throw std::runtime_error("field not set");
  if (!function.empty()) return apply_doc_function(function, doc);
  if (!literal.is_null()) return literal;
  if (doc.is_object() && doc.contains(source)) return doc.at(source);
  if (as_value) {
    json v = tmpl->render_to_value(doc);
    if (v.is_string()) {
      // lm-eval: ast.literal_eval of the rendered text.
      const std::string s = v.get<std::string>();
      try {
        v = json::parse(s);
      } catch (...) {
        throw std::runtime_error(tmpl->name() + ": rendered '" + s + "', not a list");
      }
    }
    if (v.is_object()) {
      json values = json::array();
      for (auto& [k, e] : v.items()) values.push_back(e);
      return values;
    }
    return v;
  }
  std::string s = tmpl->render(doc);
  if (digits_to_int && all_digits(s)) return json(std::stoll(s));
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']') {
    // lm-eval literal_evals "[...]" targets; only JSON-compatible lists here.
    try {
      json v = json::parse(s);
      if (v.is_array()) return v;
    } catch (...) {
    }
  }
  return s;
}

// -------------------------------------------------------------- TaskConfig

const std::string& TaskConfig::fewshot_source_split() const {
  if (!fewshot_split.empty()) return fewshot_split;
  if (!validation_split.empty()) return validation_split;
  return test_split;
}

bool TaskConfig::multiple_input() const {
  if (doc_to_text.function == "winogrande.doc_to_text") return true;
  return doc_to_text.function.empty() && doc_to_text.literal.is_number_integer();
}

std::vector<std::string> TaskConfig::split_patterns(const std::string& split) const {
  for (const auto& [s, patterns] : data_files)
    if (s == split) return patterns;
  if (data_format == "mmlu_csv") return {split + "/*_" + split + ".csv"};
  if (data_format == "json" || data_format == "arc_json" || data_format == "truthfulqa_mc_json" ||
      data_format == "leaderboard_bbh" || data_format == "musr")
    return {split + ".json"};
  return {split + ".jsonl"};
}

json TaskConfig::text(const json& doc) const {
  return doc_to_text.value(doc, false, doc_to_choice.set);
}
json TaskConfig::target(const json& doc) const {
  return doc_to_target.value(doc, false, doc_to_choice.set);
}
std::vector<std::string> TaskConfig::choices(const json& doc) const {
  if (!doc_to_choice.set) throw std::runtime_error(task + ": doc_to_choice is not set");
  const json v = doc_to_choice.value(doc, true, false);
  if (!v.is_array()) throw std::runtime_error(task + ": doc_to_choice gave " + python_str(v) + ", not a list");
  std::vector<std::string> out;
  for (const auto& e : v) out.push_back(python_str(e));
  return out;
}
std::string TaskConfig::description_for(const json& doc) const {
  return description_tmpl ? description_tmpl->render(doc) : std::string{};
}

int TaskConfig::gold_index(const json& doc) const {
  // multiple_input (Winogrande): the gold is doc_to_text's int.
  json t = multiple_input() ? text(doc) : target(doc);
  if (t.is_array()) {
    if (t.empty()) throw std::runtime_error(task + ": empty target list");
    t = t.front();
  }
  if (t.is_number_integer()) return t.get<int>();
  if (t.is_string()) {
    const auto c = choices(doc);
    const auto it = std::find(c.begin(), c.end(), t.get<std::string>());
    // lm-eval process_results: a string gold not among the choices is -100
    // (a warning; the doc scores 0). Happens in BBH: movie_recommendation
    // "Monsters, Inc", ruin_names "dearth, wind, & fire" (3 docs).
    if (it == c.end()) return kGoldNotAChoice;
    return static_cast<int>(it - c.begin());
  }
  throw std::runtime_error(task + ": target " + python_str(t) + " is not an index");
}

// ------------------------------------------------------------------ loader

TaskConfig parse_task_yaml(const std::string& text, const std::string& name) {
  Reader r(name);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw TaskError(name, e.mark.line + 1, e.mark.column + 1, e.msg);
  }
  if (!root.IsMap()) r.fail(root, "a task file is a mapping of lm-eval task fields");
  r.check_keys(root, kTopKeys, "");

  TaskConfig t;
  t.file = name;
  if (root["task"]) t.task = r.str(root["task"], "task");
  // A string key; `key: null` (lm-eval writes `test_split: null`) = absent.
  auto given = [&](const char* key) { return root[key] && !root[key].IsNull(); };
  auto s = [&](const char* key, std::string& out) {
    if (given(key)) out = r.str(root[key], key);
  };
  s("dataset_path", t.dataset_path);
  s("dataset_name", t.dataset_name);
  s("test_split", t.test_split);
  s("validation_split", t.validation_split);
  std::string training;
  s("training_split", training);
  s("fewshot_split", t.fewshot_split);
  auto processor = [&](const char* key, ProcessorSlot slot, std::string& out) {
    const auto n = root[key];
    if (!n) return;
    out = Reader::is_function_tag(n) ? r.function_name(n, key, slot) : r.str(n, key);
  };
  processor("process_docs", ProcessorSlot::process_docs, t.process_docs);
  processor("process_results", ProcessorSlot::process_results, t.process_results);
  s("subtask_field", t.subtask_field);
  s("group", t.group);
  // data_files: lm-eval's dataset_kwargs.data_files, then the top-level
  // shorthand (which wins for a split given in both).
  auto data_files = [&](const YAML::Node& n) {
    if (!n.IsMap()) r.fail(n, std::string("key 'data_files': expected a mapping SPLIT: PATH, got ") + node_kind(n));
    for (const auto& kv : n) {
      const std::string split = kv.first.Scalar();
      std::vector<std::string> patterns;
      if (kv.second.IsSequence()) {
        for (const auto& e : kv.second) patterns.push_back(r.str(e, "data_files." + split));
      } else patterns.push_back(r.str(kv.second, "data_files." + split));
      if (patterns.empty()) r.fail(kv.second, "key 'data_files." + split + "': no path given");
      auto it = std::find_if(t.data_files.begin(), t.data_files.end(),
                             [&](const auto& e) { return e.first == split; });
      if (it != t.data_files.end()) it->second = patterns;
      else t.data_files.emplace_back(split, patterns);
    }
  };
  if (const auto n = root["dataset_kwargs"]) {
    if (!n.IsMap()) r.fail(n, std::string("key 'dataset_kwargs': expected a mapping, got ") + node_kind(n));
    if (const auto d = n["data_files"]) data_files(d);
    for (const auto& kv : n)
      if (kv.first.Scalar() != "data_files") t.dataset_kwargs[kv.first.Scalar()] = yaml_to_json(kv.second);
  }
  if (const auto n = root["data_files"]) data_files(n);
  if (const auto n = root["data_format"]) {
    const std::string v = r.str(n, "data_format");
    if (std::find(kDataFormats.begin(), kDataFormats.end(), v) == kDataFormats.end()) {
      std::string msg = "key 'data_format': unknown format '" + v +
                        "' (one of jsonl, json, arc_json, mmlu_csv, truthfulqa_mc_json, leaderboard_bbh, gpqa_zip, musr)";
      const std::string sug = nearest(v, kDataFormats);
      if (!sug.empty()) msg += "; did you mean '" + sug + "'?";
      r.fail(n, msg);
    }
    t.data_format = v;
  }
  if (const auto n = root["subtask_groups"]) {
    if (!n.IsMap()) r.fail(n, std::string("key 'subtask_groups': expected a mapping GROUP: [values], got ") + node_kind(n));
    for (const auto& kv : n) {
      const std::string g = kv.first.Scalar();
      if (!kv.second.IsSequence()) r.fail(kv.second, "key 'subtask_groups." + g + "': expected a list, got " + node_kind(kv.second));
      std::vector<std::string> values;
      for (const auto& e : kv.second) values.push_back(r.str(e, "subtask_groups." + g));
      t.subtask_groups.emplace_back(g, std::move(values));
    }
  }
  if (const auto n = root["subtask_names"]) {
    if (!n.IsMap()) r.fail(n, std::string("key 'subtask_names': expected a mapping VALUE: TASK, got ") + node_kind(n));
    for (const auto& kv : n) t.subtask_names.emplace_back(kv.first.Scalar(), r.str(kv.second, "subtask_names." + kv.first.Scalar()));
  }
  if (const auto n = root["aggregate_metric_list"]) t.aggregate_metric_list = r.list(n, "aggregate_metric_list");
  // lm-eval picks few-shot docs from the training split when no
  // fewshot_split is given.
  t.fewshot_extra_draw = !given("fewshot_split") && !given("test_split");
  if (t.fewshot_split.empty() && !training.empty()) t.fewshot_split = training;

  if (const auto n = root["output_type"]) {
    const std::string v = r.str(n, "output_type");
    const std::vector<std::string> kinds = {"multiple_choice", "loglikelihood",
                                            "loglikelihood_rolling", "generate_until"};
    const auto it = std::find(kinds.begin(), kinds.end(), v);
    if (it == kinds.end()) {
      std::string msg = "key 'output_type': unknown value '" + v + "' (one of multiple_choice, "
                        "loglikelihood, loglikelihood_rolling, generate_until)";
      const std::string sug = nearest(v, kinds);
      if (!sug.empty()) msg += "; did you mean '" + sug + "'?";
      r.fail(n, msg);
    }
    t.output_type = static_cast<OutputType>(it - kinds.begin());
  }
  if (const auto n = root["doc_to_text"]) t.doc_to_text = r.doc_field(n, "doc_to_text", t.task, false, ProcessorSlot::doc_to_text);
  if (const auto n = root["doc_to_target"]) t.doc_to_target = r.doc_field(n, "doc_to_target", t.task, false, ProcessorSlot::doc_to_target);
  if (const auto n = root["doc_to_choice"]) t.doc_to_choice = r.doc_field(n, "doc_to_choice", t.task, true, ProcessorSlot::doc_to_choice);
  if (const auto n = root["description"]) {
    t.description = r.str(n, "description");
    if (!t.description.empty())
      t.description_tmpl = r.tmpl(n, t.description, (t.task.empty() ? "task" : t.task) + ".description");
  }
  if (const auto n = root["target_delimiter"]) t.target_delimiter = r.str(n, "target_delimiter");
  if (const auto n = root["fewshot_delimiter"]) t.fewshot_delimiter = r.str(n, "fewshot_delimiter");
  if (const auto n = root["num_fewshot"]) t.num_fewshot = r.integer(n, "num_fewshot");
  if (const auto n = root["fewshot_config"]) {
    if (!n.IsMap()) r.fail(n, std::string("key 'fewshot_config': expected a mapping, got ") + node_kind(n));
    r.check_keys(n, kFewshotKeys, " in fewshot_config");
    if (const auto sn = n["samples"]) t.fewshot_samples = r.str(sn, "fewshot_config.samples");
    if (const auto sn = n["sampler"]) {
      const std::string v = r.str(sn, "sampler");
      if (v == "default") t.sampler = FewshotSampler::default_;
      else if (v == "first_n") t.sampler = FewshotSampler::first_n;
      else {
        std::string msg = "key 'sampler': unknown sampler '" + v + "' (default or first_n)";
        const std::string sug = nearest(v, {"default", "first_n"});
        if (!sug.empty()) msg += "; did you mean '" + sug + "'?";
        r.fail(sn, msg);
      }
    }
  }
  bool until_given = false;  // `until: []` (IFEval) stays empty: only EOS stops
  if (const auto n = root["generation_kwargs"]) {
    if (!n.IsMap()) r.fail(n, std::string("key 'generation_kwargs': expected a mapping, got ") + node_kind(n));
    r.check_keys(n, kGenKeys, " in generation_kwargs");
    t.has_generation_kwargs = true;
    auto& g = t.generation_kwargs;
    if (const auto u = n["until"]) {
      until_given = true;
      if (u.IsScalar()) g.until.push_back(u.Scalar());
      else if (u.IsSequence()) {
        for (const auto& e : u) g.until.push_back(r.str(e, "until"));
      } else r.fail(u, std::string("key 'until': expected a string or a list of strings, got ") + node_kind(u));
    }
    if (const auto m = n["max_gen_toks"]) g.max_gen_toks = r.integer(m, "max_gen_toks");
    if (const auto d = n["do_sample"]) g.do_sample = r.boolean(d, "do_sample");
    if (const auto tt = n["temperature"]) g.temperature = r.number(tt, "temperature");
  }
  if (t.output_type == OutputType::generate_until) {
    // lm-eval: no generation_kwargs => until [fewshot_delimiter], greedy;
    // no until => [fewshot_delimiter]; an explicit empty list stays empty.
    if (!until_given) t.generation_kwargs.until.push_back(t.fewshot_delimiter);
  }
  if (const auto n = root["metric_list"]) t.metric_list = r.list(n, "metric_list");
  if (const auto n = root["filter_list"]) t.filter_list = r.list(n, "filter_list");
  if (const auto n = root["metadata"]) t.metadata = yaml_to_json(n);

  if (t.task.empty()) r.fail(root, "missing key 'task'");
  if (!t.doc_to_text.set) r.fail(root, "missing key 'doc_to_text'");
  if (!t.doc_to_target.set) r.fail(root, "missing key 'doc_to_target'");
  if (t.output_type == OutputType::multiple_choice && !t.doc_to_choice.set)
    r.fail(root, "output_type multiple_choice needs 'doc_to_choice'");
  if (t.test_split.empty() && t.validation_split.empty())
    r.fail(root, "missing key 'test_split' (or 'validation_split')");
  if (!t.subtask_groups.empty() && t.subtask_field.empty())
    r.fail(root["subtask_groups"], "key 'subtask_groups' needs 'subtask_field'");
  if (!t.subtask_names.empty() && t.subtask_field.empty())
    r.fail(root["subtask_names"], "key 'subtask_names' needs 'subtask_field'");
  return t;
}

TaskConfig load_task_file(const std::filesystem::path& path) {
  return parse_task_yaml(model::read_text_file(path), path.string());
}

// ------------------------------------------------------- few-shot context

FewshotContextBuilder::FewshotContextBuilder(const TaskConfig& task, std::uint64_t seed)
    : task_(task), seed_(seed) {}

std::string FewshotContextBuilder::example(const json& ex) const {
  std::string out;
  const json text = task_.text(ex);
  if (text.is_string()) out += text.get<std::string>();
  else if (text.is_number_integer() && task_.doc_to_choice.set)
    out += task_.choices(ex).at(text.get<std::size_t>());
  else out += python_str(text);

  const json target = task_.target(ex);
  if (target.is_string() && target.get<std::string>().empty()) return out;
  out += task_.target_delimiter;
  if (target.is_array()) out += target.empty() ? std::string{} : python_str(target.front());
  else if (target.is_string()) out += target.get<std::string>();
  else if (target.is_number_integer() && task_.doc_to_choice.set)
    out += task_.choices(ex).at(target.get<std::size_t>());
  else out += python_str(target);
  out += task_.fewshot_delimiter;
  return out;
}

FewshotResult FewshotContextBuilder::build(const std::vector<json>& fewshot_docs,
                                           const std::vector<json>& eval_docs,
                                           FewshotOptions options, int num_fewshot) const {
  const std::size_t n = num_fewshot < 0 ? static_cast<std::size_t>(task_.num_fewshot)
                                        : static_cast<std::size_t>(num_fewshot);
  const bool same_split = options.same_split || options.fewshot_split_missing || task_.fewshot_extra_draw ||
                          (!task_.fewshot_split.empty() && task_.fewshot_split == task_.test_split);
  const std::vector<json>& pool = options.fewshot_split_missing ? eval_docs : fewshot_docs;
  const std::size_t n_samples = same_split ? n + 1 : n;
  if (n > 0 && n_samples > pool.size())
    throw std::runtime_error(task_.task + ": " + std::to_string(n_samples) +
                             " few-shot examples needed, the few-shot docs hold " +
                             std::to_string(pool.size()));

  FewshotResult result;
  result.fewshot_from_eval_split = options.fewshot_split_missing;
  result.contexts.reserve(eval_docs.size());
  model::PythonRandom rnd(seed_);
  // first_n: identical draw for every doc.
  std::vector<std::uint64_t> first;
  for (std::size_t i = 0; i < n_samples && n > 0; ++i) first.push_back(i);
  std::vector<std::optional<std::string>> rendered(n > 0 ? pool.size() : 0);

  for (const auto& doc : eval_docs) {
    FewshotContext c;
    c.context = task_.description_for(doc);
    if (n > 0) {
      std::vector<std::uint64_t> drawn =
          task_.sampler == FewshotSampler::first_n ? first : rnd.sample_indices(pool.size(), n_samples);
      for (int extra = 1; extra < options.draws_per_doc && task_.sampler != FewshotSampler::first_n; ++extra)
        drawn = rnd.sample_indices(pool.size(), n_samples);
      // lm-eval drops every drawn doc equal to the evaluated one, keeps n.
      for (const auto idx : drawn) {
        if (c.example_indices.size() == n) break;
        if (pool[idx] == doc) continue;
        c.example_indices.push_back(idx);
      }
      for (const auto idx : c.example_indices) {
        // Rendered once per few-shot doc (first_n repeats the same ones).
        if (!rendered[idx]) rendered[idx] = example(pool[idx]);
        c.context += *rendered[idx];
      }
    }
    const json text = task_.text(doc);
    if (text.is_string()) c.context += text.get<std::string>();
    else if (text.is_number_integer() && task_.doc_to_choice.set)
      c.context += task_.choices(doc).at(text.get<std::size_t>());
    else c.context += python_str(text);
    result.contexts.push_back(std::move(c));
  }
  return result;
}

MultipleChoiceDoc multiple_choice_requests(const TaskConfig& task, const json& doc,
                                           const std::string& context) {
  MultipleChoiceDoc out;
  out.choices = task.choices(doc);
  for (const auto& c : out.choices) out.requests.push_back({context, task.target_delimiter + c});
  out.gold = task.gold_index(doc);
  if (out.gold == kGoldNotAChoice) return out;
  if (out.gold < 0 || out.gold >= static_cast<int>(out.choices.size()))
    throw std::runtime_error(task.task + ": gold index " + std::to_string(out.gold) +
                             " outside the " + std::to_string(out.choices.size()) + " choices");
  return out;
}

// ------------------------------------------------------------ data readers

std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, any = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (quoted) {
      if (ch == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') field += '"', ++i;
        else quoted = false;
      } else field += ch;
      continue;
    }
    if (ch == '"') quoted = true, any = true;
    else if (ch == ',') row.push_back(std::move(field)), field.clear(), any = true;
    else if (ch == '\n' || ch == '\r') {
      if (ch == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      if (any || !field.empty()) {
        row.push_back(std::move(field));
        rows.push_back(std::move(row));
      }
      field.clear(), row.clear(), any = false;
    } else field += ch, any = true;
  }
  if (quoted) throw std::runtime_error("CSV: unterminated quoted field");
  if (any || !field.empty()) {
    row.push_back(std::move(field));
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<json> read_mmlu_csv(const std::filesystem::path& path, const std::string& subject) {
  const auto rows = parse_csv(model::read_text_file(path));
  const std::vector<std::string> header = {"question", "choice0", "choice1", "choice2", "choice3", "answer"};
  if (rows.empty() || rows[0] != header)
    throw std::runtime_error(path.string() + ": expected the header question,choice0..choice3,answer");
  std::vector<json> docs;
  for (std::size_t i = 1; i < rows.size(); ++i) {
    const auto& r = rows[i];
    if (r.size() != 6 || !all_digits(r[5]) || std::stoi(r[5]) > 3)
      throw std::runtime_error(path.string() + ": row " + std::to_string(i + 1) + " is not 6 fields ending in 0..3");
    json d = {{"question", r[0]},
              {"choices", json::array({r[1], r[2], r[3], r[4]})},
              {"answer", std::stoi(r[5])}};
    if (!subject.empty()) d["subject"] = subject;
    docs.push_back(std::move(d));
  }
  return docs;
}

std::vector<json> read_arc_json(const std::filesystem::path& path) {
  const json all = model::read_json_file(path);
  if (!all.is_array()) throw std::runtime_error(path.string() + ": expected a JSON array");
  std::vector<json> docs;
  for (const auto& e : all) {
    json text = json::array(), label = json::array();
    for (const auto& l : e.at("label")) {
      label.push_back(l);
      text.push_back(e.at(l.get<std::string>()));
    }
    docs.push_back({{"id", e.value("id", "")},
                    {"question", e.at("question")},
                    {"choices", {{"text", text}, {"label", label}}},
                    {"answerKey", e.at("answer")}});
  }
  return docs;
}

}  // namespace qsweep::scoring
