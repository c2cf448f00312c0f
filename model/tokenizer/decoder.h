#pragma once
// tokenizer.json `decoder` components qsweep implements: Sequence, Replace,
// ByteFallback, Fuse, Strip, ByteLevel. Any other type is a load error naming
// the file and the type.

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace qsweep::model {

class Decoder {
 public:
  virtual ~Decoder() = default;
  /// HF's decode_chain: rewrites the token strings (some decoders join them).
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

/// Null JSON gives nullptr. Throws std::runtime_error naming `file`.
std::unique_ptr<Decoder> make_decoder(const nlohmann::json& j, const std::string& file);

}  // namespace qsweep::model
