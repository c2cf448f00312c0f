#pragma once
// A compiled PCRE2 regular expression (UTF + UCP, JIT when available) for the
// tokenizer.json `Split` pattern and friends. HF tokenizers uses Oniguruma;
// the patterns in use (\p{L}, \p{N}, \s, lookahead, (?i:...)) behave the same
// in PCRE2 except `\s`, which Oniguruma reads as Unicode White_Space (it
// includes U+0085) and PCRE2 as \p{Xps} (it does not): compile() rewrites
// \s and \S to the White_Space set so that both agree.

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qsweep::model {

class Regex {
 public:
  /// Compiles `pattern`; throws std::runtime_error naming `what` (the file and
  /// component) and the PCRE2 error with its offset.
  Regex(const std::string& pattern, const std::string& what);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  /// Byte ranges [start, end) of the successive non-overlapping matches in
  /// `text` (valid UTF-8), left to right. An empty match advances by one
  /// character. Throws std::runtime_error when PCRE2 hits a resource limit
  /// even without JIT (never a silently shortened list).
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;
  /// True when the pattern matches somewhere in `text`.
  bool search(std::string_view text) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The pattern with \s and \S replaced by the explicit Unicode White_Space set
/// (outside and inside character classes). Exposed for tests.
std::string rewrite_whitespace_classes(const std::string& pattern);

}  // namespace qsweep::model
