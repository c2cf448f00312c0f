#include "model/tokenizer/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

#include <filesystem>
#include <stdexcept>

#include "model/tokenizer/utf8.h"

namespace qsweep::model {

SentencePieceTokenizer::SentencePieceTokenizer()
    : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::unique_ptr<SentencePieceTokenizer> SentencePieceTokenizer::load(const std::string& path) {
  if (!std::filesystem::exists(path))
    throw std::runtime_error("cannot open " + path + ": no such file");
  std::unique_ptr<SentencePieceTokenizer> t(new SentencePieceTokenizer);
  const auto status = t->sp_->Load(path);
  if (!status.ok()) {
    throw std::runtime_error(path + ": not a SentencePiece model: " + status.ToString());
  }
  t->bos_id_ = t->sp_->bos_id();
  t->eos_id_ = t->sp_->eos_id();
  return t;
}

std::vector<TokenId> SentencePieceTokenizer::encode(std::string_view text,
                                                    bool add_special_tokens) const {
  std::vector<int> ids;
  const std::string s = utf8::valid(text) ? std::string(text) : utf8::lossy(text);
  sp_->Encode(s, &ids).IgnoreError();  // fails only for an unloaded model
  std::vector<TokenId> out;
  out.reserve(ids.size() + 1);
  if (add_special_tokens && bos_id_ >= 0) out.push_back(bos_id_);
  out.insert(out.end(), ids.begin(), ids.end());
  return out;
}

std::string SentencePieceTokenizer::decode(const std::vector<TokenId>& ids,
                                           bool skip_special_tokens) const {
  const int n = sp_->GetPieceSize();
  std::string out;
  std::vector<int> run;
  auto flush = [&] {
    if (run.empty()) return;
    std::string s;
    sp_->Decode(run, &s).IgnoreError();
    out += s;
    run.clear();
  };
  for (TokenId id : ids) {
    if (id < 0 || id >= n) continue;
    if (sp_->IsControl(id)) {
      if (skip_special_tokens) continue;
      flush();
      out += sp_->IdToPiece(id);
      continue;
    }
    run.push_back(id);
  }
  flush();
  return out;
}

TokenId SentencePieceTokenizer::token_to_id(std::string_view token) const {
  const int id = sp_->PieceToId(std::string(token));
  // PieceToId answers unk_id for unknown pieces.
  return sp_->IdToPiece(id) == token ? id : -1;
}

std::string SentencePieceTokenizer::id_to_token(TokenId id) const {
  if (id < 0 || id >= sp_->GetPieceSize()) return {};
  return sp_->IdToPiece(id);
}

ScoredVocab SentencePieceTokenizer::scored_vocab() const {
  ScoredVocab v;
  const int n = sp_->GetPieceSize();
  for (int id = 0; id < n; ++id) {
    v.pieces.push_back(sp_->IdToPiece(id));
    v.scores.push_back(sp_->GetScore(id));
    v.mergeable.push_back(
        !(sp_->IsControl(id) || sp_->IsUnknown(id) || sp_->IsByte(id) || sp_->IsUnused(id)));
  }
  v.unk_id = sp_->unk_id();
  v.bos_id = bos_id_;
  v.eos_id = eos_id_;
  v.space = "\xE2\x96\x81";  // U+2581
  return v;
}

size_t SentencePieceTokenizer::vocab_size() const {
  return static_cast<size_t>(sp_->GetPieceSize());
}

}  // namespace qsweep::model
