#include "quant/formats/quantized_loader.h"

#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "model/checkpoint/checkpoint.h"
#include "quant/formats/format.h"

namespace qsweep::quant {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::optional<json> read_json(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return std::nullopt;
  std::ostringstream s;
  s << f.rdbuf();
  try {
    return json::parse(s.str());
  } catch (const json::exception& e) {
    throw std::runtime_error("cannot parse " + p.string() + ": " + e.what());
  }
}

/// The folder's quantization_config, or null when it has none.
json folder_quantization_config(const fs::path& dir) {
  if (auto c = read_json(dir / "config.json"); c && c->is_object() && c->contains("quantization_config"))
    return (*c)["quantization_config"];
  if (auto q = read_json(dir / "quantize_config.json"); q && q->is_object()) {
    json r = *q;
    if (!r.contains("quant_method")) r["quant_method"] = "gptq";  // AutoGPTQ's file
    return r;
  }
  return nullptr;
}

struct ConfigCache {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<const json>> by_dir;
  std::shared_ptr<const json> get(const fs::path& dir) {
    std::lock_guard<std::mutex> lock(mu);
    auto& slot = by_dir[dir.string()];
    if (!slot) slot = std::make_shared<const json>(folder_quantization_config(dir));
    return slot;
  }
};

}  // namespace

model::LinearLoader quantized_linear_loader(KernelKind kind) {
  auto cache = std::make_shared<ConfigCache>();
  return [cache, kind](const model::Checkpoint& ck, const std::string& name, int out, int in,
                       bool bias) -> std::unique_ptr<model::Linear> {
    const std::shared_ptr<const json> qc = cache->get(ck.dir());
    const std::optional<CheckpointFormat> f = detect_format(*qc);
    if (!f || !has_quantized_linear(*f, ck, name))
      return model::load_dense_linear(ck, name, out, in, bias);
    QuantizedLinear ql = decode_linear(ck, name, out, in, *qc);
    if (bias && ql.bias.empty())
      throw std::runtime_error("model folder " + ck.dir().string() + ": tensor '" + name +
                               ".bias' is missing");
    if (!bias) ql.bias.clear();
    return std::make_unique<QuantizedLinearKernel>(ql, kind);
  };
}

model::LinearLoader dequantizing_linear_loader() {
  auto cache = std::make_shared<ConfigCache>();
  return [cache](const model::Checkpoint& ck, const std::string& name, int out, int in,
                 bool bias) -> std::unique_ptr<model::Linear> {
    const std::shared_ptr<const json> qc = cache->get(ck.dir());
    const std::optional<CheckpointFormat> f = detect_format(*qc);
    if (!f || !has_quantized_linear(*f, ck, name)) return model::load_dense_linear(ck, name, out, in, bias);
    QuantizedLinear ql = decode_linear(ck, name, out, in, *qc);
    if (ql.act != ActQuant::kNone)
      throw std::runtime_error("model folder " + ck.dir().string() + ": layer '" + name + "' quantizes activations (" +
                               act_quant_name(ql.act) +
                               "); the GPU engine runs weight-only checkpoints (run this one with device: cpu)");
    if (bias && ql.bias.empty())
      throw std::runtime_error("model folder " + ck.dir().string() + ": tensor '" + name + ".bias' is missing");
    // weight.q: the exact dequantized values every kernel computes with.
    return model::make_dense_linear(ql.weight.q, bias ? ql.bias : std::vector<float>{});
  };
}

}  // namespace qsweep::quant
