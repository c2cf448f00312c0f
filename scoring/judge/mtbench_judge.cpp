#include "scoring/judge/mtbench_judge.h"

#include "scoring/readers.h"

#include <cmath>
#include <fstream>
#include <regex>
#include <stdexcept>

namespace qsweep::scoring {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string fill(std::string t, const std::map<std::string, std::string>& vars) {
  // Python str.format with named fields only ({{ and }} are not used by the templates).
  std::string out;
  for (size_t i = 0; i < t.size();) {
    if (t[i] == '{') {
      const size_t e = t.find('}', i);
      if (e != std::string::npos) {
        auto it = vars.find(t.substr(i + 1, e - i - 1));
        if (it != vars.end()) {
          out += it->second;
          i = e + 1;
          continue;
        }
      }
    }
    out += t[i++];
  }
  return out;
}

}  // namespace

std::map<std::string, JudgePromptTemplate> load_judge_prompts(const fs::path& p) {
  std::map<std::string, JudgePromptTemplate> m;
  for (const auto& j : read_jsonl(p)) {
    JudgePromptTemplate t;
    t.name = j.value("name", std::string());
    t.system_prompt = j.value("system_prompt", std::string());
    t.prompt_template = j.value("prompt_template", std::string());
    t.output_format = j.value("output_format", std::string());
    if (t.name.empty() || t.prompt_template.empty())
      throw std::runtime_error(p.string() + ": a judge prompt without name or prompt_template");
    m[t.name] = t;
  }
  return m;
}

std::vector<MtBenchQuestion> load_mtbench_questions(const fs::path& questions, const fs::path& references) {
  std::map<int64_t, std::vector<std::string>> refs;
  if (!references.empty())
    for (const auto& r : read_jsonl(references))
      refs[r.at("question_id").get<int64_t>()] = r.at("choices").at(0).at("turns").get<std::vector<std::string>>();
  std::vector<MtBenchQuestion> out;
  for (const auto& j : read_jsonl(questions)) {
    MtBenchQuestion q;
    q.id = j.at("question_id").get<int64_t>();
    q.category = j.value("category", std::string());
    q.turns = j.at("turns").get<std::vector<std::string>>();
    // As gen_judgment.py: references come from the judge's reference file
    // only (question.jsonl's own `reference` fields are not used).
    if (auto it = refs.find(q.id); it != refs.end()) q.reference = it->second;
    out.push_back(std::move(q));
  }
  return out;
}

bool needs_reference(const std::string& c) {
  return c == "math" || c == "reasoning" || c == "coding" || c == "arena-hard-200";
}

JudgeRequest single_judge_request(const MtBenchQuestion& q, const std::vector<std::string>& answers, int turn,
                                  const std::map<std::string, JudgePromptTemplate>& prompts) {
  const bool ref = needs_reference(q.category);
  const std::string name = std::string(ref ? "single-math-v1" : "single-v1") + (turn == 2 ? "-multi-turn" : "");
  auto it = prompts.find(name);
  if (it == prompts.end()) throw std::runtime_error("judge prompts: no '" + name + "'");
  if (turn != 1 && turn != 2) throw std::runtime_error("MT-Bench has turns 1 and 2");
  if (q.turns.size() < size_t(turn) || answers.size() < size_t(turn))
    throw std::runtime_error("question " + std::to_string(q.id) + ": no turn " + std::to_string(turn));
  if (ref && q.reference.size() < size_t(turn))
    throw std::runtime_error("question " + std::to_string(q.id) + " (" + q.category +
                             ") needs a reference answer and has none");
  std::map<std::string, std::string> v;
  if (turn == 1) {
    v = {{"question", q.turns[0]}, {"answer", answers[0]}};
    if (ref) v["ref_answer_1"] = q.reference[0];
  } else {
    v = {{"question_1", q.turns[0]}, {"question_2", q.turns[1]}, {"answer_1", answers[0]}, {"answer_2", answers[1]}};
    if (ref) v["ref_answer_1"] = q.reference[0], v["ref_answer_2"] = q.reference[1];
  }
  return {name, it->second.system_prompt, fill(it->second.prompt_template, v)};
}

std::optional<double> parse_rating(const std::string& j) {
  static const std::regex two(R"(\[\[(\d+\.?\d*)\]\])");
  static const std::regex one(R"(\[(\d+\.?\d*)\])");
  std::smatch m;
  if (std::regex_search(j, m, two) || std::regex_search(j, m, one)) return std::stod(m[1]);
  return std::nullopt;
}

json mtbench_scores(const std::vector<double>& t1, const std::vector<double>& t2) {
  auto stats = [](const std::vector<double>& v) {
    std::vector<double> ok;
    for (double x : v)
      if (x >= 0) ok.push_back(x);
    if (ok.empty()) return json{{"value", nullptr}, {"stderr", nullptr}, {"samples", 0}};
    double s = 0;
    for (double x : ok) s += x;
    const double mean = s / double(ok.size());
    double var = 0;
    for (double x : ok) var += (x - mean) * (x - mean);
    const json se = ok.size() > 1 ? json(std::sqrt(var / double(ok.size() - 1)) / std::sqrt(double(ok.size()))) : json(nullptr);
    return json{{"value", mean}, {"stderr", se}, {"samples", ok.size()}};
  };
  std::vector<double> all = t1;
  all.insert(all.end(), t2.begin(), t2.end());
  auto unparsed = [](const std::vector<double>& v) {
    size_t n = 0;
    for (double x : v) n += x < 0;
    return n;
  };
  return {{"turn1", stats(t1)},
          {"turn2", stats(t2)},
          {"avg", stats(all)},
          {"unparsed", {{"value", unparsed(all)}, {"turn1", unparsed(t1)}, {"turn2", unparsed(t2)}, {"samples", all.size()}}}};
}

}  // namespace qsweep::scoring
