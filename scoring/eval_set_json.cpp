// EvalSet <-> JSON (the file the infer stage writes and the score stage reads
// back). Layout, one key per struct field (docs/scoring.md, "Evaluation sets"):
//   {task, subtasks: [str], num_fewshot: int, fewshot_from_eval_split: bool,
//    limit: null | uint, docs_before_limit: uint, subtask_docs_before_limit: [uint],
//    options: {num_fewshot: int, limit: null | uint, apply_chat_template: bool,
//              fewshot_as_multiturn: bool, system_instruction: str,
//              default_max_gen_toks: int},
//    docs: [{doc_id: uint, subtask: str, doc: any, prompt: str, fewshot_ids: [uint]}],
//    requests: [{type: str, doc: uint, index: int, context?: str (absent: the
//                doc's prompt), continuation: str,
//                gen: {until: [str], max_gen_toks: null | int, do_sample: bool,
//                      temperature: number}}]}
// from_json checks every type and every request's doc index; an error names
// the field by its path ("requests[3].doc").
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>

#include "scoring/eval_set.h"

namespace qsweep::scoring {

using nlohmann::json;

const char* to_string(RequestType t) {
  switch (t) {
    case RequestType::loglikelihood: return "loglikelihood";
    case RequestType::loglikelihood_rolling: return "loglikelihood_rolling";
    case RequestType::generate_until: return "generate_until";
  }
  return "?";
}

namespace {

const char* kind(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "a list";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a number";
    default: return "a binary value";
  }
}

[[noreturn]] void fail(const std::string& path, const std::string& msg) {
  throw std::runtime_error("EvalSet: " + path + ": " + msg);
}

/// Member `key` of object `o` (at `path`); throws when `o` is not an object
/// or lacks it.
const json& member(const json& o, const std::string& path, const char* key) {
  if (!o.is_object()) fail(path.empty() ? "(top level)" : path, std::string("expected an object, got ") + kind(o));
  const auto it = o.find(key);
  const std::string p = path.empty() ? key : path + "." + key;
  if (it == o.end()) fail(p, "missing");
  return *it;
}

std::string join(const std::string& path, const char* key) { return path.empty() ? key : path + "." + key; }

std::string get_string(const json& o, const std::string& path, const char* key) {
  const json& v = member(o, path, key);
  if (!v.is_string()) fail(join(path, key), std::string("expected a string, got ") + kind(v));
  return v.get<std::string>();
}

bool get_bool(const json& o, const std::string& path, const char* key) {
  const json& v = member(o, path, key);
  if (!v.is_boolean()) fail(join(path, key), std::string("expected true or false, got ") + kind(v));
  return v.get<bool>();
}

std::size_t as_size(const json& v, const std::string& path) {
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0))
    fail(path, std::string("expected a non-negative integer, got ") +
                   (v.is_number_integer() ? "a negative integer" : kind(v)));
  return v.get<std::size_t>();
}

std::size_t get_size(const json& o, const std::string& path, const char* key) {
  return as_size(member(o, path, key), join(path, key));
}

int as_int(const json& v, const std::string& path) {
  if (!v.is_number_integer()) fail(path, std::string("expected an integer, got ") + kind(v));
  if (v.is_number_unsigned() && v.get<std::uint64_t>() > std::uint64_t(std::numeric_limits<int>::max()))
    fail(path, "integer out of range");
  const std::int64_t x = v.get<std::int64_t>();
  if (x < std::numeric_limits<int>::min() || x > std::numeric_limits<int>::max())
    fail(path, "integer out of range");
  return static_cast<int>(x);
}

int get_int(const json& o, const std::string& path, const char* key) {
  return as_int(member(o, path, key), join(path, key));
}

std::optional<std::size_t> get_optional_size(const json& o, const std::string& path, const char* key) {
  const json& v = member(o, path, key);
  if (v.is_null()) return std::nullopt;
  return as_size(v, join(path, key));
}

const json& get_array(const json& o, const std::string& path, const char* key) {
  const json& v = member(o, path, key);
  if (!v.is_array()) fail(join(path, key), std::string("expected a list, got ") + kind(v));
  return v;
}

std::string at(const std::string& path, std::size_t i) { return path + "[" + std::to_string(i) + "]"; }

std::vector<std::string> get_strings(const json& o, const std::string& path, const char* key) {
  const json& a = get_array(o, path, key);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!a[i].is_string()) fail(at(join(path, key), i), std::string("expected a string, got ") + kind(a[i]));
    out.push_back(a[i].get<std::string>());
  }
  return out;
}

RequestType request_type(const json& o, const std::string& path) {
  const std::string s = get_string(o, path, "type");
  for (RequestType t : {RequestType::loglikelihood, RequestType::loglikelihood_rolling,
                        RequestType::generate_until})
    if (s == to_string(t)) return t;
  fail(join(path, "type"),
       "unknown request type '" + s + "' (loglikelihood, loglikelihood_rolling or generate_until)");
}

json gen_to_json(const GenerationKwargs& g) {
  return {{"until", g.until},
          {"max_gen_toks", g.max_gen_toks ? json(*g.max_gen_toks) : json(nullptr)},
          {"do_sample", g.do_sample},
          {"temperature", g.temperature}};
}

