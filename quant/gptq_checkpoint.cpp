#include "quant/gptq_checkpoint.h"

#include <cstring>
#include <regex>
#include <stdexcept>

#include "model/dtype.h"
#include "model/engine/workspace.h"

namespace qsweep::quant {


bool is_quantized_linear_weight(const std::string& name, std::string* prefix) {
  static const std::regex re(
      R"((model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj))\.weight)");
  std::smatch m;
  if (!std::regex_match(name, m, re)) return false;
  if (prefix) *prefix = m[1].str();
  return true;
}

Eigen::MatrixXf dequantize_gptq(const GptqPacked& p) {
  const int b = p.bits, per = 32 / b, n = p.n, k = p.k;
  const uint32_t mask = (1u << b) - 1;
  Eigen::MatrixXf w(n, k);
  for (int j = 0; j < k; ++j) {
    const int g = p.g_idx[j];
    for (int c = 0; c < n; ++c) {
      const uint32_t q = (p.qweight[size_t(j / per) * n + c] >> (b * (j % per))) & mask;
      const uint32_t zf = (p.qzeros[size_t(g) * (n / per) + c / per] >> (b * (c % per))) & mask;
      const float scale = model::f16_to_f32(p.scales[size_t(g) * n + c]);
      w(c, j) = scale * (float(q) - float(zf + 1));
    }
  }
  return w;
}

GptqPacked read_gptq_tensors(const model::Checkpoint& ck, const std::string& prefix, int out,
                             int in) {
  const model::TensorView& qv = ck.view(prefix + ".qweight");
  if (qv.dtype != model::DType::kI32 || qv.shape.size() != 2 || qv.shape[1] != out ||
      qv.shape[0] <= 0 || (int64_t(in) * 4) % qv.shape[0] != 0)
    throw std::runtime_error("model folder " + ck.dir().string() + ": tensor '" + prefix +
                             ".qweight' is " + model::dtype_name(qv.dtype) + " " +
                             model::shape_string(qv.shape) + ", expected I32 [in*bits/32, " +
                             std::to_string(out) + "]");
  GptqPacked p;
  p.bits = int(qv.shape[0] * 32 / in);
  if ((p.bits != 4 && p.bits != 8) || int64_t(in) * p.bits / 32 != qv.shape[0])
    throw std::runtime_error("model folder " + ck.dir().string() + ": tensor '" + prefix +
                             ".qweight' " + model::shape_string(qv.shape) +
                             " does not give 4 or 8 bits for " + std::to_string(in) +
                             " input features");
  const int per = 32 / p.bits;
  p.k = in;
  p.n = out;
  const model::TensorView& sv = ck.view(prefix + ".scales");
  if (sv.shape.size() != 2)
    throw std::runtime_error("model folder " + ck.dir().string() + ": tensor '" + prefix +
                             ".scales' is not 2-D");
  p.n_groups = int(sv.shape[0]);
  ck.expect(prefix + ".scales", model::DType::kF16, {p.n_groups, out});
  const auto& zv = ck.expect(prefix + ".qzeros", model::DType::kI32, {p.n_groups, out / per});
  const auto& gv = ck.expect(prefix + ".g_idx", model::DType::kI32, {in});
  p.qweight.resize(qv.numel());
  std::memcpy(p.qweight.data(), qv.data, qv.n_bytes);
  p.qzeros.resize(zv.numel());
  std::memcpy(p.qzeros.data(), zv.data, zv.n_bytes);
  p.scales.resize(sv.numel());
  std::memcpy(p.scales.data(), sv.data, sv.n_bytes);
  p.g_idx.resize(gv.numel());
  std::memcpy(p.g_idx.data(), gv.data, gv.n_bytes);
  for (int32_t g : p.g_idx)
    if (g < 0 || g >= p.n_groups)
      throw std::runtime_error("model folder " + ck.dir().string() + ": tensor '" + prefix +
                               ".g_idx' holds group " + std::to_string(g) + " outside [0, " +
                               std::to_string(p.n_groups) + ")");
  return p;
}

}  // namespace qsweep::quant
