#pragma once
// FP8 E4M3FN (torch.float8_e4m3fn, OCP E4M3FN; SPECS.md A4.1): 1 sign,
// 4 exponent (bias 7), 3 mantissa bits, no infinities, NaN = S.1111.111,
// max finite 448 (0x7E), subnormals m/8 * 2^-6.

#include <cstdint>

namespace qsweep::quant {

/// float -> E4M3FN bits, round to nearest even, saturating: finite values and
/// +-inf clamp to +-448 first (as every reference does); NaN -> 0x7F|sign.
uint8_t f32_to_e4m3fn(float x);

/// float -> E4M3FN bits exactly as PyTorch's non-saturating cast: |x| above
/// the 448/512 midpoint 464 (and +-inf) become NaN (0x7F|sign).
uint8_t f32_to_e4m3fn_nonsat(float x);

/// E4M3FN bits -> float (exact); 0x7F/0xFF -> NaN.
float e4m3fn_to_f32(uint8_t bits);

}  // namespace qsweep::quant
