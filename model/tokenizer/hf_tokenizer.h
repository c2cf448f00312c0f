#pragma once
// A Hugging Face tokenizer.json with a BPE model, implementing exactly the
// components the Llama 2, Llama 3.1 and Gemma 3 tokenizers use (see
// normalizer.h, pre_tokenizer.h, decoder.h, bpe_model.h, added_vocabulary.h;
// post-processors: TemplateProcessing, ByteLevel, Sequence). Loading a file
// with any other component type, a model other than BPE, or truncation /
// padding settings throws std::runtime_error naming the file and component.
//
// encode(): added tokens are cut out of the raw text, each other piece is
// normalized, pre-tokenized and run through the BPE model; with
// add_special_tokens the post-processor's template adds BOS.
// decode(): ids -> token strings (added tokens first), special ones dropped
// with skip_special_tokens, then the decoder chain, joined.

#include <memory>
#include <string>
#include <vector>

#include "model/tokenizer/added_vocabulary.h"
#include "model/tokenizer/bpe_model.h"
#include "model/tokenizer/decoder.h"
#include "model/tokenizer/normalizer.h"
#include "model/tokenizer/pre_tokenizer.h"
#include "model/tokenizer/tokenizer.h"

namespace qsweep::model {

class HfTokenizer : public Tokenizer {
 public:
  /// Loads `path` (a tokenizer.json). BOS and EOS are read from
  /// tokenizer_config.json in the same folder when it exists (bos_token,
  /// eos_token); otherwise BOS is the first special token of the
  /// post-processor template and EOS is unknown (-1).
  static std::unique_ptr<HfTokenizer> load(const std::string& path);
  /// Parses tokenizer.json text; `name` stands for the file in messages.
  static std::unique_ptr<HfTokenizer> parse(const std::string& json_text, const std::string& name);

  std::vector<TokenId> encode(std::string_view text, bool add_special_tokens) const override;
  std::string decode(const std::vector<TokenId>& ids, bool skip_special_tokens) const override;
  TokenId token_to_id(std::string_view token) const override;
  std::string id_to_token(TokenId id) const override;
  TokenId bos_id() const override { return bos_id_; }
  TokenId eos_id() const override { return eos_id_; }
  size_t vocab_size() const override;

  /// Sets BOS/EOS by token string ("" leaves it unchanged); throws when the
  /// token is not in the vocabulary.
  void set_bos_eos(const std::string& bos, const std::string& eos, const std::string& what);

 private:
  HfTokenizer() = default;

  /// One element of the TemplateProcessing `single` template: the input
  /// sequence (ids empty) or a special token's ids.
  struct TemplateItem {
    bool is_sequence;
    std::vector<TokenId> ids;
  };

  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<Decoder> decoder_;
  std::unique_ptr<AddedVocabulary> added_;
  std::vector<TemplateItem> template_;  ///< empty: no template (nothing added)
  TokenId bos_id_ = -1, eos_id_ = -1;
};

}  // namespace qsweep::model
