#include "scoring/filters.h"

#include <stdexcept>

namespace qsweep::scoring {

RegexFilter::RegexFilter(const std::string& pattern, int group_select, std::string fallback)
    : regex_(pattern), group_select_(group_select), fallback_(std::move(fallback)) {}

std::string RegexFilter::apply(std::string_view response) const {
  const auto matches = regex_.findall(response);
  if (matches.empty()) return fallback_;
  const long n = static_cast<long>(matches.size());
  const long idx = group_select_ < 0 ? n + group_select_ : group_select_;
  if (idx < 0 || idx >= n)
    throw std::out_of_range("regex filter " + regex_.pattern() + ": group_select " +
                            std::to_string(group_select_) + " out of " + std::to_string(n) +
                            " matches");
  const auto& m = matches[static_cast<size_t>(idx)];
  if (m.size() == 1) return python_strip(m[0]);  // a string, possibly empty
  for (const auto& g : m)
    if (!g.empty()) return python_strip(g);
  throw std::out_of_range("regex filter " + regex_.pattern() + ": every group of the match is empty");
}

std::vector<std::string> RegexFilter::apply(const std::vector<std::string>& responses) const {
  std::vector<std::string> out;
  out.reserve(responses.size());
  for (const auto& r : responses) out.push_back(apply(r));
  return out;
}

std::string take_first(const std::vector<std::string>& responses) {
  if (responses.empty()) throw std::out_of_range("take_first: no response");
  return responses.front();
}

std::string gsm8k_strict_match(const std::vector<std::string>& responses) {
  static const RegexFilter f(k_gsm8k_strict_pattern, 0);
  return take_first(f.apply(responses));
}

std::string gsm8k_flexible_extract(const std::vector<std::string>& responses) {
  static const RegexFilter f(k_gsm8k_flexible_pattern, -1);
  return take_first(f.apply(responses));
}

}  // namespace qsweep::scoring
