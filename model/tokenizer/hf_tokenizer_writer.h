#pragma once
// Writes a Hugging Face tokenizer.json (+ tokenizer_config.json) for a scored
// vocabulary in the SentencePiece-BPE style (llama2.c tok512.bin, SentencePiece
// tokenizer.model), the way transformers' LlamaConverter does: a BPE model with
// byte_fallback whose merges are every split of a piece into two mergeable
// pieces, ordered by the merged piece's score (descending; then by merged id,
// then by the ids of the two parts), the dummy-prefix normalizer and the
// Replace/ByteFallback/Fuse/Strip decoder.
//
// Equivalence: BPE by these ranks equals "merge the adjacent pair whose merged
// piece scores highest, leftmost on ties" except where two different splits of
// the same merged piece compete in one word (rare; the tests measure it).

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "model/tokenizer/tokenizer.h"

namespace qsweep::model {

struct ScoredVocab {
  std::vector<std::string> pieces;  ///< by id; valid UTF-8
  std::vector<float> scores;        ///< by id; higher merges first
  std::vector<bool> mergeable;      ///< by id; false for control, unknown and byte pieces
  TokenId unk_id = -1;              ///< -1: no unk token
  TokenId bos_id = -1, eos_id = -1;
  std::string space;  ///< how pieces spell a space: "\u2581" (SentencePiece) or " " (llama2.c)
};

/// The tokenizer.json object. Throws std::runtime_error for a piece that is
/// not valid UTF-8 or sizes that disagree.
nlohmann::json bpe_tokenizer_json(const ScoredVocab& v);

/// Writes dir/tokenizer.json and dir/tokenizer_config.json (bos/eos/unk
/// tokens, add_bos_token). Throws std::runtime_error naming a file it cannot
/// write.
void write_hf_tokenizer_files(const ScoredVocab& v, const std::string& dir);

}  // namespace qsweep::model
