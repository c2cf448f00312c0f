#include "quant/formats/activation_quant.h"

#include <algorithm>
#include <cmath>

#include "quant/fp8.h"

namespace qsweep::quant {

namespace {
float row_absmax(const float* x, int k) {
  float m = 0.0f;
  for (int i = 0; i < k; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}
}  // namespace

int8_t float_to_int8_rn(float v) {
  const float r = std::nearbyint(v);  // round half to even (default rounding mode)
  if (!(r == r)) return 0;
  return int8_t(std::clamp(r, -128.0f, 127.0f));
}

float quantize_row_int8(const float* x, int k, int8_t* q) {
  const float absmax = row_absmax(x, k);
  if (absmax == 0.0f) {
    std::fill(q, q + k, int8_t(0));
    return 0.0f;
  }
  const float mult = 127.0f / absmax;
  for (int i = 0; i < k; ++i) q[i] = float_to_int8_rn(x[i] * mult);
  return absmax / 127.0f;
}

void quantize_row_fp8_static(const float* x, int k, float scale, uint8_t* q) {
  for (int i = 0; i < k; ++i) q[i] = f32_to_e4m3fn(std::clamp(x[i] / scale, -kFp8Max, kFp8Max));
}

float quantize_row_fp8_dynamic(const float* x, int k, uint8_t* q) {
  const float scale = std::max(row_absmax(x, k) / kFp8Max, kFp8MinScale);
  quantize_row_fp8_static(x, k, scale, q);
  return scale;
}

}  // namespace qsweep::quant
