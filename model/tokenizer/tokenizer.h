#pragma once
// The tokenizer interface shared by every tokenizer format qsweep reads:
// Hugging Face tokenizer.json (hf_tokenizer.h), SentencePiece tokenizer.model
// (sentencepiece_tokenizer.h) and llama2.c tok512.bin (llama2c_tokenizer.h).
//
// Error policy of model/tokenizer/: loaders throw std::runtime_error whose
// message names the file and what is wrong (a stage body catches it at the
// stage boundary). decode never throws; encode throws std::runtime_error
// only if the regex engine exhausts its resources on a pathological text.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace qsweep::model {

/// A token id; -1 where an id is absent (see bos_id()/eos_id()).
using TokenId = int32_t;

/// Text <-> token ids. Implementations are immutable after loading and safe to
/// call from many threads at once.
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  /// Token ids of `text` (UTF-8; the HF and SentencePiece tokenizers read
  /// invalid bytes as U+FFFD, llama2.c gives them byte tokens as run.c does). With
  /// add_special_tokens the format's own additions (BOS for the tokenizers
  /// here) are added, as HF `encode(text, add_special_tokens=True)` does.
  virtual std::vector<TokenId> encode(std::string_view text, bool add_special_tokens) const = 0;
  /// The text of `ids`; unknown ids are skipped. skip_special_tokens drops
  /// special tokens (BOS, EOS, ...) as HF `decode` does.
  virtual std::string decode(const std::vector<TokenId>& ids, bool skip_special_tokens) const = 0;

  /// The id of a token string (the vocabulary's spelling, e.g. "▁the"), or -1.
  virtual TokenId token_to_id(std::string_view token) const = 0;
  /// The token string of an id; empty for an unknown id.
  virtual std::string id_to_token(TokenId id) const = 0;

  /// Beginning-of-sequence id, or -1 when the tokenizer has none.
  virtual TokenId bos_id() const = 0;
  /// End-of-sequence id (for chat models: the end-of-turn token their
  /// tokenizer_config.json names), or -1 when unknown.
  virtual TokenId eos_id() const = 0;
  /// Number of ids: the largest id + 1, added tokens included.
  virtual size_t vocab_size() const = 0;
};

/// Loads the tokenizer of a model folder (or a single tokenizer file): a
/// folder with tokenizer.json (+ tokenizer_config.json for BOS/EOS), else a
/// folder with tokenizer.model, else tok512.bin / tokenizer.bin (llama2.c).
/// A path to one of those files loads that file. Throws std::runtime_error.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);

}  // namespace qsweep::model
