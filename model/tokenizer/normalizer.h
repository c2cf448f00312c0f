#pragma once
// tokenizer.json `normalizer` components qsweep implements: Sequence, Prepend,
// Replace (what the Llama 2 and Gemma 3 tokenizers use). Any other type is a
// load error naming the file and the type.

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace qsweep::model {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  /// Rewrites s in place.
  virtual void normalize(std::string& s) const = 0;
};

/// Builds a normalizer from its JSON; null JSON gives nullptr. Throws
/// std::runtime_error naming `file`.
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j, const std::string& file);

}  // namespace qsweep::model
