#include "quant/fp8.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace qsweep::quant {
namespace {

// |x| (finite, >= 0) -> 7-bit magnitude code with round to nearest even;
// may return 0x7F (the NaN pattern) or more when |x| rounds above 448.
uint32_t magnitude_code(float a) {
  if (a < 0.015625f) {  // below the smallest normal 2^-6: subnormal step 2^-9
    // Exact scaling by a power of two; m == 8 is the smallest normal (0x08).
    return uint32_t(std::nearbyint(std::ldexp(a, 9)));
  }
  int e;
  std::frexp(a, &e);  // a = f * 2^e, f in [0.5, 1) -> a in [2^(e-1), 2^e)
  int exp = e - 1;    // a in [2^exp, 2^(exp+1))
  float m = std::nearbyint(std::ldexp(a, 3 - exp));  // in [8, 16]
  if (m == 16) {
    m = 8;
    ++exp;
  }
  if (exp + 7 > 15) return 0x80;  // far above range
  return (uint32_t(exp + 7) << 3) | (uint32_t(m) - 8);
}

}  // namespace

uint8_t f32_to_e4m3fn(float x) {
  const uint8_t sign = std::signbit(x) ? 0x80 : 0;
  if (std::isnan(x)) return sign | 0x7F;
  const float a = std::min(std::fabs(x), 448.0f);
  return uint8_t(sign | magnitude_code(a));
}

uint8_t f32_to_e4m3fn_nonsat(float x) {
  const uint8_t sign = std::signbit(x) ? 0x80 : 0;
  if (std::isnan(x) || std::isinf(x)) return sign | 0x7F;
  const uint32_t code = magnitude_code(std::fabs(x));
  return uint8_t(sign | std::min<uint32_t>(code, 0x7F));
}

float e4m3fn_to_f32(uint8_t bits) {
  const float sign = (bits & 0x80) ? -1.0f : 1.0f;
  const int exp = (bits >> 3) & 0xF, man = bits & 7;
  if (exp == 15 && man == 7) return std::numeric_limits<float>::quiet_NaN();
  if (exp == 0) return sign * std::ldexp(float(man), -9);
  return sign * std::ldexp(float(8 + man), exp - 10);
}

}  // namespace qsweep::quant
