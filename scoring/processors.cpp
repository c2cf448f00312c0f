#include "scoring/processors.h"

#include <algorithm>
#include <stdexcept>

#include "model/tokenizer/utf8.h"
#include "model/util/python_str.h"
#include "scoring/math/latex_cas.h"
#include "scoring/math/normalize.h"
#include "scoring/leaderboard.h"
#include "scoring/pyre.h"

namespace qsweep::scoring {

using nlohmann::json;

namespace {

struct Entry {
  ProcessorSlot slot;
  const char* name;
};
// The registry: every name a task file may give after `!function`.
const Entry kProcessors[] = {
    {ProcessorSlot::process_docs, "hellaswag.process_docs"},
    {ProcessorSlot::doc_to_text, "winogrande.doc_to_text"},
    {ProcessorSlot::doc_to_target, "winogrande.doc_to_target"},
    {ProcessorSlot::doc_to_choice, "winogrande.doc_to_choice"},
    {ProcessorSlot::process_results, "truthfulqa.process_results_mc2"},
    {ProcessorSlot::process_docs, "math.process_docs"},
    {ProcessorSlot::process_results, "math.process_results"},
    {ProcessorSlot::process_docs, "gpqa.process_docs"},
    {ProcessorSlot::doc_to_text, "mmlu_pro.doc_to_text"},
    {ProcessorSlot::doc_to_choice, "mmlu_pro.doc_to_choice"},
    {ProcessorSlot::doc_to_text, "musr.doc_to_text"},
    {ProcessorSlot::doc_to_text, "mmlu_pro.cot_doc_to_text"},
    {ProcessorSlot::process_results, "ifeval.process_results"},
};

char32_t to_upper(char32_t c) {
  if (c >= 'a' && c <= 'z') return c - 32;
  if ((c >= 0xE0 && c <= 0xFE && c != 0xF7)) return c - 32;
  if (c == 0xFF) return 0x178;
  if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 && c != 0x17F) {
    // Latin Extended-A: pairs (upper even, lower odd) except 0x139-0x148 and
    // 0x179-0x17E where the upper is odd.
    const bool odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
    if (odd_upper) return (c % 2 == 0) ? c - 1 : c;
    return (c % 2 == 1) ? c - 1 : c;
  }
  if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2) return c - 32;  // Greek
  if (c >= 0x430 && c <= 0x44F) return c - 32;                 // Cyrillic
  if (c >= 0x450 && c <= 0x45F) return c - 80;
  return c;
}
char32_t to_lower(char32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
  if (c == 0x178) return 0xFF;
  if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 && c != 0x17F) {
    const bool odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
    if (odd_upper) return (c % 2 == 1) ? c + 1 : c;
    return (c % 2 == 0) ? c + 1 : c;
  }
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
  if (c >= 0x410 && c <= 0x42F) return c + 32;
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  return c;
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  // Python str.replace: left to right, non-overlapping, one pass.
  std::string out;
  std::size_t pos = 0;
  while (true) {
    const std::size_t hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out += to;
    pos = hit + from.size();
  }
  out.append(s, pos, std::string::npos);
  return out;
}

const std::string& str_field(const json& doc, const char* key) {
  if (!doc.is_object() || !doc.contains(key) || !doc.at(key).is_string())
    throw std::runtime_error(std::string("the doc has no string field '") + key + "'");
  return doc.at(key).get_ref<const std::string&>();
}

std::size_t blank_index(const std::string& sentence) {
  const std::size_t idx = sentence.find('_');
  if (idx == std::string::npos) throw std::runtime_error("winogrande: the sentence has no '_'");
  return idx;
}

}  // namespace

const char* to_string(ProcessorSlot s) {
  switch (s) {
    case ProcessorSlot::doc_to_text: return "doc_to_text";
    case ProcessorSlot::doc_to_target: return "doc_to_target";
    case ProcessorSlot::doc_to_choice: return "doc_to_choice";
    case ProcessorSlot::process_docs: return "process_docs";
    case ProcessorSlot::process_results: return "process_results";
  }
  return "?";
}

std::vector<std::string> known_processors(ProcessorSlot slot) {
  std::vector<std::string> out;
  for (const auto& e : kProcessors)
    if (e.slot == slot) out.emplace_back(e.name);
  return out;
}

bool is_known_processor(ProcessorSlot slot, const std::string& name) {
  const auto k = known_processors(slot);
  return std::find(k.begin(), k.end(), name) != k.end();
}

std::string python_capitalize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  bool first = true;
  while (i < s.size()) {
    std::size_t len;
    const auto c = model::decode_utf8_at(s, i, &len);
    if (!c) out += s[i];  // an invalid byte is copied as is
    else model::utf8::append(out, first ? to_upper(*c) : to_lower(*c));
    i += len;
    first = false;
  }
  return out;
}

