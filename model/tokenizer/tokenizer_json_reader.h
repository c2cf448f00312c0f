#pragma once
// A streaming (SAX) reader of tokenizer.json: model.vocab and model.merges,
// most of a 33 MB file, go straight into vectors; the rest becomes a small
// JSON document. About twice as fast as building the whole DOM, whose objects
// are std::maps.

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "model/tokenizer/tokenizer.h"

namespace qsweep::model {

struct TokenizerJson {
  /// The document without the vocabulary and merges: model.vocab is {} and
  /// model.merges is [] when they were present.
  nlohmann::json rest;
  std::vector<std::pair<std::string, TokenId>> vocab;       ///< in file order
  std::vector<std::pair<std::string, std::string>> merges;  ///< in rank order
  bool has_vocab = false, has_merges = false;
};

/// Parses tokenizer.json text; `name` (the file) prefixes every error.
/// Throws std::runtime_error for invalid JSON ("not valid JSON (truncated or
/// corrupt?)"), a non-integer vocab id, or a merge that is not two tokens.
TokenizerJson read_tokenizer_json(const std::string& text, const std::string& name);

}  // namespace qsweep::model
