#pragma once
// Where GPTQ runs: the Hessian accumulation during the calibration forward
// pass and the per-Linear solve (quant/gptq.h). The CPU solver is always
// there; quant/cuda/ adds one per GPU (issue #10). The layer pipeline
// (layer_methods.cpp) only sees this interface.

#include <Eigen/Dense>
#include <memory>
#include <string>

#include "quant/gptq.h"

namespace qsweep::quant {

/// H of one Linear's input, accumulated batch by batch (SPECS.md A1.2).
class HessianSink {
 public:
  virtual ~HessianSink() = default;
  /// x: [n_rows, K] row-major on the host, from n_seq sequences.
  virtual void add_batch_rows(const float* x, int n_rows, int n_seq) = 0;
  /// H [K, K] (both triangles), keeping the accumulator.
  virtual Eigen::MatrixXf h() = 0;
  /// H [K, K]; the accumulator may be released.
  virtual Eigen::MatrixXf take() = 0;
};

class GptqSolver {
 public:
  virtual ~GptqSolver() = default;
  /// "cpu", "cuda:0", ...
  virtual std::string device() const = 0;
  /// A Hessian for a Linear with k inputs (cfg: e.g. tf32 on the GPU).
  virtual std::unique_ptr<HessianSink> hessian(int k, const GptqConfig& cfg) = 0;
  /// gptq_quantize_inplace semantics: w and h are scratch.
  virtual bool quantize(Eigen::MatrixXf& w, Eigen::MatrixXf& h, const GptqConfig& cfg, QuantizedWeight* out,
                        std::string* err) = 0;
};

/// The CPU path (HessianAccumulator, gptq_quantize_inplace).
GptqSolver& cpu_gptq_solver();

}  // namespace qsweep::quant