GenerationKwargs gen_from_json(const json& o, const std::string& path) {
  GenerationKwargs g;
  g.until = get_strings(o, path, "until");
  const json& m = member(o, path, "max_gen_toks");
  if (!m.is_null()) g.max_gen_toks = as_int(m, join(path, "max_gen_toks"));
  g.do_sample = get_bool(o, path, "do_sample");
  const json& t = member(o, path, "temperature");
  if (!t.is_number()) fail(join(path, "temperature"), std::string("expected a number, got ") + kind(t));
  g.temperature = t.get<double>();
  return g;
}

json options_to_json(const PromptOptions& p) {
  return {{"num_fewshot", p.num_fewshot},
          {"limit", p.limit ? json(*p.limit) : json(nullptr)},
          {"apply_chat_template", p.apply_chat_template},
          {"fewshot_as_multiturn", p.fewshot_as_multiturn},
          {"system_instruction", p.system_instruction},
          {"default_max_gen_toks", p.default_max_gen_toks}};
}

PromptOptions options_from_json(const json& o, const std::string& path) {
  PromptOptions p;
  p.num_fewshot = get_int(o, path, "num_fewshot");
  p.limit = get_optional_size(o, path, "limit");
  p.apply_chat_template = get_bool(o, path, "apply_chat_template");
  p.fewshot_as_multiturn = get_bool(o, path, "fewshot_as_multiturn");
  p.system_instruction = get_string(o, path, "system_instruction");
  p.default_max_gen_toks = get_int(o, path, "default_max_gen_toks");
  return p;  // chat_template stays nullptr: not serialized
}

}  // namespace

json EvalSet::to_json() const {
  json docs_j = json::array();
  for (const auto& d : docs)
    docs_j.push_back({{"doc_id", d.doc_id},
                      {"subtask", d.subtask},
                      {"doc", d.doc},
                      {"prompt", d.prompt},
                      {"fewshot_ids", d.fewshot_ids}});
  json reqs_j = json::array();
  for (const auto& r : requests) {
    json rj = {{"type", scoring::to_string(r.type)},
               {"doc", r.doc},
               {"index", r.index},
               {"continuation", r.continuation},
               {"gen", gen_to_json(r.gen)}};
    // A context equal to its doc's prompt (every request but Winogrande's)
    // is not repeated: MMLU's 5-shot prompts would be written 4 times.
    if (r.doc >= docs.size() || r.context != docs[r.doc].prompt) rj["context"] = r.context;
    reqs_j.push_back(std::move(rj));
  }
  return {{"task", task},
          {"subtasks", subtasks},
          {"num_fewshot", num_fewshot},
          {"fewshot_from_eval_split", fewshot_from_eval_split},
          {"limit", limit ? json(*limit) : json(nullptr)},
          {"docs_before_limit", docs_before_limit},
          {"subtask_docs_before_limit", subtask_docs_before_limit},
          {"options", options_to_json(options)},
          {"docs", std::move(docs_j)},
          {"requests", std::move(reqs_j)}};
}

EvalSet EvalSet::from_json(const json& j) {
  EvalSet s;
  s.task = get_string(j, "", "task");
  s.subtasks = get_strings(j, "", "subtasks");
  s.num_fewshot = get_int(j, "", "num_fewshot");
  s.fewshot_from_eval_split = get_bool(j, "", "fewshot_from_eval_split");
  s.limit = get_optional_size(j, "", "limit");
  s.docs_before_limit = get_size(j, "", "docs_before_limit");
  {
    const json& a = get_array(j, "", "subtask_docs_before_limit");
    for (std::size_t i = 0; i < a.size(); ++i)
      s.subtask_docs_before_limit.push_back(as_size(a[i], at("subtask_docs_before_limit", i)));
  }
  s.options = options_from_json(member(j, "", "options"), "options");

  const json& docs_j = get_array(j, "", "docs");
  for (std::size_t i = 0; i < docs_j.size(); ++i) {
    const std::string p = at("docs", i);
    EvalDoc d;
    d.doc_id = get_size(docs_j[i], p, "doc_id");
    d.subtask = get_string(docs_j[i], p, "subtask");
    d.doc = member(docs_j[i], p, "doc");
    d.prompt = get_string(docs_j[i], p, "prompt");
    const json& f = get_array(docs_j[i], p, "fewshot_ids");
    for (std::size_t k = 0; k < f.size(); ++k) d.fewshot_ids.push_back(as_size(f[k], at(p + ".fewshot_ids", k)));
    s.docs.push_back(std::move(d));
  }

  const json& reqs_j = get_array(j, "", "requests");
  for (std::size_t i = 0; i < reqs_j.size(); ++i) {
    const std::string p = at("requests", i);
    Request r;
    r.type = request_type(reqs_j[i], p);
    r.doc = get_size(reqs_j[i], p, "doc");
    if (r.doc >= s.docs.size())
      fail(p + ".doc", "doc index " + std::to_string(r.doc) + " outside the " +
                           std::to_string(s.docs.size()) + " docs");
    r.index = get_int(reqs_j[i], p, "index");
    r.context = reqs_j[i].is_object() && !reqs_j[i].contains("context")
                    ? s.docs[r.doc].prompt
                    : get_string(reqs_j[i], p, "context");
    r.continuation = get_string(reqs_j[i], p, "continuation");
    r.gen = gen_from_json(member(reqs_j[i], p, "gen"), p + ".gen");
    s.requests.push_back(std::move(r));
  }
  return s;
}

}  // namespace qsweep::scoring
