#pragma once
// lm-eval v0.4.4 filters (lm_eval/filters/extraction.py, selection.py) for
// generate_until tasks: `regex` and `take_first`, and the two gsm8k filter
// chains. See docs/scoring.md.

#include <string>
#include <string_view>
#include <vector>

#include "scoring/pyre.h"

namespace qsweep::scoring {

/// lm-eval's RegexFilter: `re.findall(pattern, response)`; no match ->
/// `fallback`; else the match at `group_select` (Python indexing: -1 is the
/// last); a tuple (pattern with > 1 group) becomes its first non-empty
/// element; then Python `str.strip()`.
class RegexFilter {
 public:
  explicit RegexFilter(const std::string& pattern, int group_select = 0,
                       std::string fallback = "[invalid]");
  /// Filters one response. Throws std::out_of_range where Python raises
  /// IndexError: `group_select` outside the match list, or a tuple whose
  /// groups are all empty.
  std::string apply(std::string_view response) const;
  /// Filters each repeat of one document (lm-eval applies the filter per repeat).
  std::vector<std::string> apply(const std::vector<std::string>& responses) const;

 private:
  PyRegex regex_;
  int group_select_;
  std::string fallback_;
};

/// lm-eval's `take_first`: the first of a document's (filtered) repeats.
/// Throws std::out_of_range on an empty list.
std::string take_first(const std::vector<std::string>& responses);

/// gsm8k.yaml (v0.4.4) filter patterns.
inline constexpr const char* k_gsm8k_strict_pattern = R"(#### (\-?[0-9\.\,]+))";
inline constexpr const char* k_gsm8k_flexible_pattern = R"((-?[$0-9.,]{2,})|(-?[0-9]+))";

/// gsm8k `strict-match`: regex k_gsm8k_strict_pattern (group_select 0), take_first.
std::string gsm8k_strict_match(const std::vector<std::string>& responses);
/// gsm8k `flexible-extract`: regex k_gsm8k_flexible_pattern (group_select -1), take_first.
std::string gsm8k_flexible_extract(const std::vector<std::string>& responses);

}  // namespace qsweep::scoring
