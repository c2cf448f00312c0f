#include "quant/quantizer.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace qsweep::quant {

void Quantizer::find_params(const Eigen::Ref<const Eigen::MatrixXf>& x) {
  const Eigen::Index n = x.rows();
  scale_.resize(n);
  zero_.resize(n);
  // Row extremes column by column (contiguous in column-major storage; min
  // and max are exact, so the order does not matter).
  const Eigen::VectorXf rmin = x.rowwise().minCoeff(), rmax = x.rowwise().maxCoeff();
  for (Eigen::Index r = 0; r < n; ++r) {
    float xmin = std::min(0.0f, rmin[r]);  // range always includes 0
    float xmax = std::max(0.0f, rmax[r]);
    if (sym_) {
      xmax = std::max(std::fabs(xmin), xmax);
      if (xmin < 0) xmin = -xmax;  // [QUIRK] an all->=0 row keeps xmin = 0
    }
    if (xmin == 0 && xmax == 0) {
      xmin = -1;
      xmax = +1;
    }
    const float scale = (xmax - xmin) / maxq_;
    scale_[r] = scale;
    zero_[r] = sym_ ? (maxq_ + 1) / 2 : rne(-xmin / scale);
  }
}

void Quantizer::quantize(const Eigen::Ref<const Eigen::VectorXf>& w, Eigen::Ref<Eigen::VectorXf> q,
                         Eigen::Ref<Eigen::VectorXi> codes) const {
  assert(ready() && w.size() == scale_.size());
  for (Eigen::Index r = 0; r < w.size(); ++r) {
    const float c = std::clamp(rne(w[r] / scale_[r]) + zero_[r], 0.0f, maxq_);
    q[r] = scale_[r] * (c - zero_[r]);
    codes[r] = static_cast<int>(c);
  }
}

QuantizedWeight QuantizedWeight::sized(int n, int k, int bits, int group_size) {
  const int g = group_size == -1 ? k : group_size;
  const int n_groups = (k + g - 1) / g;
  QuantizedWeight out;
  out.bits = bits;
  out.group_size = group_size;
  out.q.resize(n, k);
  out.codes.resize(n, k);
  out.scale.resize(n, n_groups);
  out.zero.resize(n, n_groups);
  out.g_idx.resize(k);
  for (int j = 0; j < k; ++j) out.g_idx[j] = j / g;
  return out;
}

QuantizedWeight rtn_quantize(const Eigen::MatrixXf& w, int bits, bool sym, int group_size) {
  const int n = int(w.rows()), k = int(w.cols());
  QuantizedWeight out = QuantizedWeight::sized(n, k, bits, group_size);
  const int g = out.group_width();
  const int n_groups = int(out.scale.cols());
  Quantizer quantizer(bits, sym);
  for (int gi = 0; gi < n_groups; ++gi) {
    const int g0 = gi * g, width = std::min(g, k - g0);
    quantizer.find_params(w.middleCols(g0, width));
    out.scale.col(gi) = quantizer.scale();
    out.zero.col(gi) = quantizer.zero();
    for (int j = g0; j < g0 + width; ++j) {
      quantizer.quantize(w.col(j), out.q.col(j), out.codes.col(j));
    }
  }
  return out;
}

}  // namespace qsweep::quant
