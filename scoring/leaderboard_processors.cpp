// The Open LLM Leaderboard v2 processors (scoring/leaderboard.h): lm-eval
// v0.4.4 leaderboard/{gpqa,mmlu_pro,musr}/utils.py behaviour, and the
// MMLU-Pro authors' answer extraction (docs/leaderboard_v2.md).
#include <stdexcept>

#include "model/util/python_random.h"
#include "scoring/leaderboard.h"
#include "scoring/processors.h"
#include "scoring/pyre.h"
#include "scoring/template.h"

namespace qsweep::scoring {

using nlohmann::json;

namespace {

const char kLetters[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

const json& field(const json& doc, const char* key) {
  if (!doc.is_object() || !doc.contains(key)) throw std::runtime_error(std::string("doc has no field '") + key + "'");
  return doc.at(key);
}
std::string str_field(const json& doc, const char* key) {
  const json& v = field(doc, key);
  if (!v.is_string()) throw std::runtime_error(std::string("field '") + key + "' is not a string");
  return v.get<std::string>();
}

/// The first match of `re` in `text` (Python re.search), its group 1 or the
/// whole match when the pattern has no group.
std::optional<std::string> search(const PyRegex& re, std::string_view text) {
  // findall's first element is re.search's match (same scan from the left).
  const auto all = re.findall(text);
  if (all.empty()) return std::nullopt;
  return all.front().front();
}

}  // namespace

std::string gpqa_preprocess(const json& value) {
  if (value.is_null()) return " ";
  if (!value.is_string()) throw std::runtime_error("gpqa: an answer is not a string");
  // Same steps as hellaswag's preprocess (strip, " [title]", "[...]", "  ").
  return hellaswag_preprocess(value.get<std::string>());
}

std::vector<json> gpqa_process_docs(const std::vector<json>& docs, std::uint64_t seed) {
  model::PythonRandom rnd(seed);
  std::vector<json> out;
  out.reserve(docs.size());
  for (std::size_t i = 0; i < docs.size(); ++i) {
    try {
      json d = docs[i];
      std::vector<std::string> choices = {gpqa_preprocess(field(d, "Incorrect Answer 1")),
                                          gpqa_preprocess(field(d, "Incorrect Answer 2")),
                                          gpqa_preprocess(field(d, "Incorrect Answer 3")),
                                          gpqa_preprocess(field(d, "Correct Answer"))};
      const std::string correct = choices[3];
      rnd.shuffle(choices);
      std::size_t idx = 0;  // list.index: the first equal choice
      while (choices[idx] != correct) ++idx;
      for (std::size_t c = 0; c < 4; ++c) d["choice" + std::to_string(c + 1)] = choices[c];
      d["answer"] = std::string("(") + kLetters[idx] + ")";
      out.push_back(std::move(d));
    } catch (const std::exception& e) {
      throw std::runtime_error("gpqa.process_docs: doc " + std::to_string(i) + ": " + e.what());
    }
  }
  return out;
}

std::string mmlu_pro_doc_to_text(const json& doc) {
  std::string out = str_field(doc, "question") + "\n";
  const json& options = field(doc, "options");
  if (!options.is_array() || options.size() > 26) throw std::runtime_error("field 'options' is not a list of <= 26");
  for (std::size_t i = 0; i < options.size(); ++i)
    out += std::string(1, kLetters[i]) + ". " + python_str(options[i]) + "\n";
  return out + "Answer:";
}

std::string mmlu_pro_cot_doc_to_text(const json& doc) {
  std::string out = "Question:\n" + str_field(doc, "question") + "\nOptions:\n";
  const json& options = field(doc, "options");
  if (!options.is_array() || options.size() > 26) throw std::runtime_error("field 'options' is not a list of <= 26");
  for (std::size_t i = 0; i < options.size(); ++i)
    out += std::string(1, kLetters[i]) + ". " + python_str(options[i]) + "\n";
  return out + "Answer: Let's think step by step.";
}

json mmlu_pro_doc_to_choice(const json& doc) {
  const json& options = field(doc, "options");
  if (!options.is_array() || options.size() > 26) throw std::runtime_error("field 'options' is not a list of <= 26");
  json out = json::array();
  for (std::size_t i = 0; i < options.size(); ++i) out.push_back(std::string(1, kLetters[i]));
  return out;
}

std::string musr_doc_to_text(const json& doc) {
  std::string choices;
  const json& c = field(doc, "choices");
  if (!c.is_array()) throw std::runtime_error("field 'choices' is not a list");
  for (std::size_t i = 0; i < c.size(); ++i) choices += std::to_string(i + 1) + " - " + python_str(c[i]) + "\n";
  return str_field(doc, "narrative") + "\n\n" + str_field(doc, "question") + "\n\n" + choices + "\nAnswer:";
}

std::optional<std::string> mmlu_pro_extract_answer(std::string_view text) {
  static const PyRegex first(R"(answer is \(?([A-J])\)?)");
  static const PyRegex again(R"(.*[aA]nswer:\s*([A-J]))");
  static const PyRegex last(R"((?s)\b[A-J]\b(?!.*\b[A-J]\b))");
  if (auto m = search(first, text)) return m;
  if (auto m = search(again, text)) return m;
  return search(last, text);
}

std::string mmlu_pro_pred(std::string_view text, std::size_t n_options) {
  if (auto m = mmlu_pro_extract_answer(text)) return *m;
  if (n_options == 0 || n_options > 26) throw std::invalid_argument("mmlu_pro_pred: n_options must be 1..26");
  model::PythonRandom rnd(12345);  // compute_accuracy.py reseeds before each fallback
  return std::string(1, kLetters[rnd.randbelow(n_options)]);
}

}  // namespace qsweep::scoring
