#pragma once
// AutoAWQ quantizer and GEMM packing (SPECS.md A2.4, A2.6, A5.2), float32.
// AutoAWQ itself runs in fp16 on GPU, so rare ties may differ from it.

#include <cstdint>
#include <string>
#include <vector>

#include "quant/quantizer.h"

namespace qsweep::quant {

/// AutoAWQ `pseudo_quantize_tensor` with zero_point=True: per row and group of
/// `group_size` consecutive columns of W ([N, K]), min/max NOT forced to
/// include 0; scale = max(max-min, 1e-5)/maxq, zero = clamp(-rne(min/scale),
/// 0, maxq), q = clamp(rne(w/scale)+zero, 0, maxq). g_idx = k / group_size.
QuantizedWeight awq_pseudo_quantize(const Eigen::MatrixXf& w, int bits, int group_size);

struct AwqPacked {
  int k = 0, n = 0, n_groups = 0;
  std::vector<uint32_t> qweight;  ///< [K, N/8] row-major, codes along N, AWQ_ORDER interleave
  std::vector<uint32_t> qzeros;   ///< [n_groups, N/8] row-major, zeros as is, same interleave
  std::vector<uint16_t> scales;   ///< [n_groups, N] fp16 bits
};

/// Nibble i of a packed word holds column 8c + kAwqOrder[i].
inline constexpr int kAwqOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};

/// AutoAWQ WQLinear_GEMM packing of 4-bit `qw` (codes [N, K], clamped to
/// [0, 15]; scale/zero [N, n_groups]). Requires N % 8 == 0.
bool pack_awq_gemm(const QuantizedWeight& qw, AwqPacked* out, std::string* err);

}  // namespace qsweep::quant
