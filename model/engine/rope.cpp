#include "model/engine/rope.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <cmath>
#include <cstddef>
#include <numbers>
#include <vector>

namespace qsweep::model {

Rope::Rope(const RopeConfig& cfg, int head_dim) : head_dim_(head_dim), inv_freq_(head_dim / 2) {
  const int half = head_dim / 2;
  for (int i = 0; i < half; ++i) {
    // base ** (2i / dim), the exponent rounded to fp32 as torch does.
    const float expo = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    double f = 1.0 / std::pow(cfg.theta, static_cast<double>(expo));
    if (cfg.type == RopeType::kLinear) {
      f /= cfg.factor;
    } else if (cfg.type == RopeType::kLlama3) {
      // Long wavelengths scaled by 1/factor, short kept, the band between
      // interpolated by old_ctx / wavelen.
      const double old_ctx = cfg.original_max_position;
      const double low_wavelen = old_ctx / cfg.low_freq_factor;
      const double high_wavelen = old_ctx / cfg.high_freq_factor;
      const double wavelen = 2.0 * std::numbers::pi / f;
      if (wavelen > low_wavelen) {
        f = f / cfg.factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth = (old_ctx / wavelen - cfg.low_freq_factor) /
                              (cfg.high_freq_factor - cfg.low_freq_factor);
        f = (1.0 - smooth) * f / cfg.factor + smooth * f;
      }
    }
    inv_freq_[i] = static_cast<float>(f);
  }
}

void Rope::apply(float* x, int n_tok, int n_head, const int* pos) const {
  // x [n_tok, n_head, head_dim]: out[i] = x[i] cos - x[i+h] sin, out[i+h] = x[i+h] cos + x[i] sin.
  const int half = head_dim_ / 2;
  auto rows = [&](const tbb::blocked_range<int>& r) {
    std::vector<float> cs(half), sn(half);
    for (int t = r.begin(); t < r.end(); ++t) {
      for (int i = 0; i < half; ++i) {
        const float angle = static_cast<float>(pos[t]) * inv_freq_[i];  // fp32 product, as torch
        cs[i] = static_cast<float>(std::cos(static_cast<double>(angle)));
        sn[i] = static_cast<float>(std::sin(static_cast<double>(angle)));
      }
      float* row = x + size_t(t) * n_head * head_dim_;
      for (int h = 0; h < n_head; ++h) {
        float* v = row + h * head_dim_;
        for (int i = 0; i < half; ++i) {
          const float a = v[i], b = v[i + half];
          v[i] = a * cs[i] - b * sn[i];
          v[i + half] = b * cs[i] + a * sn[i];
        }
      }
    }
  };
  if (n_tok < 32)
    rows(tbb::blocked_range<int>(0, n_tok));
  else
    tbb::parallel_for(tbb::blocked_range<int>(0, n_tok, 16), rows);
}

}  // namespace qsweep::model
