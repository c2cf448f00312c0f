#include "model/engine/norm.h"

#include <tbb/parallel_for.h>

#include <cmath>
#include <cstddef>

namespace qsweep::model {

void rms_norm(const float* x, float* y, int n, int d, const float* w, float eps, bool plus_one) {
  auto row = [&](int r) {
    const float* xr = x + size_t(r) * d;
    float* yr = y + size_t(r) * d;
    double ss = 0;
    for (int i = 0; i < d; ++i) ss += double(xr[i]) * xr[i];
    const float inv = 1.0f / std::sqrt(static_cast<float>(ss / d) + eps);
    if (plus_one)
      for (int i = 0; i < d; ++i) yr[i] = xr[i] * inv * (1.0f + w[i]);
    else
      for (int i = 0; i < d; ++i) yr[i] = w[i] * (xr[i] * inv);
  };
  if (n < 16) {
    for (int r = 0; r < n; ++r) row(r);
  } else {
    tbb::parallel_for(0, n, row);
  }
}

}  // namespace qsweep::model
