#include "scoring/readers.h"

#include <algorithm>
#include <stdexcept>

#include "model/util/text_file.h"
#include "scoring/leaderboard.h"

namespace qsweep::scoring {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

bool has_wildcard(const std::string& s) { return s.find_first_of("*?") != std::string::npos; }

std::vector<std::string> split_components(const std::string& pattern) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : pattern) {
    if (c == '/') {
      if (!cur.empty()) parts.push_back(cur);
      cur.clear();
    } else cur += c;
  }
  if (!cur.empty()) parts.push_back(cur);
  return parts;
}

void glob_rec(const fs::path& base, const std::vector<std::string>& parts, std::size_t i,
              std::vector<fs::path>& out) {
  if (i == parts.size()) {
    if (fs::is_regular_file(base)) out.push_back(base);
    return;
  }
  if (!has_wildcard(parts[i])) {
    const fs::path next = base / parts[i];
    if (fs::exists(next)) glob_rec(next, parts, i + 1, out);
    return;
  }
  if (!fs::is_directory(base)) return;
  for (const auto& e : fs::directory_iterator(base)) {
    const std::string name = e.path().filename().string();
    if (wildcard_match(parts[i], name)) glob_rec(e.path(), parts, i + 1, out);
  }
}

json parse_or_fail(const std::string& text, const std::string& where) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    throw std::runtime_error(where + ": bad JSON: " + e.what());
  }
}

/// {answer: label, ...} (file order) -> {choices: [...], labels: [...]}.
json targets_to_hf(const nlohmann::ordered_json& t, const std::string& where) {
  if (!t.is_object()) throw std::runtime_error(where + " is not an object");
  json choices = json::array(), labels = json::array();
  for (const auto& [answer, label] : t.items()) {
    if (!label.is_number_integer() || (label.get<int>() != 0 && label.get<int>() != 1))
      throw std::runtime_error(where + ": the label of '" + answer + "' is not 0 or 1");
    choices.push_back(answer);
    labels.push_back(label.get<int>());
  }
  return {{"choices", choices}, {"labels", labels}};
}

}  // namespace

bool wildcard_match(std::string_view pat, std::string_view name) {
  std::size_t p = 0, n = 0, star = std::string_view::npos, mark = 0;
  while (n < name.size()) {
    if (p < pat.size() && (pat[p] == '?' || pat[p] == name[n])) ++p, ++n;
    else if (p < pat.size() && pat[p] == '*') star = p++, mark = n;
    else if (star != std::string_view::npos) p = star + 1, n = ++mark;
    else return false;
  }
  while (p < pat.size() && pat[p] == '*') ++p;
  return p == pat.size();
}

std::vector<fs::path> glob_files(const fs::path& dir, const std::string& pattern) {
  std::vector<fs::path> out;
  glob_rec(dir, split_components(pattern), 0, out);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<json> read_jsonl(const fs::path& path) {
  const std::string text = model::read_text_file(path);
  std::vector<json> docs;
  std::size_t line_no = 0, pos = 0;
  while (pos <= text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    ++line_no;
    std::string line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") != std::string::npos) {
      const std::string where = path.string() + ":" + std::to_string(line_no);
      json d = parse_or_fail(line, where);
      if (!d.is_object()) throw std::runtime_error(where + ": expected a JSON object per line");
      docs.push_back(std::move(d));
    }
    if (end == text.size()) break;
    pos = end + 1;
  }
  return docs;
}

std::vector<json> read_json_array(const fs::path& path) {
  const json all = model::read_json_file(path);
  if (!all.is_array()) throw std::runtime_error(path.string() + ": expected a JSON array");
  std::vector<json> docs;
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (!all[i].is_object())
      throw std::runtime_error(path.string() + ": record " + std::to_string(i) + " is not an object");
    docs.push_back(all[i]);
  }
  return docs;
}

std::vector<json> read_truthfulqa_mc_json(const fs::path& path) {
  // ordered_json: the answers' order in the file is the choices' order.
  nlohmann::ordered_json all;
  try {
    all = nlohmann::ordered_json::parse(model::read_text_file(path));
  } catch (const nlohmann::ordered_json::parse_error& e) {
    throw std::runtime_error(path.string() + ": bad JSON: " + e.what());
  }
  if (!all.is_array()) throw std::runtime_error(path.string() + ": expected a JSON array");
  std::vector<json> docs;
  for (std::size_t i = 0; i < all.size(); ++i) {
    const std::string where = path.string() + ": record " + std::to_string(i);
    const auto& r = all[i];
    if (!r.is_object() || !r.contains("question") || !r["question"].is_string() ||
        !r.contains("mc1_targets") || !r.contains("mc2_targets"))
      throw std::runtime_error(where + ": expected {question, mc1_targets, mc2_targets}");
    docs.push_back({{"question", r["question"].get<std::string>()},
                    {"mc1_targets", targets_to_hf(r["mc1_targets"], where + " mc1_targets")},
                    {"mc2_targets", targets_to_hf(r["mc2_targets"], where + " mc2_targets")}});
  }
  return docs;
}

std::string mmlu_subject_of(const fs::path& path) {
  std::string stem = path.stem().string();
  for (const char* suffix : {"_test", "_dev", "_val"}) {
    const std::string s = suffix;
    if (stem.size() > s.size() && stem.compare(stem.size() - s.size(), s.size(), s) == 0)
      return stem.substr(0, stem.size() - s.size());
  }
  return stem;
}

std::optional<std::vector<json>> read_split(const TaskConfig& task, const fs::path& dataset_dir,
                                            const std::string& split) {
  std::vector<fs::path> files;
  for (const auto& pattern : task.split_patterns(split))
    for (auto& f : glob_files(dataset_dir, pattern)) files.push_back(std::move(f));
  if (files.empty()) return std::nullopt;
  std::vector<json> docs;
  for (const auto& f : files) {
    std::vector<json> part;
    const std::string& fmt = task.data_format;
    if (fmt == "jsonl") part = read_jsonl(f);
    else if (fmt == "json") part = read_json_array(f);
    else if (fmt == "arc_json") part = read_arc_json(f);
    else if (fmt == "mmlu_csv") part = read_mmlu_csv(f, mmlu_subject_of(f));
    else if (fmt == "truthfulqa_mc_json") part = read_truthfulqa_mc_json(f);
    else if (fmt == "leaderboard_bbh") part = read_leaderboard_bbh(task, dataset_dir, f);
    else if (fmt == "gpqa_zip") part = read_gpqa_zip(task, f);
    else if (fmt == "musr") part = read_musr(task, f);
    else throw std::runtime_error(task.file + ": unknown data_format '" + fmt + "'");
    for (auto& d : part) docs.push_back(std::move(d));
  }
  return docs;
}

}  // namespace qsweep::scoring
