#pragma once
// The engine's model::Linear for a QuantizedLinear (quant/quantized_linear.h):
// y [n, out] = x [n, in] W^T + b with W held as codes + scales, never as a
// precomputed fp32 matrix.
//
// Two kernels, chosen at construction:
//   kReference  plain loops from the codes: for every output, a sequential sum
//               over k. Weight-only: sum_k x[k] * w(n, k) with w the exact
//               dequantized value (== QuantizedLinear::weight.q bit for bit).
//               With activation quantization the input row is first quantized
//               as vLLM does at run time (formats/activation_quant.h), then
//                 int8 W8A8: acc = sum_k xq[k] * (code - 128) in int32,
//                            y = sx * (sw[n] * float(acc))     (cutlass ScaledEpilogue order)
//                 fp8 acts:  acc = sum_k fp8(xq[k]) * fp8(code) in fp32,
//                            y = sx * (sw[n] * acc)
//               then + bias.
//   kFast       the same arithmetic reorganised for speed: weight-only int4/int8
//               dequantize on the fly, sum_g s_g * (sum_k x*code - z_g * sum_k x)
//               (AVX2/FMA when compiled with it, scalar otherwise), GEMMs (n >= 4)
//               dequantize a tile of rows and run Eigen; int4 with AVX-512 and
//               groups that are multiples of 128 (or per-channel) instead uses
//               the "lut" layout for n <= 16 tokens: 128 codes per 64 bytes,
//               one vpermps per 16 codes looks up the group's 16 dequantized
//               values s_g * (c - z_g) (the reference's w, bit for bit), fp32
//               accumulation; W8A8 integer dot
//               products (AVX512-VNNI dpbusd, or AVX2 madd_epi16; exact, so
//               bit-identical to kReference); fp8 weights through a 256-entry
//               table. Float sums are reordered, so results match kReference
//               to rounding (tests: relative 1e-5 of sum |x w|).
// Both parallelise over output rows with tbb::parallel_for (the caller runs
// inside a tbb::task_arena).

#include <memory>

#include "model/engine/linear.h"
#include "quant/quantized_linear.h"

namespace qsweep::quant {

enum class KernelKind { kReference, kFast };

class QuantizedLinearKernel final : public model::Linear {
 public:
  /// Validates `ql` (sizes, g_idx range, codes range, 4/8-bit int or fp8) and
  /// builds the kernel's layout; throws std::runtime_error naming the layer.
  explicit QuantizedLinearKernel(const QuantizedLinear& ql, KernelKind kind = KernelKind::kFast);
  ~QuantizedLinearKernel() override;
  void forward(const float* x, float* y, int n) const override;
  int in_features() const override;
  int out_features() const override;
  size_t weight_bytes() const override;
  KernelKind kind() const;
  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace qsweep::quant
