#include "quant/formats/quantized_loader.h"

#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "model/checkpoint/checkpoint.h"
#include "quant/formats/format.h"
#include "quant/fp8.h"

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

/// A loader that reads quantized layers with `make` (a decoded layer, its
/// bias checked) and every other layer dense.
model::LinearLoader decoding_loader(std::function<std::unique_ptr<model::Linear>(QuantizedLinear&&)> make) {
  auto cache = std::make_shared<ConfigCache>();
  return [cache, make](const model::Checkpoint& ck, const std::string& name, int out, int in,
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
    return make(std::move(ql));
  };
}

}  // namespace

model::LinearLoader quantized_linear_loader(KernelKind kind) {
  return decoding_loader([kind](QuantizedLinear&& ql) -> std::unique_ptr<model::Linear> {
    return std::make_unique<QuantizedLinearKernel>(ql, kind);
  });
}

namespace {

/// A Linear interface `Base` whose forward() is the CPU kernel of the layer.
template <class Base>
class CpuKernelLinear : public Base {
 public:
  CpuKernelLinear(const QuantizedLinear& ql, KernelKind kind) : kernel_(ql, kind) {}
  void forward(const float* x, float* y, int n) const override { kernel_.forward(x, y, n); }
  int in_features() const override { return kernel_.in_features(); }
  int out_features() const override { return kernel_.out_features(); }
  size_t weight_bytes() const override { return kernel_.weight_bytes(); }

 private:
  QuantizedLinearKernel kernel_;  // validates ql (sizes, g_idx and code ranges, the scheme's constraints)
};

/// An activation-quantized layer as data (model::ActQuantizedLinear) and its
/// CPU kernel.
class ActQuantizedKernel final : public CpuKernelLinear<model::ActQuantizedLinear> {
 public:
  explicit ActQuantizedKernel(const QuantizedLinear& ql) : CpuKernelLinear(ql, KernelKind::kFast) {
    const QuantizedWeight& w = ql.weight;
    d_.act = ql.act == ActQuant::kInt8TokenDynamic  ? Act::kInt8Token
             : ql.act == ActQuant::kFp8TokenDynamic ? Act::kFp8Token
                                                    : Act::kFp8Static;
    d_.out = ql.out_features();
    d_.in = ql.in_features();
    d_.codes.resize(size_t(d_.out) * d_.in);
    const bool int8 = ql.type == WeightType::kInt;  // validated by the kernel: int8 zero point 128
    codes_to_rows(w.codes, d_.codes.data(), d_.in, [int8](int c) { return int8 ? uint8_t(int8_t(c - 128)) : c; });
    d_.w_scale.resize(d_.out);
    for (int r = 0; r < d_.out; ++r) d_.w_scale[r] = w.scale(r, 0);
    d_.input_scale = ql.input_scale;
    d_.bias = ql.bias;
  }
  const Data& data() const override { return d_; }

 private:
  Data d_;
};

/// A weight-only layer as data (model::WeightOnlyLinear: codes, group
/// scales and zeros, g_idx) and its CPU kernel.
class WeightOnlyKernel final : public CpuKernelLinear<model::WeightOnlyLinear> {
 public:
  // The reference kernel (plain loops: this loader is for the GPU): it
  // validates ql like the fast one without building the CPU layouts the GPU
  // never uses.
  explicit WeightOnlyKernel(const QuantizedLinear& ql) : CpuKernelLinear(ql, KernelKind::kReference) {
    const QuantizedWeight& w = ql.weight;
    d_.bits = ql.bits;
    d_.fp8 = ql.type == WeightType::kFloat8;
    d_.out = ql.out_features();
    d_.in = ql.in_features();
    d_.n_groups = int(w.scale.cols());
    d_.codes.resize(size_t(d_.out) * d_.in);
    codes_to_rows(w.codes, d_.codes.data(), d_.in, [](int c) { return c; });  // range validated
    d_.scale.resize(size_t(d_.out) * d_.n_groups);
    d_.zero.assign(size_t(d_.out) * d_.n_groups, 0.0f);
    for (int r = 0; r < d_.out; ++r)
      for (int g = 0; g < d_.n_groups; ++g) {
        d_.scale[size_t(r) * d_.n_groups + g] = w.scale(r, g);
        if (!d_.fp8) d_.zero[size_t(r) * d_.n_groups + g] = w.zero(r, g);
      }
    d_.g_idx = w.g_idx;
    d_.bias = ql.bias;
  }
  const Data& data() const override { return d_; }
  void dequantize(float* w) const override {
    for (int r = 0; r < d_.out; ++r)
      for (int k = 0; k < d_.in; ++k) {
        const size_t g = size_t(r) * d_.n_groups + d_.g_idx[k];
        const uint8_t c = d_.codes[size_t(r) * d_.in + k];
        w[size_t(r) * d_.in + k] =
            d_.fp8 ? d_.scale[g] * e4m3fn_to_f32(c) : d_.scale[g] * (float(c) - d_.zero[g]);  // == weight.q
      }
  }

 private:
  Data d_;
};

}  // namespace

model::LinearLoader gpu_engine_linear_loader() {
  return decoding_loader([](QuantizedLinear&& ql) -> std::unique_ptr<model::Linear> {
    if (ql.act != ActQuant::kNone) return std::make_unique<ActQuantizedKernel>(ql);
    return std::make_unique<WeightOnlyKernel>(ql);
  });
}

}  // namespace qsweep::quant
