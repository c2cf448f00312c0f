#include "scoring/ifeval/process_results.h"

#include <memory>
#include <stdexcept>

#include "model/util/python_str.h"
#include "scoring/ifeval/checkers.h"

namespace qsweep::scoring::ifeval {

using nlohmann::json;

namespace {

std::string join_lines(const std::vector<std::string_view>& lines, std::size_t from, std::size_t to) {
  std::string out;
  for (std::size_t i = from; i < to; ++i) {
    if (i > from) out += '\n';
    out += lines[i];
  }
  return out;
}

std::string without_stars(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s)
    if (c != '*') out += c;
  return out;
}

bool blank(std::string_view s) { return model::python_strip(s).empty(); }

}  // namespace

std::vector<std::string> loose_variants(std::string_view response) {
  std::vector<std::string_view> lines;  // Python response.split("\n")
  std::size_t pos = 0;
  while (true) {
    const std::size_t hit = response.find('\n', pos);
    if (hit == std::string_view::npos) break;
    lines.push_back(response.substr(pos, hit - pos));
    pos = hit + 1;
  }
  lines.push_back(response.substr(pos));
  const std::size_t n = lines.size();  // >= 1
  // Python slices clamp: r[1:-1] of a one-line list is empty.
  const std::string remove_first = model::python_strip(join_lines(lines, 1, n));
  const std::string remove_last = model::python_strip(join_lines(lines, 0, n - 1));
  const std::string remove_both = n >= 2 ? model::python_strip(join_lines(lines, 1, n - 1)) : std::string();
  return {std::string(response),        without_stars(response),    remove_first,
          remove_last,                   remove_both,                without_stars(remove_first),
          without_stars(remove_last),    without_stars(remove_both)};
}

DocResult process_results(const json& doc, std::string_view response) {
  if (!doc.is_object() || !doc.contains("instruction_id_list") || !doc.at("instruction_id_list").is_array())
    throw std::invalid_argument("ifeval: the doc has no list 'instruction_id_list'");
  if (!doc.contains("kwargs") || !doc.at("kwargs").is_array())
    throw std::invalid_argument("ifeval: the doc has no list 'kwargs'");
  const json& ids = doc.at("instruction_id_list");
  const json& kwargs = doc.at("kwargs");
  if (kwargs.size() < ids.size())
    throw std::invalid_argument("ifeval: " + std::to_string(ids.size()) + " instructions but " +
                                std::to_string(kwargs.size()) + " kwargs");
  const std::vector<std::string> variants = loose_variants(response);
  DocResult out;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (!ids[i].is_string()) throw std::invalid_argument("ifeval: instruction id " + ids[i].dump() + " is not a string");
    // utils.py builds a fresh checker for the strict and the loose test;
    // the checkers keep no state between calls, so one serves both.
    const std::unique_ptr<Checker> c = make_checker(ids[i].get<std::string>(), kwargs[i]);
    out.inst_level_strict.push_back(!blank(response) && c->check(response));
    bool loose = false;
    for (const auto& v : variants)
      if (!blank(v) && c->check(v)) {
        loose = true;
        break;
      }
    out.inst_level_loose.push_back(loose);
  }
  auto all = [](const std::vector<bool>& v) {
    for (bool b : v)
      if (!b) return false;
    return true;  // Python all([]) is True
  };
  out.prompt_level_strict = all(out.inst_level_strict);
  out.prompt_level_loose = all(out.inst_level_loose);
  return out;
}

double agg_inst_level_acc(const std::vector<std::vector<bool>>& items) {
  std::size_t sum = 0, count = 0;
  for (const auto& doc : items)
    for (bool b : doc) sum += b ? 1 : 0, ++count;
  if (count == 0) throw std::invalid_argument("agg_inst_level_acc: no instructions (division by zero)");
  return static_cast<double>(sum) / static_cast<double>(count);
}

}  // namespace qsweep::scoring::ifeval
