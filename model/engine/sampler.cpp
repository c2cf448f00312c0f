#include "model/engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace qsweep::model {

int argmax(const float* logits, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  return best;
}

Sampler::Sampler(float temperature, float top_p, uint64_t seed)
    : temperature_(temperature), top_p_(top_p), rng_(seed) {}

int Sampler::sample(const float* logits, int n) {
  if (temperature_ <= 0) return argmax(logits, n);
  const float mx = logits[argmax(logits, n)];
  std::vector<double> p(n);
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += p[i] = std::exp(double(logits[i] - mx) / temperature_);
  std::vector<int> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  int keep = n;
  if (top_p_ > 0 && top_p_ < 1) {
    std::sort(idx.begin(), idx.end(),
              [&](int a, int b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
    double cum = 0;
    for (keep = 0; keep < n;) {
      cum += p[idx[keep++]] / sum;
      if (cum >= top_p_) break;
    }
  }
  double total = 0;
  for (int k = 0; k < keep; ++k) total += p[idx[k]];
  double u = std::uniform_real_distribution<double>(0.0, total)(rng_);
  for (int k = 0; k < keep; ++k) {
    u -= p[idx[k]];
    if (u < 0) return idx[k];
  }
  return idx[keep - 1];
}

}  // namespace qsweep::model
