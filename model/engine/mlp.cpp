#include "model/engine/mlp.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <Eigen/Core>
#include <cmath>
#include <unsupported/Eigen/SpecialFunctions>
#include <vector>

namespace qsweep::model {

void gated_activation(Activation act, float* g, const float* u, size_t count) {
  // Eigen array expressions: vectorized exp/tanh/erf.
  auto body = [&](const tbb::blocked_range<size_t>& r) {
    const Eigen::Index n = static_cast<Eigen::Index>(r.end() - r.begin());
    Eigen::Map<Eigen::ArrayXf> x(g + r.begin(), n);
    const Eigen::Map<const Eigen::ArrayXf> v(u + r.begin(), n);
    switch (act) {
      case Activation::kSilu:
        x = x / (1.0f + (-x).exp()) * v;
        break;
      case Activation::kGeluTanh: {
        const float k = 0.7978845608028654f;  // sqrt(2 / pi)
        x = 0.5f * x * (1.0f + (k * (x + 0.044715f * x * x * x)).tanh()) * v;
        break;
      }
      case Activation::kGelu:
        x = 0.5f * x * (1.0f + (x * 0.7071067811865476f).erf()) * v;
        break;
    }
  };
  if (count < 16384)
    body(tbb::blocked_range<size_t>(0, count));
  else
    tbb::parallel_for(tbb::blocked_range<size_t>(0, count, 8192), body);
}

void Mlp::forward(const float* x, float* y, int n, Workspace& ws) const {
  const size_t count = size_t(n) * gate->out_features();
  float* g = Workspace::get(ws.gate, count);  // [n, n_ff]
  float* u = Workspace::get(ws.up, count);    // [n, n_ff]
  gate->forward(x, g, n);
  up->forward(x, u, n);
  gated_activation(act, g, u, count);
  down->forward(g, y, n);
}

}  // namespace qsweep::model
