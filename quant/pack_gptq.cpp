#include "quant/pack_gptq.h"

#include <algorithm>
#include <cmath>

#include "model/dtype.h"

namespace qsweep::quant {

bool pack_gptq(const QuantizedWeight& qw, GptqPacked* out, std::string* err) {
  const int b = qw.bits, n = int(qw.codes.rows()), k = int(qw.codes.cols());
  if (b != 4 && b != 8) {
    if (err) *err = "pack_gptq: bits must be 4 or 8";
    return false;
  }
  const int per = 32 / b;
  if (k % per != 0 || n % per != 0) {
    if (err) *err = "pack_gptq: K and N must be multiples of " + std::to_string(per);
    return false;
  }
  const uint32_t mask = (1u << b) - 1, maxq = mask;
  const int n_groups = int(qw.scale.cols());
  out->bits = b;
  out->k = k;
  out->n = n;
  out->n_groups = n_groups;
  out->qweight.assign(size_t(k / per) * n, 0);
  for (int row = 0; row < k / per; ++row)
    for (int c = 0; c < n; ++c) {
      uint32_t word = 0;
      for (int t = 0; t < per; ++t) {
        const uint32_t code = uint32_t(std::clamp<int>(qw.codes(c, row * per + t), 0, int(maxq)));
        word |= code << (b * t);
      }
      out->qweight[size_t(row) * n + c] = word;
    }
  out->qzeros.assign(size_t(n_groups) * (n / per), 0);
  out->scales.assign(size_t(n_groups) * n, 0);
  for (int g = 0; g < n_groups; ++g) {
    for (int c = 0; c < n / per; ++c) {
      uint32_t word = 0;
      for (int t = 0; t < per; ++t) {
        const int z = int(std::lrint(qw.zero(c * per + t, g))) - 1;
        word |= (uint32_t(z) & mask) << (b * t);
      }
      out->qzeros[size_t(g) * (n / per) + c] = word;
    }
    for (int c = 0; c < n; ++c) out->scales[size_t(g) * n + c] = model::f32_to_f16(qw.scale(c, g));
  }
  out->g_idx = qw.g_idx;
  return true;
}

}  // namespace qsweep::quant
