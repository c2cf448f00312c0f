#pragma once
// Element types of checkpoint tensors and conversions to fp32 (the engine's
// compute type). Conversions are exact: fp16 and bf16 values are representable
// in fp32, subnormals, infinities and NaNs included.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace qsweep::model {

enum class DType { kF32, kF16, kBF16, kF64, kI64, kI32, kI16, kI8, kU8, kBool, kF8E4M3, kF8E5M2 };

/// Bytes per element.
size_t dtype_size(DType t);
/// The safetensors name ("F32", "BF16", ...).
const char* dtype_name(DType t);
/// Parses a safetensors dtype name; nullopt for unknown names.
std::optional<DType> parse_dtype(std::string_view name);

/// IEEE 754 binary16 bits -> float.
float f16_to_f32(uint16_t h);
/// bfloat16 bits -> float (the upper 16 bits of a binary32).
inline float bf16_to_f32(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}
/// float -> binary16 bits, round to nearest even (overflow -> inf).
uint16_t f32_to_f16(float f);
/// float -> bfloat16 bits, round to nearest even (NaN stays NaN).
uint16_t f32_to_bf16(float f);

/// Converts n elements of type `t` at `src` (little-endian) to fp32 in `dst`.
/// Floating types only (F32, F16, BF16, F64); returns false for others.
bool to_f32(DType t, const void* src, size_t n, float* dst);

}  // namespace qsweep::model
