#pragma once
// GPTQ Hessian accumulation (SPECS.md A1.2, IST/AutoGPTQ `add_batch`):
// H = (2 / n_seq) * sum_t x_t x_t^T, accumulated batch by batch in float32
// with the references' running rescale.

#include <Eigen/Dense>
#include <utility>

namespace qsweep::quant {

class HessianAccumulator {
 public:
  /// `k`: in_features of the Linear.
  explicit HessianAccumulator(int k) : h_(Eigen::MatrixXf::Zero(k, k)) {}

  /// One forward call: `x` ([B*T, K], one token per row) from `n_seq` (= B)
  /// sequences. H *= n/(n+B); n += B; x *= sqrt(2/n); H += x^T x.
  void add_batch(const Eigen::Ref<const Eigen::MatrixXf>& x, int n_seq);

  /// The same from x [n_rows, K] row-major (a Linear's input as the engine
  /// holds it); symmetric rank-k update (same values up to summation order).
  /// Parallel (tbb): the lower triangle is cut into square tiles, each
  /// rescaled and updated by its own task (diagonal tiles: selfadjoint
  /// rankUpdate, the others: GEMMs); the upper triangle is mirrored lazily on
  /// the next h().
  void add_batch_rows(const float* x, int n_rows, int n_seq);
  const Eigen::MatrixXf& h() const {  ///< [K, K]
    mirror();
    return h_;
  }
  int nsamples() const { return nsamples_; }  ///< sequences seen so far
  /// Moves H out (the accumulator is left empty): for its last user.
  Eigen::MatrixXf take() {
    mirror();
    return std::move(h_);
  }

 private:
  void mirror() const;
  mutable Eigen::MatrixXf h_;
  mutable bool lower_only_ = false;  // upper triangle stale (add_batch_rows)
  int nsamples_ = 0;
};

}  // namespace qsweep::quant
