#pragma once
// Rotary position embedding, Hugging Face convention (rotate_half: dimension i
// pairs with i + head_dim/2), with the default, linear and llama3 frequency
// schedules of transformers' modeling_rope_utils.

#include <vector>

#include "model/checkpoint/config.h"

namespace qsweep::model {

class Rope {
 public:
  Rope(const RopeConfig& cfg, int head_dim);
  /// Inverse frequencies [head_dim / 2] (fp32, as transformers computes them).
  const std::vector<float>& inv_freq() const { return inv_freq_; }
  /// Rotates x [n_tok, n_head * head_dim] in place; token t is at position pos[t].
  void apply(float* x, int n_tok, int n_head, const int* pos) const;

 private:
  int head_dim_;
  std::vector<float> inv_freq_;
};

}  // namespace qsweep::model
