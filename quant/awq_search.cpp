#include "quant/awq_search.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <functional>
#include <cmath>
#include <limits>

#include "quant/awq.h"
#include "quant/quantizer.h"

namespace qsweep::quant {
Eigen::MatrixXf awq_clip_tokens(const Eigen::MatrixXf& x_all, int n_sample_token) {
  const int step = std::max(1, int(x_all.rows()) / n_sample_token);
  const int t = (int(x_all.rows()) + step - 1) / step;
  Eigen::MatrixXf x(t, x_all.cols());
  for (int i = 0; i < t; ++i) x.row(i) = x_all.row(i * step);
  return x;
}

AwqClipResult awq_compute_best_clip(const Eigen::MatrixXf& w, const Eigen::MatrixXf& x_all,
                                    int bits, int group_size, int n_grid, float max_shrink,
                                    int n_sample_token) {
  const int n = int(w.rows()), k = int(w.cols());
  const int g = group_size > 0 ? group_size : k;
  const int n_groups = (k + g - 1) / g;
  const Eigen::MatrixXf x = awq_clip_tokens(x_all, n_sample_token);
  const int t = int(x.rows());

  AwqClipResult res;
  res.tokens_used = t;
  res.best_max.resize(n, n_groups);
  res.best_step = Eigen::MatrixXi::Zero(n, n_groups);
  Eigen::MatrixXf org_max(n, n_groups);
  std::vector<Eigen::MatrixXf> org_out(n_groups);  // [N, T] per group
  for (int gi = 0; gi < n_groups; ++gi) {
    const int g0 = gi * g, width = std::min(g, k - g0);
    for (int r = 0; r < n; ++r) org_max(r, gi) = w.row(r).segment(g0, width).cwiseAbs().maxCoeff();
    org_out[gi] = w.middleCols(g0, width) * x.middleCols(g0, width).transpose();
  }
  res.best_max = org_max;
  Eigen::MatrixXf min_err = Eigen::MatrixXf::Constant(n, n_groups, 1e9f);
  const int n_steps = int(float(n_grid) * max_shrink);
  Eigen::MatrixXf cur(n, k);
  for (int i_s = 0; i_s < n_steps; ++i_s) {
    const float shrink = float(1.0 - double(i_s) / double(n_grid));
    Eigen::MatrixXf max_val = org_max * shrink;
    for (int gi = 0; gi < n_groups; ++gi) {
      const int g0 = gi * g, width = std::min(g, k - g0);
      for (int r = 0; r < n; ++r) {
        const float mx = max_val(r, gi), mn = -mx;
        for (int j = g0; j < g0 + width; ++j) cur(r, j) = std::clamp(w(r, j), mn, mx);
      }
    }
    const QuantizedWeight q = awq_pseudo_quantize(cur, bits, g);
    for (int gi = 0; gi < n_groups; ++gi) {
      const int g0 = gi * g, width = std::min(g, k - g0);
      const Eigen::MatrixXf out = q.q.middleCols(g0, width) * x.middleCols(g0, width).transpose();
      for (int r = 0; r < n; ++r) {
        double s = 0.0;
        for (int i = 0; i < t; ++i) {
          const float d = out(r, i) - org_out[gi](r, i);
          s += double(d * d);
        }
        const float err = float(s / t);
        if (err < min_err(r, gi)) {
          min_err(r, gi) = err;
          res.best_max(r, gi) = max_val(r, gi);
          res.best_step(r, gi) = i_s;
        }
      }
    }
  }
  return res;
}

void awq_apply_clip(Eigen::MatrixXf* w, const Eigen::MatrixXf& best_max, int group_size) {
  const int k = int(w->cols());
  const int g = group_size > 0 ? group_size : k;
  for (int r = 0; r < w->rows(); ++r)
    for (int j = 0; j < k; ++j) {
      const float m = best_max(r, j / g);
      (*w)(r, j) = std::clamp((*w)(r, j), -m, m);
    }
}

Eigen::VectorXf awq_x_mean(const Eigen::MatrixXf& x) {
  Eigen::VectorXf out(x.cols());
  tbb::parallel_for(0, int(x.cols()), [&](int j) {  // each column summed in order
    double s = 0.0;
    for (int i = 0; i < x.rows(); ++i) s += std::fabs(double(x(i, j)));
    out(j) = float(s / double(x.rows()));
  });
  return out;
}

Eigen::VectorXf awq_w_mean(const std::vector<const Eigen::MatrixXf*>& layers, int group_size) {
  const int k = int(layers.front()->cols());
  const int g = group_size > 0 ? group_size : k;
  Eigen::VectorXd sum = Eigen::VectorXd::Zero(k);
  int rows = 0;
  for (const Eigen::MatrixXf* l : layers) {
    for (int r = 0; r < l->rows(); ++r)
      for (int g0 = 0; g0 < k; g0 += g) {
        const int width = std::min(g, k - g0);
        const float denom = l->row(r).segment(g0, width).cwiseAbs().maxCoeff() + 1e-6f;
        for (int j = g0; j < g0 + width; ++j) sum(j) += double(std::fabs((*l)(r, j)) / denom);
      }
    rows += int(l->rows());
  }
  return (sum / double(rows)).cast<float>();
}

Eigen::VectorXf awq_scales_for_ratio(const Eigen::VectorXf& x_mean, const Eigen::VectorXf& w_mean,
                                     double ratio, bool duo_scaling) {
  const float e = float(ratio), e1 = float(1.0 - ratio);
  Eigen::VectorXf s(x_mean.size());
  for (int j = 0; j < s.size(); ++j) {
    float v = pow_like_torch(x_mean(j), e);
    if (duo_scaling) v = v / (pow_like_torch(w_mean(j), e1) + 1e-4f);
    s(j) = std::max(v, 1e-4f);
  }
  const float norm = std::sqrt(s.maxCoeff() * s.minCoeff());
  for (int j = 0; j < s.size(); ++j) {
    float v = s(j) / norm;
    if (!std::isfinite(v)) v = 1.0f;
    s(j) = v;
  }
  return s;
}

double awq_loss(const float* ref, const float* out, size_t n) {
  double loss = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const float d = ref[i] - out[i];
    loss += double(d * d);
  }
  return n ? loss / double(n) : 0.0;
}

