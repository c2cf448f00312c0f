#include "quant/hessian.h"

#include <cassert>
#include <cmath>

namespace qsweep::quant {

void HessianAccumulator::add_batch(const Eigen::Ref<const Eigen::MatrixXf>& x, int n_seq) {
  assert(x.cols() == h_.cols() && n_seq > 0);
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
  h_ *= static_cast<float>(double(nsamples_) / double(nsamples_ + n_seq));
  nsamples_ += n_seq;
  const float s = static_cast<float>(std::sqrt(2.0 / double(nsamples_)));
  // x^T viewed col-major [K, n_rows]; H += (s x)^T (s x) on the lower
  // triangle, then mirrored.
  const Eigen::Map<const Eigen::MatrixXf> xt(x, k, n_rows);
  h_.selfadjointView<Eigen::Lower>().rankUpdate(xt, s * s);
  h_.triangularView<Eigen::StrictlyUpper>() = h_.transpose();
}

}  // namespace qsweep::quant
