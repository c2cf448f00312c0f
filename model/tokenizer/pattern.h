#pragma once
// The `pattern` of tokenizer.json Replace/Split components: {"String": s}
// (a literal) or {"Regex": r} (PCRE2, see regex.h).

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer/regex.h"

namespace qsweep::model {

class Pattern {
 public:
  /// One piece of a text cut by the pattern: [start, end) and whether it is a
  /// match. The pieces of find_matches() cover the text in order.
  struct Piece {
    size_t start, end;
    bool is_match;
  };

  /// Parses {"String": ...} or {"Regex": ...}; throws std::runtime_error
  /// naming `what` for anything else.
  Pattern(const nlohmann::json& j, const std::string& what);

  /// The text cut at the matches, as HF's Pattern::find_matches: an empty text
  /// gives one empty non-match; an empty literal matches nothing.
  std::vector<Piece> find_matches(std::string_view text) const;
  /// Every match replaced by `content`.
  std::string replace_all(std::string_view text, std::string_view content) const;

 private:
  std::string literal_;           ///< used when regex_ is null
  std::shared_ptr<Regex> regex_;  ///< non-null for {"Regex": ...}
};

}  // namespace qsweep::model
