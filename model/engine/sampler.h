#pragma once
// Next-token choice from a logits row: greedy argmax (first maximum, as
// torch.argmax) or temperature sampling with optional nucleus (top-p) cut.

#include <cstdint>
#include <random>

namespace qsweep::model {

/// Index of the first maximum of logits [n].
int argmax(const float* logits, int n);

class Sampler {
 public:
  /// temperature 0: greedy. top_p in (0, 1]: keep the smallest set of most
  /// likely tokens whose probability reaches top_p.
  Sampler(float temperature, float top_p, uint64_t seed);
  int sample(const float* logits, int n);

 private:
  float temperature_, top_p_;
  std::mt19937_64 rng_;
};

}  // namespace qsweep::model