std::string hellaswag_preprocess(std::string_view text) {
  static const PyRegex brackets(R"(\[.*?\])");
  std::string t = python_strip(text);
  t = replace_all(std::move(t), " [title]", ". ");
  t = brackets.sub("", t);
  return replace_all(std::move(t), "  ", " ");
}

json hellaswag_process_doc(const json& doc) {
  json out = doc;
  const std::string ctx = str_field(doc, "ctx_a") + " " + python_capitalize(str_field(doc, "ctx_b"));
  out["query"] = hellaswag_preprocess(str_field(doc, "activity_label") + ": " + ctx);
  if (!doc.contains("endings") || !doc.at("endings").is_array())
    throw std::runtime_error("the doc has no list field 'endings'");
  json choices = json::array();
  for (const auto& e : doc.at("endings")) {
    if (!e.is_string()) throw std::runtime_error("an ending is not a string");
    choices.push_back(hellaswag_preprocess(e.get<std::string>()));
  }
  out["choices"] = std::move(choices);
  // int(label): label is "3" in the HF rows, 3 in the raw rowanz rows.
  const json& label = doc.contains("label") ? doc.at("label") : json();
  if (label.is_number_integer()) out["gold"] = label.get<int>();
  else if (label.is_string()) {
    const std::string& l = label.get_ref<const std::string&>();
    std::size_t pos = 0;
    int v = 0;
    try {
      v = std::stoi(l, &pos);
    } catch (...) {
      pos = 0;
    }
    if (l.empty() || pos != l.size()) throw std::runtime_error("label '" + l + "' is not an int");
    out["gold"] = v;
  } else throw std::runtime_error("the doc has no int label");
  return out;
}

json apply_doc_function(const std::string& name, const json& doc) {
  if (name == "mmlu_pro.doc_to_text") return mmlu_pro_doc_to_text(doc);
  if (name == "mmlu_pro.doc_to_choice") return mmlu_pro_doc_to_choice(doc);
  if (name == "musr.doc_to_text") return musr_doc_to_text(doc);
  if (name == "mmlu_pro.cot_doc_to_text") return mmlu_pro_cot_doc_to_text(doc);
  if (name == "winogrande.doc_to_text") {
    const std::string& a = str_field(doc, "answer");
    if (a == "1") return 0;
    if (a == "2") return 1;
    throw std::runtime_error("winogrande: answer '" + a + "' is not \"1\" or \"2\"");
  }
  if (name == "winogrande.doc_to_target") {
    const std::string& s = str_field(doc, "sentence");
    return python_strip(std::string_view(s).substr(blank_index(s) + 1));
  }
  if (name == "winogrande.doc_to_choice") {
    const std::string& s = str_field(doc, "sentence");
    const std::string head = s.substr(0, blank_index(s));
    return json::array({head + str_field(doc, "option1"), head + str_field(doc, "option2")});
  }
  throw std::runtime_error("unknown doc function '" + name + "'");
}

json math_process_doc(const json& doc) {
  json out = doc;
  out["answer"] = math::reference_answer(str_field(doc, "solution"));
  return out;
}

std::vector<json> math_process_docs(const std::vector<json>& docs) {
  std::vector<json> out;
  for (std::size_t i = 0; i < docs.size(); ++i) {
    try {
      if (str_field(docs[i], "level") != "Level 5") continue;
      out.push_back(math_process_doc(docs[i]));
    } catch (const std::exception& e) {
      throw std::runtime_error("math.process_docs: doc " + std::to_string(i) + ": " + e.what());
    }
  }
  return out;
}

MathResult math_process_results(const json& doc, const std::string& generation) {
  MathResult r;
  r.unnormalized = math::unnormalized_answer(generation);
  r.answer = math::normalize_final_answer(r.unnormalized);
  const std::string& gold = str_field(doc, "answer");
  r.exact_match = math::is_equiv(r.answer, gold) ? 1.0 : 0.0;
  return r;
}

std::vector<json> apply_process_docs(const std::string& name, const std::vector<json>& docs) {
  if (name == "math.process_docs") return math_process_docs(docs);
  // One global-RNG stream (random.seed(0)) over the task's docs in order
  // (docs/leaderboard_v2.md, "GPQA seed policy").
  if (name == "gpqa.process_docs") return gpqa_process_docs(docs, 0);
  if (name != "hellaswag.process_docs") throw std::runtime_error("unknown process_docs '" + name + "'");
  std::vector<json> out;
  out.reserve(docs.size());
  for (std::size_t i = 0; i < docs.size(); ++i) {
    try {
      out.push_back(hellaswag_process_doc(docs[i]));
    } catch (const std::exception& e) {
      throw std::runtime_error("hellaswag.process_docs: doc " + std::to_string(i) + ": " + e.what());
    }
  }
  return out;
}

}  // namespace qsweep::scoring
