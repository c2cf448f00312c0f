#pragma once
// The result of quantizing one Linear, whatever the method (RTN, GPTQ, AWQ,
// SmoothQuant + INT8, FP8): what the on-disk formats encode (quant/formats/)
// and what the engine's quantized Linear kernels run. One representation for
// every method so that methods and formats combine freely.
//
// Conventions (SPECS.md A1.5, A2.4, A4, A5):
//   - integer weights: unsigned codes q in [0, 2^bits - 1] and a zero point z
//     per (row, group) as the AutoGPTQ quantizer produces them; the value is
//     scale * (q - z). Symmetric means z == 2^(bits-1) everywhere, which is
//     compressed-tensors' signed code q - 2^(bits-1) with zero point 0.
//   - FP8 weights: codes are E4M3FN bit patterns (0..255); the value is
//     scale * e4m3fn_to_f32(code).
//   - `weight.q` holds the dequantized fp32 weight that every decoder of every
//     format must reproduce bit for bit from the stored tensors (writers round
//     scales to their storage dtype first; see formats/).

#include <Eigen/Dense>
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "quant/quantizer.h"

namespace qsweep::quant {

enum class WeightType { kInt, kFloat8 };

/// How many scales a weight has: one per tensor, per output row, or per
/// (output row, group of input columns).
enum class WeightStrategy { kTensor, kChannel, kGroup };

/// Activation (input) quantization applied at run time before the GEMM.
enum class ActQuant {
  kNone,              ///< weight-only (W4A16, W8A16)
  kInt8TokenDynamic,  ///< W8A8 int8: per-token symmetric scale absmax/127, computed at run time
  kFp8TokenDynamic,   ///< FP8_DYNAMIC: per-token scale max(absmax/448, 1/(448*512))
  kFp8TensorStatic,   ///< FP8: one calibrated input_scale per Linear
};

const char* weight_strategy_name(WeightStrategy s);  ///< "tensor" | "channel" | "group"
const char* act_quant_name(ActQuant a);  ///< "none" | "int8-token-dynamic" | ...

struct QuantizedLinear {
  std::string prefix;  ///< checkpoint name without ".weight", e.g. "model.layers.0.mlp.up_proj"
  WeightType type = WeightType::kInt;
  int bits = 4;  ///< 4 or 8 (int); 8 (fp8)
  WeightStrategy strategy = WeightStrategy::kGroup;
  bool sym = true;
  /// True when g_idx is not k / group_size (GPTQ act-order without static
  /// groups): formats that cannot store g_idx must refuse it.
  bool act_order = false;
  /// codes [N, K], scale/zero [N, n_groups] (tensor/channel: n_groups = 1,
  /// tensor: every row the same scale), g_idx [K], q [N, K] dequantized.
  /// group_size: the column count of a group (-1 for tensor/channel).
  QuantizedWeight weight;
  ActQuant act = ActQuant::kNone;
  float input_scale = 0;    ///< kFp8TensorStatic only: x_fp8 = x / input_scale
  std::vector<float> bias;  ///< [N] or empty
  int out_features() const { return int(weight.q.rows()); }
  int in_features() const { return int(weight.q.cols()); }
};

/// Calls f(r, j) for every r < n, j < k in 64 x 64 tiles: copies between a
/// column-major [n, k] matrix (Eigen's order, e.g. QuantizedWeight::codes)
/// and a row-major one stay in cache either way (a plain walk over an 8192 x
/// 2048 matrix misses on every access of one of the two).
template <class F>
void for_each_tiled(int n, int k, F f) {
  constexpr int kT = 64;
  for (int r0 = 0; r0 < n; r0 += kT)
    for (int k0 = 0; k0 < k; k0 += kT) {
      const int r1 = std::min(n, r0 + kT), k1 = std::min(k, k0 + kT);
      for (int r = r0; r < r1; ++r)
        for (int j = k0; j < k1; ++j) f(r, j);
    }
}

/// out[r * ld + j] = f(codes(r, j)): the [N, K] codes as a row-major byte matrix.
template <class F>
void codes_to_rows(const Eigen::MatrixXi& codes, uint8_t* out, size_t ld, F f) {
  for_each_tiled(int(codes.rows()), int(codes.cols()),
                 [&](int r, int j) { out[size_t(r) * ld + j] = uint8_t(f(codes(r, j))); });
}

}  // namespace qsweep::quant
