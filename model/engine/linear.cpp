#include "model/engine/linear.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <Eigen/Core>
#include <algorithm>
#include <stdexcept>

#include "model/checkpoint/checkpoint.h"
#include "model/engine/kernel_assert.h"

namespace qsweep::model {

namespace {
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMat>;
using Map = Eigen::Map<RowMat>;
}  // namespace

DenseLinear::DenseLinear(std::shared_ptr<const AlignedVec> w, int out, int in,
                         std::vector<float> bias, size_t offset)
    : storage_(std::move(w)), offset_(offset), out_(out), in_(in), bias_(std::move(bias)) {
  QSWEEP_KASSERT(storage_ && storage_->size() >= offset_ + size_t(out_) * in_);
  QSWEEP_KASSERT(bias_.empty() || bias_.size() == size_t(out_));
}

void DenseLinear::forward(const float* x, float* y, int n) const {
  // x [n, in] @ W^T [in, out] -> y [n, out]; parallel over blocks of output
  // columns (rows of W) so that each task is an Eigen GEMM (n > 1) or GEMV.
  QSWEEP_KASSERT(n >= 0);
  if (n == 0) return;
  const ConstMap X(x, n, in_);
  const ConstMap W(weight(), out_, in_);
  Map Y(y, n, out_);
  const int threads = std::max(1, tbb::this_task_arena::max_concurrency());
  // Tiles: blocks of output columns (multiples of 16; >= 128 wide for GEMMs)
  // times blocks of input rows (>= 64 rows) until there are ~4 tiles per thread.
  int block = (out_ + 4 * threads - 1) / (4 * threads);
  block = std::max(16, (block + 15) / 16 * 16);
  if (n > 1) block = std::max(block, std::min(out_, 128));
  const int n_col = (out_ + block - 1) / block;
  int n_row = 1;
  if (n >= 128) n_row = std::clamp((4 * threads + n_col - 1) / n_col, 1, n / 64);
  const int row_block = (n + n_row - 1) / n_row;
  auto run = [&](int tile) {
    const int b = tile % n_col, rb = tile / n_col;
    const int c0 = b * block, nc = std::min(block, out_ - c0);
    const int r0 = rb * row_block, nr = std::min(row_block, n - r0);
    if (nr <= 0) return;
    if (n == 1) {
      // y[c0:c0+nc] = W[c0:c0+nc, :] x
      Eigen::Map<Eigen::VectorXf> yv(y + c0, nc);
      yv.noalias() = W.middleRows(c0, nc) * X.row(0).transpose();
    } else {
      // y[r0:r0+nr, c0:c0+nc] = x[r0:r0+nr, :] W[c0:c0+nc, :]^T
      Y.block(r0, c0, nr, nc).noalias() = X.middleRows(r0, nr) * W.middleRows(c0, nc).transpose();
    }
    if (!bias_.empty())
      for (int r = r0; r < r0 + nr; ++r)
        for (int c = c0; c < c0 + nc; ++c) y[size_t(r) * out_ + c] += bias_[c];
  };
  const int n_tiles = n_col * n_row;
  if (n_tiles == 1 || threads == 1) {
    for (int t = 0; t < n_tiles; ++t) run(t);
  } else {
    tbb::parallel_for(0, n_tiles, run);
  }
}

std::unique_ptr<DenseLinear> make_dense_linear(const Eigen::Ref<const Eigen::MatrixXf>& w, std::vector<float> bias) {
  auto storage = std::make_shared<AlignedVec>(size_t(w.rows()) * w.cols());
  Map(storage->data(), w.rows(), w.cols()) = w;
  return std::make_unique<DenseLinear>(std::move(storage), int(w.rows()), int(w.cols()), std::move(bias));
}

std::unique_ptr<Linear> load_dense_linear(const Checkpoint& ckpt, const std::string& name, int out,
                                          int in, bool bias) {
  const std::string wname = name + ".weight";
  const TensorView& v = ckpt.view(wname);
  if (v.shape.size() != 2 || v.shape[0] != out || v.shape[1] != in)
    throw std::runtime_error(
        "model folder " + ckpt.dir().string() + ": tensor '" + wname + "' has shape " +
        (v.shape.size() == 2
             ? "[" + std::to_string(v.shape[0]) + ", " + std::to_string(v.shape[1]) + "]"
             : "of rank " + std::to_string(v.shape.size())) +
        ", config.json implies [" + std::to_string(out) + ", " + std::to_string(in) + "]");
  auto w = std::make_shared<AlignedVec>(size_t(out) * in);
  ckpt.read_f32(wname, w->data(), w->size());
  std::vector<float> b;
  if (bias) {
    const std::string bname = name + ".bias";
    const TensorView& bv = ckpt.view(bname);
    if (bv.numel() != out)
      throw std::runtime_error("model folder " + ckpt.dir().string() + ": tensor '" + bname +
                               "' has " + std::to_string(bv.numel()) + " elements, expected " +
                               std::to_string(out));
    b.resize(out);
    ckpt.read_f32(bname, b.data(), b.size());
  }
  return std::make_unique<DenseLinear>(std::move(w), out, in, std::move(b));
}

}  // namespace qsweep::model
