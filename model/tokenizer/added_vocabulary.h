#pragma once
// Added tokens of a tokenizer.json (`added_tokens`): matched in the text before
// the model runs, as HF's AddedVocabulary does. Tokens with normalized=false
// are found in the raw text first (leftmost-longest, honouring single_word,
// lstrip, rstrip); every remaining piece is then normalized on its own and
// searched for the normalized=true tokens (whose content is normalized too).

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "model/tokenizer/regex.h"
#include "model/tokenizer/tokenizer.h"

namespace qsweep::model {

class Normalizer;

struct AddedToken {
  std::string content;
  TokenId id = -1;
  bool single_word = false;  ///< match only where no word character touches it
  bool lstrip = false;       ///< swallow the whitespace on its left
  bool rstrip = false;       ///< swallow the whitespace on its right
  bool normalized = false;   ///< match in the normalized text (else in the raw text)
  bool special = false;      ///< skipped by decode(skip_special_tokens=true)
};

class AddedVocabulary {
 public:
  /// One piece of an encoded text: an added token (id >= 0) or normalized
  /// text for the pre-tokenizer and model (id == -1, text non-empty).
  struct Segment {
    std::string text;
    TokenId id;
  };

  /// `normalizer` (may be null) normalizes the content of normalized tokens;
  /// it must outlive this object.
  AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer);

  /// The text cut at added tokens, non-token pieces normalized; empty pieces
  /// are dropped.
  std::vector<Segment> extract_and_normalize(std::string_view text) const;

  /// The added token with this id, or nullptr.
  const AddedToken* by_id(TokenId id) const;
  /// The id of an added token's content, or -1.
  TokenId token_to_id(std::string_view content) const;
  /// True when `token` is the content of a special added token.
  bool is_special(const std::string& token) const { return special_.count(token) != 0; }
  /// Largest added id, -1 when none.
  TokenId max_id() const { return max_id_; }

 private:
  // A byte trie over token contents for leftmost-longest matching.
  struct Trie {
    std::unordered_map<uint64_t, int> edges;  ///< (node << 8 | byte) -> child node
    std::vector<int> terminal;                ///< node -> index into tokens_, or -1
    bool first_byte[256] = {};
    Trie() : terminal(1, -1) {}
    void add(const std::string& key, int token);
    /// Longest key starting at text[pos]: its token index and *len, or -1.
    int longest_at(std::string_view text, size_t pos, size_t* len) const;
  };
  struct Split {
    size_t start, end;
    int token;  ///< index into tokens_, -1 for text
  };
  std::vector<Split> find_matches(std::string_view text, const Trie& trie) const;

  std::vector<AddedToken> tokens_;
  const Normalizer* normalizer_;
  Trie raw_trie_;         ///< normalized == false tokens, on the raw text
  Trie normalized_trie_;  ///< normalized == true tokens (normalized content)
  std::unordered_map<TokenId, int> by_id_;
  std::unordered_map<std::string, TokenId> by_content_;
  std::unordered_set<std::string> special_;
  TokenId max_id_ = -1;
  std::unique_ptr<Regex> ends_with_word_, starts_with_word_, trailing_space_, leading_space_;
};

}  // namespace qsweep::model