AwqScaleResult awq_search_scale_by(const Eigen::VectorXf& x_mean, const Eigen::VectorXf& w_mean,
                                   bool duo_scaling, int n_grid,
                                   const std::function<double(const Eigen::VectorXf&)>& loss_for) {
  AwqScaleResult res;
  res.x_mean = x_mean;
  res.w_mean = w_mean;
  double best = std::numeric_limits<double>::infinity();
  for (int r = 0; r < n_grid; ++r) {
    const double ratio = double(r) / double(n_grid);
    const Eigen::VectorXf s = awq_scales_for_ratio(res.x_mean, res.w_mean, ratio, duo_scaling);
    const double loss = loss_for(s);
    res.loss_history.push_back(loss);
    if (loss < best) {
      best = loss;
      res.best_index = r;
      res.best_ratio = float(ratio);
      res.best_loss = loss;
      res.best_scales = s;
    }
  }
  return res;
}

AwqScaleResult awq_search_scale(
    const Eigen::VectorXf& x_mean, const std::vector<const Eigen::MatrixXf*>& layers, int bits,
    int group_size, bool duo_scaling, int n_grid,
    const std::function<double(const std::vector<Eigen::MatrixXf>&)>& loss_of) {
  std::vector<Eigen::MatrixXf> cand(layers.size());
  return awq_search_scale_by(x_mean, awq_w_mean(layers, group_size), duo_scaling, n_grid,
                             [&](const Eigen::VectorXf& s) {
                               for (size_t i = 0; i < layers.size(); ++i)
                                 cand[i] = awq_scaled_candidate(*layers[i], s, bits, group_size);
                               return loss_of(cand);
                             });
}

Eigen::MatrixXf awq_scaled_candidate(const Eigen::MatrixXf& w, const Eigen::VectorXf& s, int bits, int group_size) {
  Eigen::MatrixXf ws = w;
  for (int j = 0; j < ws.cols(); ++j) ws.col(j) *= s(j);
  Eigen::MatrixXf q = awq_pseudo_quantize(ws, bits, group_size).q;
  for (int j = 0; j < q.cols(); ++j) q.col(j) /= s(j);
  return q;
}

AwqScaleResult awq_search_scale_linear(const Eigen::MatrixXf& w, const Eigen::MatrixXf& x, int bits,
                                       int group_size, bool duo_scaling, int n_grid) {
  const Eigen::MatrixXf ref = x * w.transpose();
  return awq_search_scale(awq_x_mean(x), {&w}, bits, group_size, duo_scaling, n_grid,
                          [&](const std::vector<Eigen::MatrixXf>& c) {
                            const Eigen::MatrixXf out = x * c[0].transpose();
                            return awq_loss(ref.data(), out.data(), size_t(ref.size()));
                          });
}

}  // namespace qsweep::quant
