#pragma once
// AutoAWQ scale and clip search (SPECS.md A2.2, A2.3), float32 like the
// golden values (AutoAWQ itself runs fp16 on GPU).

#include <Eigen/Dense>
#include <functional>
#include <vector>

namespace qsweep::quant {

struct AwqClipResult {
  Eigen::MatrixXf best_max;   ///< [N, n_groups] clamp bound per (row, group)
  Eigen::MatrixXi best_step;  ///< [N, n_groups] i_s of best_max (shrink 1 - i_s/n_grid)
  int tokens_used = 0;
};

/// AutoAWQ `_compute_best_clip`: `x` [n_tok, K] (already divided by the AWQ
/// scales), W [N, K]. Tokens sub-sampled with step max(1, n_tok / n_sample_token)
/// starting at 0; for i_s in [0, n_grid*max_shrink): max = org_max*(1-i_s/n_grid),
/// quantize clamp(W, -max, max) (asym, `group_size`), err = mean over tokens of
/// (group output - original group output)^2; strict < keeps the first best.
AwqClipResult awq_compute_best_clip(const Eigen::MatrixXf& w, const Eigen::MatrixXf& x, int bits,
                                    int group_size, int n_grid = 20, float max_shrink = 0.5f,
                                    int n_sample_token = 512);

/// The tokens awq_compute_best_clip uses: every max(1, n / n_sample_token)-th
/// row of x_all from row 0 ([t, K]).
Eigen::MatrixXf awq_clip_tokens(const Eigen::MatrixXf& x_all, int n_sample_token);

/// W = clamp(W, -best_max, best_max) per (row, group).
void awq_apply_clip(Eigen::MatrixXf* w, const Eigen::MatrixXf& best_max, int group_size);

/// Per input channel mean of |x| over tokens ([K]); summed in double, stored float.
Eigen::VectorXf awq_x_mean(const Eigen::MatrixXf& x);

/// AutoAWQ w_mean: the weights of `layers` stacked along the output dim, each
/// (row, group) of `group_size` divided by (its max |w| + 1e-6), mean over rows.
Eigen::VectorXf awq_w_mean(const std::vector<const Eigen::MatrixXf*>& layers, int group_size);

struct AwqScaleResult {
  int best_index = -1;  ///< grid index r, ratio r / n_grid
  float best_ratio = -1.0f;
  double best_loss = 0.0;
  std::vector<double> loss_history;  ///< [n_grid]
  Eigen::VectorXf best_scales;       ///< [K]
  Eigen::VectorXf x_mean, w_mean;    ///< [K]
};

/// AWQ grid scales for one ratio (duo_scaling formula or x_mean only), clamped
/// at 1e-4, normalised by sqrt(max*min), inf/nan -> 1.
Eigen::VectorXf awq_scales_for_ratio(const Eigen::VectorXf& x_mean, const Eigen::VectorXf& w_mean,
                                     double ratio, bool duo_scaling);

/// Σ (ref - out)^2 / n, differences in float, sum in double (AutoAWQ's loss).
double awq_loss(const float* ref, const float* out, size_t n);
/// The ratio grid of AutoAWQ `_compute_best_scale`: for each ratio r /
/// n_grid, s = awq_scales_for_ratio(x_mean, w_mean, ratio) and
/// loss_for(s) the module's loss with the layers scaled by s and
/// pseudo-quantized; strict < keeps the first best.
AwqScaleResult awq_search_scale_by(const Eigen::VectorXf& x_mean, const Eigen::VectorXf& w_mean,
                                   bool duo_scaling, int n_grid,
                                   const std::function<double(const Eigen::VectorXf&)>& loss_for);
/// The scale search's candidate for one Linear: awq_pseudo_quantize(W * s).q
/// / s (W [N, K], s [K] per input column; AutoAWQ's w * s, the quantized
/// value / s, in fp32).
Eigen::MatrixXf awq_scaled_candidate(const Eigen::MatrixXf& w, const Eigen::VectorXf& s, int bits, int group_size);
/// AutoAWQ `_compute_best_scale` for any module2inspect: for each ratio r /
/// n_grid, every weight of `layers` ([N_i, K]) becomes Q(W * s) / s and
/// `loss_of` returns the module's loss with those candidate weights (same
/// order); strict < keeps the first best. x_mean: mean |inp| per channel [K].
AwqScaleResult awq_search_scale(
    const Eigen::VectorXf& x_mean, const std::vector<const Eigen::MatrixXf*>& layers, int bits,
    int group_size, bool duo_scaling, int n_grid,
    const std::function<double(const std::vector<Eigen::MatrixXf>&)>& loss_of);
/// AutoAWQ `_compute_best_scale` with module2inspect = the single Linear `w`
/// ([N, K], no bias) fed `x` ([n_tok, K]): for each ratio, W' = Q(W*s)/s and
/// loss = Σ (x Wᵀ - x W'ᵀ)^2 / numel; strict < keeps the first best.
AwqScaleResult awq_search_scale_linear(const Eigen::MatrixXf& w, const Eigen::MatrixXf& x, int bits,
                                       int group_size, bool duo_scaling, int n_grid = 20);

/// Where AWQ's searches over a Linear's own output run
/// (LayerRecipe::awq_searcher): the CPU (awq_compute_best_clip,
/// awq_search_scale_linear) or a GPU (quant/cuda/awq_cuda.h, through the CUDA
/// plugin). Same arguments and results as those two functions.
class AwqSearcher {
 public:
  virtual ~AwqSearcher() = default;
  virtual AwqClipResult best_clip(const Eigen::MatrixXf& w, const Eigen::MatrixXf& x, int bits, int group_size,
                                  int n_grid, float max_shrink, int n_sample_token) = 0;
  virtual AwqScaleResult search_scale_linear(const Eigen::MatrixXf& w, const Eigen::MatrixXf& x, int bits,
                                             int group_size, bool duo_scaling, int n_grid) = 0;
};

}  // namespace qsweep::quant
