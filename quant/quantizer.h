#pragma once
// AutoGPTQ / IST-DASLab Quantizer (SPECS.md A1.4) and RTN built on it.
// Per-row parameters over a slice of columns; float32 as the references;
// rounding is round-half-to-even (std::nearbyint), never std::round.

#include <Eigen/Dense>
#include <cmath>
#include <cstdint>
#include <vector>

namespace qsweep::quant {

/// Round half to even under the default rounding mode (torch.round).
inline float rne(float x) { return std::nearbyint(x); }

/// torch.pow(tensor, scalar) in float32: its exact special cases (e = 0, 1,
/// 0.5, 2), else powf.
inline float pow_like_torch(float base, float e) {
  if (e == 0.0f) return 1.0f;
  if (e == 1.0f) return base;
  if (e == 0.5f) return std::sqrt(base);
  if (e == 2.0f) return base * base;
  return std::pow(base, e);
}

/// Per-row scale/zero for one slice of columns (perchannel=True, mse=False).
class Quantizer {
 public:
  Quantizer(int bits, bool sym) : bits_(bits), sym_(sym), maxq_(float((1 << bits) - 1)) {}

  /// Computes scale/zero of every row of `x` ([N, n_cols]) over its columns.
  void find_params(const Eigen::Ref<const Eigen::MatrixXf>& x);

  /// Quantizes one column `w` ([N]) with the current row params: dequantized
  /// values into `q` ([N]) and integer codes in [0, maxq] into `codes` ([N]).
  void quantize(const Eigen::Ref<const Eigen::VectorXf>& w, Eigen::Ref<Eigen::VectorXf> q,
                Eigen::Ref<Eigen::VectorXi> codes) const;

  bool ready() const { return scale_.size() > 0; }
  int bits() const { return bits_; }
  bool sym() const { return sym_; }
  float maxq() const { return maxq_; }
  const Eigen::VectorXf& scale() const { return scale_; }  ///< [N]
  const Eigen::VectorXf& zero() const { return zero_; }    ///< [N], a float like the reference

 private:
  int bits_;
  bool sym_;
  float maxq_;
  Eigen::VectorXf scale_;
  Eigen::VectorXf zero_;
};

/// A quantized Linear weight (GPTQ or RTN), all in original column order
/// except scale/zero, whose columns are in the order groups were computed
/// (SPECS.md A1.5).
struct QuantizedWeight {
  int bits = 4;
  int group_size = -1;         ///< -1: per-channel (one group of K columns)
  Eigen::MatrixXf q;           ///< [N, K] dequantized weight
  Eigen::MatrixXi codes;       ///< [N, K] integer codes in [0, maxq]
  Eigen::MatrixXf scale;       ///< [N, n_groups]
  Eigen::MatrixXf zero;        ///< [N, n_groups]
  std::vector<int32_t> g_idx;  ///< [K] group (column of scale/zero) of each input column

  /// Sized for an [n, k] weight in groups of `group_size` (-1: one group of
  /// k) in natural column order: g_idx[j] = j / group; values unset.
  static QuantizedWeight sized(int n, int k, int bits, int group_size);
  /// Columns per group (k for per-channel).
  int group_width() const { return group_size == -1 ? int(q.cols()) : group_size; }
};

/// Round-to-nearest of W ([N, K]) per channel (group_size -1) or per group of
/// `group_size` consecutive columns, with the A1.4 quantizer.
QuantizedWeight rtn_quantize(const Eigen::MatrixXf& w, int bits, bool sym, int group_size);

}  // namespace qsweep::quant
