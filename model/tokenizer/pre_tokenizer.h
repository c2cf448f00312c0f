#pragma once
// tokenizer.json `pre_tokenizer` components qsweep implements: Sequence, Split
// (String or Regex pattern, every behavior, invert) and ByteLevel
// (add_prefix_space, use_regex with the GPT-2 pattern). Any other type is a
// load error naming the file and the type.

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace qsweep::model {

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  /// Splits (and for ByteLevel, rewrites) every piece; empty pieces are
  /// dropped, as HF's PreTokenizedString::split does.
  virtual void pre_tokenize(std::vector<std::string>& pieces) const = 0;
};

/// Null JSON gives nullptr. Throws std::runtime_error naming `file`.
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j, const std::string& file);

}  // namespace qsweep::model
