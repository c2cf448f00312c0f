#pragma once
// GPTQ `fasterquant` (SPECS.md A1.3), AutoGPTQ semantics: dead columns,
// static groups, act-order, relative damping, double Cholesky, lazy batch
// updates with block size 128, and the group-params-from-W quirk.

#include <cstdint>
#include <string>
#include <vector>

#include "quant/quantizer.h"

namespace qsweep::quant {

struct GptqConfig {
  int bits = 4;
  int group_size = 128;  ///< -1: per-channel
  bool sym = true;
  bool act_order = false;  ///< AutoGPTQ desc_act
  bool static_groups = false;
  float percdamp = 0.01f;  ///< preset autogptq 0.01, transformers 0.1
  int blocksize = 128;
  /// GPU path only: allow TF32 tensor cores in the Hessian and the GEMMs (the
  /// references run fp32 with TF32 off; the CPU path is always fp32).
  bool tf32 = false;
};

/// Quantizes W ([N, K]) with Hessian H ([K, K], as accumulated: dead columns
/// have H[j,j] == 0). Returns false with `err` set when H + damp is not
/// positive definite (AutoGPTQ/IST raise there).
///
/// Act-order ties: the permutation sorts diag(H) descending with a stable
/// sort, so equal diagonals (e.g. several dead columns, all 1 after the dead
/// fix) keep ascending original order. torch.argsort is not guaranteed
/// stable; with distinct diagonals the two agree.
bool gptq_quantize(const Eigen::MatrixXf& w, const Eigen::MatrixXf& h, const GptqConfig& cfg,
                   QuantizedWeight* out, std::string* err);
/// The same without copies: `w` and `h` are scratch. On success both are
/// overwritten (h is released); on failure `w` is unchanged (and `h` is not).
/// The same results as gptq_quantize, bit for bit.
bool gptq_quantize_inplace(Eigen::MatrixXf& w, Eigen::MatrixXf& h, const GptqConfig& cfg,
                           QuantizedWeight* out, std::string* err);

/// The steps of fasterquant around the factorization, shared by the CPU and
/// GPU (quant/cuda/) paths so both follow SPECS.md A1.3 the same way:
/// dead columns (diag(H) == 0) get H[j,j] = 1 and are listed in *dead; the
/// result is the column order (act-order: diag(H) descending, stable; else
/// identity). H itself is not permuted.
std::vector<int> gptq_dead_and_order(Eigen::MatrixXf& h, const GptqConfig& cfg, std::vector<int>* dead);
/// Zeroes W's dead columns, computes the static groups' params (from the
/// unpermuted W; empty unless static_groups), then permutes W's columns.
/// Called only once both factorizations succeeded (W stays unchanged on failure).
std::vector<Quantizer> gptq_prepare_w(Eigen::MatrixXf& w, const GptqConfig& cfg, const std::vector<int>& dead,
                                      const std::vector<int>& perm);
/// g_idx by original column (SPECS.md A1.5).
std::vector<int32_t> gptq_g_idx(const GptqConfig& cfg, const std::vector<int>& perm);

/// Output error tr(dW H dW^T) with dW = Q - W, accumulated in double.
double output_error(const Eigen::MatrixXf& q, const Eigen::MatrixXf& w, const Eigen::MatrixXf& h);

}  // namespace qsweep::quant
