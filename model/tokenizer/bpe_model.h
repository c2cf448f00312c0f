#pragma once
// The byte-pair-encoding model of HF tokenizers (`"model": {"type": "BPE"}`):
// a word (one pre-tokenized piece) is split into characters, each looked up in
// the vocabulary (byte fallback to <0xNN> tokens, else the unk token), then
// adjacent symbols are merged lowest merge rank first (leftmost on ties) until
// no ranked pair remains; see huggingface/tokenizers models/bpe/{model,word}.rs.

#include <cstdint>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "model/tokenizer/tokenizer.h"

namespace qsweep::model {

class BpeModel {
 public:
  struct Options {
    std::optional<std::string> unk_token;   ///< none: unknown characters are dropped
    bool fuse_unk = false;                  ///< consecutive unknowns -> one unk id
    bool byte_fallback = false;             ///< unknown characters -> <0xNN> byte tokens
    bool ignore_merges = false;             ///< a word that is a vocab entry is one token
    std::string continuing_subword_prefix;  ///< "" = none
    std::string end_of_word_suffix;         ///< "" = none
  };

  /// vocab: (token, id) pairs; merges: (left, right) pairs in rank order.
  /// Throws std::runtime_error naming `what` when a merge names a token (or
  /// a merged result) that is not in the vocabulary, or unk_token is absent.
  BpeModel(std::vector<std::pair<std::string, TokenId>> vocab,
           const std::vector<std::pair<std::string, std::string>>& merges, Options options,
           const std::string& what);

  /// Appends the ids of one word (non-empty, valid UTF-8) to *out.
  void tokenize(std::string_view word, std::vector<TokenId>* out) const;

  /// -1 when absent.
  TokenId token_to_id(std::string_view token) const;
  /// nullptr when absent.
  const std::string* id_to_token(TokenId id) const;
  /// Number of vocabulary entries.
  size_t size() const { return vocab_.size(); }
  /// Largest id in the vocabulary (-1 when empty).
  TokenId max_id() const { return static_cast<TokenId>(vocab_r_.size()) - 1; }

 private:
  struct Merge {
    uint32_t rank;
    TokenId new_id;
  };
  static uint64_t pair_key(TokenId a, TokenId b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  void merge_word(std::string_view word, std::vector<TokenId>* out) const;

  std::unordered_map<std::string, TokenId> vocab_;
  std::vector<std::string> vocab_r_;  ///< id -> token; "" with has_id_[id] false = no such id
  std::vector<bool> has_id_;
  std::unordered_map<uint64_t, Merge> merges_;  ///< (left id, right id) -> rank, merged id
  Options options_;
  TokenId unk_id_ = -1;
  TokenId byte_ids_[256];  ///< id of "<0xNN>", -1 when absent (byte_fallback only)

  /// Word -> ids cache (the HF model caches likewise). Words of at most
  /// k_cache_max_word bytes, at most k_cache_capacity entries; then it stops
  /// growing.
  static constexpr size_t k_cache_max_word = 256;
  static constexpr size_t k_cache_capacity = 200000;
  mutable std::shared_mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<TokenId>> cache_;
};

}  // namespace qsweep::model
