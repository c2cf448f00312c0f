#pragma once
// AutoGPTQ v1 ("gptq") packing (SPECS.md A1.5, A5.1) for b in {4, 8}.
// Packs the integer codes the quantizer produced (clamped to [0, maxq]), not
// codes re-derived from fp16 scales as AutoGPTQ does (SPECS recommends this).

#include <cstdint>
#include <string>
#include <vector>

#include "quant/quantizer.h"

namespace qsweep::quant {

struct GptqPacked {
  int bits = 4, k = 0, n = 0, n_groups = 0;
  std::vector<uint32_t> qweight;  ///< [K*b/32, N] row-major: codes along K, LSB = lowest k
  std::vector<uint32_t> qzeros;   ///< [n_groups, N*b/32] row-major: zero-1 along N, LSB = lowest n
  std::vector<uint16_t> scales;   ///< [n_groups, N] fp16 bits (scale^T)
  std::vector<int32_t> g_idx;     ///< [K]
};

/// Packs `qw` (codes [N, K], scale/zero [N, n_groups], g_idx [K]). Requires
/// bits 4 or 8 and K, N multiples of 32/b. [QUIRK] zero 0 (asym) is stored as
/// -1 masked to b bits (0xF / 0xFF) in its own field only; v1 cannot represent
/// it (decoders add 1).
bool pack_gptq(const QuantizedWeight& qw, GptqPacked* out, std::string* err);

}  // namespace qsweep::quant
