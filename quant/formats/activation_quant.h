#pragma once
// Run-time activation (input) quantization exactly as vLLM does it before a
// quantized GEMM (SPECS.md A3.2, A4.2). One row = one token of K inputs.
//   int8 per-token dynamic (csrc/quantization/compressed_tensors/int8_quant_kernels.cu):
//     scale = absmax / 127; q = saturate_int8(round_half_even(x * (127 / absmax)));
//     an all-zero row gives scale 0 and codes 0 (the GEMM result is then 0).
//   fp8 per-token dynamic (dynamic_per_token_scaled_fp8_quant_kernel):
//     scale = max(absmax / 448, 1 / (448 * 512)); q = e4m3fn(clamp(x / scale, -448, 448)).
//   fp8 per-tensor static: q = e4m3fn(clamp(x / input_scale, -448, 448)).
// fp8 codes are E4M3FN bit patterns (quant/fp8.h), cast round-to-nearest-even.

#include <cstdint>

namespace qsweep::quant {

inline constexpr float kFp8Max = 448.0f;
/// vLLM's min_scaling_factor for dynamic fp8: 1 / (448 * 512).
inline constexpr float kFp8MinScale = 1.0f / (448.0f * 512.0f);

/// round-half-even then saturate to [-128, 127] (vLLM float_to_int8_rn); NaN -> 0.
int8_t float_to_int8_rn(float v);

/// Quantizes one row `x` [k] into `q` [k]; returns the row's scale (absmax/127).
float quantize_row_int8(const float* x, int k, int8_t* q);

/// Quantizes one row to fp8 with its dynamic per-token scale; returns the scale.
float quantize_row_fp8_dynamic(const float* x, int k, uint8_t* q);

/// Quantizes one row to fp8 with a static scale.
void quantize_row_fp8_static(const float* x, int k, float scale, uint8_t* q);

}  // namespace qsweep::quant
