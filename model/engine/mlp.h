#pragma once
// Gated feed-forward: down(act(gate(x)) * up(x)); act = SiLU (SwiGLU, Llama,
// Mistral, Qwen2) or GELU with the tanh approximation (GeGLU, Gemma).

#include <memory>

#include "model/checkpoint/config.h"
#include "model/engine/linear.h"
#include "model/engine/workspace.h"

namespace qsweep::model {

struct Mlp {
  std::unique_ptr<Linear> gate, up, down;  // [n_ff, d], [n_ff, d], [d, n_ff]
  Activation act = Activation::kSilu;
  /// x [n, d] -> y [n, d].
  void forward(const float* x, float* y, int n, Workspace& ws) const;
};

/// act(g) * u elementwise over `count` values, result in g.
void gated_activation(Activation act, float* g, const float* u, size_t count);

}  // namespace qsweep::model
