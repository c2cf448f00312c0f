#pragma once
// The llama2.c tokenizer file (`tok512.bin`, `tokenizer.bin`) and its
// encode/decode exactly as karpathy/llama2.c run.c does them.
//
// File format (little-endian): int32 max_token_length, then vocab_size
// records {float32 score, int32 len, len bytes}. vocab_size is not stored:
// it is the number of records in the file (run.c takes it from the model
// header). ids 0..2 are <unk>, "\n<s>\n", "\n</s>\n"; 3..258 are the byte
// tokens <0x00>..<0xFF>; pieces hold a leading ' ' (not U+2581).
//
// encode: a " " dummy prefix (for a non-empty text), one id per UTF-8 code
// point found in the vocabulary, else its bytes as ids 3 + byte, then greedy
// merges: repeatedly the adjacent pair whose concatenated piece has the highest
// score (leftmost on ties) until none is in the vocabulary.
// decode: pieces concatenated; a piece following BOS loses its leading space
// (the start of the sequence counts as following BOS: every llama2.c sequence
// starts with BOS); <0xNN> pieces are raw bytes.

#include <string>
#include <unordered_map>
#include <vector>

#include "model/tokenizer/tokenizer.h"

namespace qsweep::model {

class Llama2cTokenizer : public Tokenizer {
 public:
  /// Loads a llama2.c tokenizer; throws std::runtime_error naming the file
  /// (missing, truncated, a negative length, ...).
  static std::unique_ptr<Llama2cTokenizer> load(const std::string& path);

  std::vector<TokenId> encode(std::string_view text, bool add_special_tokens) const override;
  std::string decode(const std::vector<TokenId>& ids, bool skip_special_tokens) const override;
  TokenId token_to_id(std::string_view token) const override;
  std::string id_to_token(TokenId id) const override;
  TokenId bos_id() const override { return 1; }
  TokenId eos_id() const override { return 2; }
  size_t vocab_size() const override { return pieces_.size(); }

  /// Piece scores, by id (the merge priority).
  const std::vector<float>& scores() const { return scores_; }
  /// Pieces, by id (raw bytes, leading ' ' kept).
  const std::vector<std::string>& pieces() const { return pieces_; }
  int max_token_length() const { return max_token_length_; }

 private:
  Llama2cTokenizer() = default;
  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::unordered_map<std::string, TokenId> lookup_;  ///< piece -> lowest id with it
  int max_token_length_ = 0;
};

/// Writes a Hugging Face tokenizer.json + tokenizer_config.json for a llama2.c
/// tokenizer into `dir` (see hf_tokenizer_writer.h): pieces keep their leading
/// ' ', the normalizer is Prepend(" ") (the dummy prefix), BOS/EOS are special
/// added tokens, no unk token. Encoding with it equals Llama2cTokenizer::encode
/// (tests check the corpus) except for text containing "\n<s>\n" / "\n</s>\n",
/// which HF matches as special tokens; decode agrees with
/// skip_special_tokens=true. Throws std::runtime_error when `dir` cannot be
/// written.
void write_hf_tokenizer(const Llama2cTokenizer& tok, const std::string& dir);

}  // namespace qsweep::model
