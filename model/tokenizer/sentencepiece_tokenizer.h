#pragma once
// A SentencePiece model file (`tokenizer.model`) through libsentencepiece.
//
// Compared with the HF tokenizer.json of the same model (legacy Llama 2
// behaviour) two things differ by design of the formats, not by bugs:
// - special-token text: "<s>" / "</s>" inside the text are plain text to
//   SentencePiece (it never matches control symbols in input), while HF's
//   added-token pass turns them into ids 1 / 2;
// - decode(skip_special_tokens=false) writes control pieces ("<s>") verbatim
//   between the decoded runs, and decoding drops the leading space of the
//   first piece (SentencePiece's dummy prefix), like the HF Strip decoder.
// Note: ../shared/data/tokenizers/llama2 holds the real Llama 2
// tokenizer.model but a tokenizer.json with another vocabulary (see
// docs/tokenizers.md); parity is tested against the tokenizer.json that
// write_hf_tokenizer_files(scored_vocab()) makes from the model instead.

#include <memory>
#include <string>
#include <vector>

#include "model/tokenizer/hf_tokenizer_writer.h"
#include "model/tokenizer/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace qsweep::model {

class SentencePieceTokenizer : public Tokenizer {
 public:
  /// Loads a SentencePiece model; throws std::runtime_error naming the file.
  static std::unique_ptr<SentencePieceTokenizer> load(const std::string& path);
  ~SentencePieceTokenizer() override;

  std::vector<TokenId> encode(std::string_view text, bool add_special_tokens) const override;
  std::string decode(const std::vector<TokenId>& ids, bool skip_special_tokens) const override;
  TokenId token_to_id(std::string_view token) const override;
  std::string id_to_token(TokenId id) const override;
  TokenId bos_id() const override { return bos_id_; }
  TokenId eos_id() const override { return eos_id_; }
  size_t vocab_size() const override;

  /// Pieces, scores and roles, for write_hf_tokenizer_files() (the
  /// LlamaConverter-style tokenizer.json of a BPE SentencePiece model;
  /// unigram models would need a Unigram tokenizer.json, which qsweep does
  /// not read).
  ScoredVocab scored_vocab() const;

 private:
  SentencePieceTokenizer();
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  TokenId bos_id_ = -1, eos_id_ = -1;
};

}  // namespace qsweep::model
