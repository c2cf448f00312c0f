#pragma once
// SmoothQuant smoothing factors (SPECS.md A3.1 original mit-han-lab,
// A3.2 llm-compressor) and INT8 per-channel symmetric weight quantization in
// both conventions (A3.1 fake_quant amax/127; compressed-tensors A1.6 item 2
// amax/127.5 with codes clamped to [-128, 127]). float32, round half to even.

#include <Eigen/Dense>
#include <vector>

namespace qsweep::quant {

/// Per input channel statistics of activations x ([n_tok, K]).
Eigen::VectorXf act_absmax(const Eigen::MatrixXf& x);  ///< max |x| (original)
Eigen::VectorXf act_min(const Eigen::MatrixXf& x);     ///< min x (llm-compressor)
Eigen::VectorXf act_max(const Eigen::MatrixXf& x);     ///< max x (llm-compressor)

/// Original `smooth_ln_fcs_llama_like`: w_max_j = max over `fcs` and rows of
/// |W[:, j]| clamped >= 1e-5; s = clamp(absmax^alpha / w_max^(1-alpha), >= 1e-5).
Eigen::VectorXf smoothquant_scales_original(const Eigen::VectorXf& absmax,
                                            const std::vector<const Eigen::MatrixXf*>& fcs,
                                            float alpha);

/// llm-compressor SmoothQuantModifier: a = max - min, w = 2 * max over
/// `fcs` and rows of |W[:, j]|; s = a^alpha / w^(1-alpha), a where w == 0,
/// then s = max(s, 1e-5).
Eigen::VectorXf smoothquant_scales_llmcompressor(const Eigen::VectorXf& amin,
                                                 const Eigen::VectorXf& amax,
                                                 const std::vector<const Eigen::MatrixXf*>& fcs,
                                                 float alpha);

struct Int8Weight {
  Eigen::VectorXf scale;  ///< [N]
  Eigen::MatrixXi codes;  ///< [N, K] in [-128, 127]
  Eigen::MatrixXf q;      ///< [N, K] dequantized
};

/// SmoothQuant repo `quantize_weight_per_channel_absmax`:
/// scale = clamp(amax_row, 1e-5)/127, codes = rne(w/scale) (within ±127).
Int8Weight int8_per_channel_smoothquant(const Eigen::MatrixXf& w);

/// compressed-tensors int8 channel symmetric (min/max including 0):
/// scale = max(amax_row/127.5, eps), codes = rne(clamp(w/scale, -128, 127)).
Int8Weight int8_per_channel_ct(const Eigen::MatrixXf& w);

}  // namespace qsweep::quant
