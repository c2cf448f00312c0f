#pragma once
// GPTQ on an NVIDIA GPU (issue #10, first part): the Hessian accumulated with
// cuBLAS SYRK in fp32 (TF32 only when asked), the double Cholesky with
// cuSOLVER (potrf, potri, potrf), the in-block column updates in a kernel
// (one thread per output row: the GPTQ recursion inside a block only couples
// columns of the same row), and the lazy block updates as cuBLAS GEMMs.
// Same semantics as quant/gptq.h and quant/hessian.h (SPECS.md A1.2-A1.4:
// dead columns, act-order, static groups, the group-params-from-W quirk);
// values differ from the CPU path only by floating-point rounding of the
// factorizations and GEMMs (codes >= 99.5% identical, tested on the GPU
// machine).
//
// This header has no CUDA types: CPU-only code may include it. The library
// (qsweep_quant_cuda) exists only when CMake found the CUDA toolkit.

#include <Eigen/Dense>
#include <memory>
#include <string>

#include "quant/gptq.h"
#include "quant/gptq_solver.h"
#include "quant/quantizer.h"

namespace qsweep::quant::cuda {

/// True when a CUDA device is usable; else false and *why ("no CUDA device
/// is visible (CUDA_VISIBLE_DEVICES=...)", the driver's error).
bool available(std::string* why);

/// "NVIDIA H100 80GB HBM3, 79.1 GiB, sm_90".
std::string device_description();

/// HessianAccumulator (quant/hessian.h) on the device: H stays there until
/// take(). Add batches from host rows (copied) or device rows.
class HessianAccumulatorCuda {
 public:
  /// k: in_features. tf32: allow TF32 tensor cores (the references disable it).
  explicit HessianAccumulatorCuda(int k, bool tf32 = false);
  ~HessianAccumulatorCuda();
  HessianAccumulatorCuda(const HessianAccumulatorCuda&) = delete;
  HessianAccumulatorCuda& operator=(const HessianAccumulatorCuda&) = delete;

  /// x: [n_rows, K] row-major on the host, from n_seq sequences.
  void add_batch_rows(const float* x, int n_rows, int n_seq);
  /// The same with x already in device memory.
  void add_batch_rows_device(const float* x_dev, int n_rows, int n_seq);
  int nsamples() const { return nsamples_; }
  /// H [K, K] (both triangles) on the host; waits for the device.
  Eigen::MatrixXf take();

 private:
  struct State;
  std::unique_ptr<State> s_;
  int k_;
  int nsamples_ = 0;
};

/// Seconds spent in each part of gptq_quantize_cuda (device synchronized).
struct GptqCudaTimes {
  double prep = 0;       ///< host: per-channel params, dead columns, act-order permutation of W, static groups
  double upload = 0;     ///< H, W, params to the device
  double factorize = 0;  ///< permute H, damp, potrf, potri, potrf
  double quantize = 0;   ///< the block kernels and lazy-update GEMMs
  double download = 0;   ///< Q, codes, group params back
};

/// gptq_quantize on the device. False + *err when H + damp is not positive
/// definite (cuSOLVER's potrf reports it) or on a CUDA error.
bool gptq_quantize_cuda(const Eigen::MatrixXf& w, const Eigen::MatrixXf& h, const GptqConfig& cfg,
                        QuantizedWeight* out, std::string* err, GptqCudaTimes* times = nullptr);

/// The GPTQ solver of the layer pipeline on GPU `device` (an index among the
/// visible devices): Hessians accumulated there, solves there. Every call
/// selects the device first (callers may be any thread).
std::unique_ptr<GptqSolver> make_gptq_solver(int device);

}  // namespace qsweep::quant::cuda
