#pragma once
// A character-level tokenizer for tests of stages that need one next to a
// fixture model (whose vocabulary is 128): <unk> <s> </s>, the space piece,
// a-z, 0-9 and '.', plus optional extra merged pieces. BOS 1, EOS 2.

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "model/tokenizer/hf_tokenizer_writer.h"
#include "model/tokenizer/tokenizer.h"

namespace qsweep::testing {

/// Writes tokenizer.json + tokenizer_config.json into `dir` (created) and
/// loads them.
inline std::unique_ptr<model::Tokenizer> write_char_tokenizer(
    const std::filesystem::path& dir, const std::vector<std::string>& extra_pieces = {}) {
  model::ScoredVocab v;
  v.space = "\u2581";
  for (const char* p : {"<unk>", "<s>", "</s>"}) {
    v.pieces.push_back(p);
    v.mergeable.push_back(false);
  }
  v.pieces.push_back("\u2581");
  v.mergeable.push_back(true);
  for (char ch : std::string("abcdefghijklmnopqrstuvwxyz0123456789.")) {
    v.pieces.push_back(std::string(1, ch));
    v.mergeable.push_back(true);
  }
  for (const std::string& p : extra_pieces) {
    v.pieces.push_back(p);
    v.mergeable.push_back(true);
  }
  for (size_t i = 0; i < v.pieces.size(); ++i) v.scores.push_back(-float(i));
  v.unk_id = 0;
  v.bos_id = 1;
  v.eos_id = 2;
  std::filesystem::create_directories(dir);
  model::write_hf_tokenizer_files(v, dir.string());
  return model::load_tokenizer(dir.string());
}

}  // namespace qsweep::testing
