#pragma once
// PyRegex: the part of Python's `re` module that lm-eval's filters and
// exact_match use (compile, findall, sub with a literal replacement), on
// PCRE2 (UTF + UCP, LF newlines, invalid UTF-8 tolerated). Semantics and the
// known differences from Python are in docs/scoring.md.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qsweep::scoring {

class PyRegex {
 public:
  /// Compiles a Python `re` pattern (str, default flags); throws
  /// std::invalid_argument naming the pattern and the PCRE2 error.
  explicit PyRegex(const std::string& pattern);
  ~PyRegex();
  PyRegex(PyRegex&&) noexcept;
  PyRegex& operator=(PyRegex&&) noexcept;

  const std::string& pattern() const { return pattern_; }
  /// Number of capturing groups (Python's `pattern.groups`).
  int group_count() const;

  /// Python `re.findall`. Each element is one match: {whole match} with no
  /// group, {group 1} with one group, {group 1, ..., group n} (Python's tuple)
  /// with n > 1; a group that did not take part is "". Empty matches follow
  /// Python >= 3.7 (an empty match may follow a non-empty one directly; after an
  /// empty match the next match may not be empty at the same position).
  std::vector<std::vector<std::string>> findall(std::string_view text) const;

  /// Python `re.sub(pattern, repl, text)` with `repl` taken literally (no
  /// backslash escapes or group references: throws std::invalid_argument if
  /// `repl` contains a backslash).
  std::string sub(std::string_view repl, std::string_view text) const;

  /// Python `re.sub(pattern, fn, text)`: each match is replaced by
  /// fn(groups), groups[0] the whole match, groups[g] group g ("" when it did
  /// not take part, as Python >= 3.5 substitutes for `\\g`).
  using Replacer = std::function<std::string(const std::vector<std::string>& groups)>;
  std::string sub_with(const Replacer& fn, std::string_view text) const;

  /// Python `re.search`: the first match's groups (0 = the whole match, then
  /// 1..n, "" for a group that did not take part), nullopt when none.
  std::optional<std::vector<std::string>> search(std::string_view text) const;

  /// Python `re.split(pattern, text)` (maxsplit 0): the pieces between the
  /// matches (always matches + 1 of them), each followed by the values of the
  /// pattern's groups ("" for a group that did not take part; Python's None).
  std::vector<std::string> split(std::string_view text) const;

  /// Python `bool(re.search(pattern, text))`.
  bool matches(std::string_view text) const;

 private:
  struct Impl;
  std::string pattern_;
  std::unique_ptr<Impl> impl_;
  // Byte ranges [start, end) of the successive matches, and the ovector of each.
  template <class F>
  void for_each_match(std::string_view text, F&& f) const;
};

/// Python `str.strip()` with no argument: removes leading and trailing
/// characters for which `str.isspace()` is true (ASCII \t\n\v\f\r, space,
/// \x1c-\x1f, U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F,
/// U+205F, U+3000).
std::string python_strip(std::string_view s);

/// The pattern with Python-only syntax rewritten for PCRE2: `\Z` (end of
/// string only in Python) becomes `\z`. Exposed for tests.
std::string translate_python_pattern(const std::string& pattern);

}  // namespace qsweep::scoring
