#include "quant/hessian.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <utility>
#include <vector>

namespace qsweep::quant {

void HessianAccumulator::add_batch(const Eigen::Ref<const Eigen::MatrixXf>& x, int n_seq) {
  assert(x.cols() == h_.cols() && n_seq > 0);
  mirror();
  // The Python scalars are doubles; PyTorch casts them to the tensor's float32.
  h_ *= static_cast<float>(double(nsamples_) / double(nsamples_ + n_seq));
  nsamples_ += n_seq;
  const float s = static_cast<float>(std::sqrt(2.0 / double(nsamples_)));
  const Eigen::MatrixXf xs = s * x;
  h_.noalias() += xs.transpose() * xs;
}

void HessianAccumulator::add_batch_rows(const float* x, int n_rows, int n_seq) {
  assert(n_seq > 0);
  const int k = int(h_.cols());
  const float f = static_cast<float>(double(nsamples_) / double(nsamples_ + n_seq));
  nsamples_ += n_seq;
  const float s = static_cast<float>(std::sqrt(2.0 / double(nsamples_)));
  const float alpha = s * s;
  // x^T viewed col-major [K, n_rows]; H += (s x)^T (s x) on the lower
  // triangle, tile by tile: H[I, J] = f H[I, J] + s^2 X_I X_J^T (I >= J).
  const Eigen::Map<const Eigen::MatrixXf> xt(x, k, n_rows);
  const int bs = k <= 512 ? k : 512;
  const int nb = (k + bs - 1) / bs;
  std::vector<std::pair<int, int>> tiles;
  for (int bi = 0; bi < nb; ++bi)
    for (int bj = 0; bj <= bi; ++bj) tiles.emplace_back(bi, bj);
  auto run = [&](size_t t) {
    const int i0 = tiles[t].first * bs, j0 = tiles[t].second * bs;
    const int ni = std::min(bs, k - i0), nj = std::min(bs, k - j0);
    auto blk = h_.block(i0, j0, ni, nj);
    if (i0 == j0) {
      blk.triangularView<Eigen::Lower>() *= f;
      blk.selfadjointView<Eigen::Lower>().rankUpdate(xt.middleRows(i0, ni), alpha);
    } else {
      blk *= f;
      blk.noalias() += alpha * xt.middleRows(i0, ni) * xt.middleRows(j0, nj).transpose();
    }
  };
  if (tiles.size() == 1)
    run(0);
  else
    tbb::parallel_for(size_t(0), tiles.size(), run);
  lower_only_ = true;
}

void HessianAccumulator::mirror() const {
  if (!lower_only_) return;
  h_.triangularView<Eigen::StrictlyUpper>() = h_.transpose();
  lower_only_ = false;
}

}  // namespace qsweep::quant
