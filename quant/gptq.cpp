#include "quant/gptq.h"

#include <algorithm>
#include <numeric>

namespace qsweep::quant {

namespace {

// w and h are scratch (h is released); w is left unchanged when false is
// returned (every change to w comes after both factorizations succeeded, in
// the order the reference applies them).
bool gptq_impl(Eigen::MatrixXf& w, Eigen::MatrixXf& h, const GptqConfig& cfg,
               QuantizedWeight* out, std::string* err) {
  const int n = int(w.rows()), k = int(w.cols());
  if (h.rows() != k || h.cols() != k) {
    if (err) *err = "gptq: H must be [K, K] with K = W.cols()";
    return false;
  }
  const bool grouped = cfg.group_size != -1;
  const int g = grouped ? cfg.group_size : k;

  // Per-row params over the whole row, before the dead-column fix (used when
  // group_size == -1; overwritten per group otherwise).
  Quantizer quantizer(cfg.bits, cfg.sym);
  quantizer.find_params(w);

  std::vector<int> dead;  // their W columns are zeroed below
  const std::vector<int> perm = gptq_dead_and_order(h, cfg, &dead);
  if (cfg.act_order) {
    Eigen::MatrixXf hp(k, k);
    for (int p = 0; p < k; ++p)
      for (int q = 0; q < k; ++q) hp(q, p) = h(perm[q], perm[p]);
    h.swap(hp);
  }

  const float damp = cfg.percdamp * h.diagonal().mean();
  h.diagonal().array() += damp;

  // Double Cholesky: H -> H^{-1} -> upper factor U with U^T U = H^{-1}.
  // In place (the same Eigen algorithms and operation order as
  // LLT<MatrixXf>(h).solve(I) and LLT<MatrixXf>(hinv).matrixU(), so the same
  // values): h becomes L, then is freed; hinv becomes L2 with U = L2^T, read
  // through `u` below. Peak: two [K, K] matrices instead of five.
  Eigen::MatrixXf hinv = Eigen::MatrixXf::Identity(k, k);
  {
    Eigen::LLT<Eigen::Ref<Eigen::MatrixXf>> llt(h);
    if (llt.info() != Eigen::Success) {
      if (err) *err = "gptq: Cholesky of the damped Hessian failed (not positive definite)";
      return false;
    }
    llt.solveInPlace(hinv);
  }
  h.resize(0, 0);
  Eigen::LLT<Eigen::Ref<Eigen::MatrixXf>> llt2(hinv);
  if (llt2.info() != Eigen::Success) {
    if (err) *err = "gptq: Cholesky of H^{-1} failed";
    return false;
  }
  const auto u = hinv.transpose();  // U(i, j) = L2(j, i), upper triangle only

  // static groups: params of the unpermuted, dead-zeroed W
  const std::vector<Quantizer> groups = gptq_prepare_w(w, cfg, dead, perm);

  out->q.resize(n, k);
  out->codes.resize(n, k);
  std::vector<Eigen::VectorXf> scales, zeros;  // in computed order (non-static groups)
  const Quantizer* cur = &quantizer;
  Eigen::VectorXf err_col(n), qcol(n);
  Eigen::VectorXi ccol(n);
  for (int i1 = 0; i1 < k; i1 += cfg.blocksize) {
    const int i2 = std::min(i1 + cfg.blocksize, k), count = i2 - i1;
    Eigen::MatrixXf w1 = w.middleCols(i1, count);
    Eigen::MatrixXf err1(n, count);
    for (int i = 0; i < count; ++i) {
      const int col = i1 + i;
      if (grouped) {
        if (!cfg.static_groups) {
          if (col % g == 0) {
            // [QUIRK] reads W (only previous blocks' lazy updates), not W1.
            quantizer.find_params(w.middleCols(col, std::min(g, k - col)));
            scales.push_back(quantizer.scale());
            zeros.push_back(quantizer.zero());
          }
        } else {
          cur = &groups[perm[col] / g];
        }
      }
      const float d = u(col, col);
      cur->quantize(w1.col(i), qcol, ccol);
      out->q.col(perm[col]) = qcol;
      out->codes.col(perm[col]) = ccol;
      err_col = (w1.col(i) - qcol) / d;
      w1.rightCols(count - i).noalias() -= err_col * u.block(col, col, 1, count - i);
      err1.col(i) = err_col;
    }
    if (i2 < k) w.rightCols(k - i2).noalias() -= err1 * u.block(i1, i2, count, k - i2);
  }

  out->bits = cfg.bits;
  out->group_size = cfg.group_size;
  out->g_idx = gptq_g_idx(cfg, perm);
  if (!grouped) {
    out->scale = quantizer.scale();
    out->zero = quantizer.zero();
  } else if (cfg.static_groups) {
    out->scale.resize(n, Eigen::Index(groups.size()));
    out->zero.resize(n, Eigen::Index(groups.size()));
    for (size_t gi = 0; gi < groups.size(); ++gi) {
      out->scale.col(gi) = groups[gi].scale();
      out->zero.col(gi) = groups[gi].zero();
    }
  } else {
    out->scale.resize(n, Eigen::Index(scales.size()));
    out->zero.resize(n, Eigen::Index(scales.size()));
    for (size_t gi = 0; gi < scales.size(); ++gi) {
      out->scale.col(gi) = scales[gi];
      out->zero.col(gi) = zeros[gi];
    }
  }
  return true;
}

}  // namespace

std::vector<int> gptq_dead_and_order(Eigen::MatrixXf& h, const GptqConfig& cfg, std::vector<int>* dead) {
  const int k = int(h.rows());
  for (int j = 0; j < k; ++j)
    if (h(j, j) == 0) {
      h(j, j) = 1;
      dead->push_back(j);
    }
  std::vector<int> perm(k);
  std::iota(perm.begin(), perm.end(), 0);
  if (cfg.act_order) std::stable_sort(perm.begin(), perm.end(), [&](int a, int b) { return h(a, a) > h(b, b); });
  return perm;
}

std::vector<Quantizer> gptq_prepare_w(Eigen::MatrixXf& w, const GptqConfig& cfg, const std::vector<int>& dead,
                                      const std::vector<int>& perm) {
  const int n = int(w.rows()), k = int(w.cols());
  const int g = cfg.group_size != -1 ? cfg.group_size : k;
  for (int j : dead) w.col(j).setZero();
  std::vector<Quantizer> groups;
  if (cfg.group_size != -1 && cfg.static_groups)
    for (int g0 = 0; g0 < k; g0 += g) {
      groups.emplace_back(cfg.bits, cfg.sym);
      groups.back().find_params(w.middleCols(g0, std::min(g, k - g0)));
    }
  if (cfg.act_order) {
    Eigen::MatrixXf wp(n, k);
    for (int p = 0; p < k; ++p) wp.col(p) = w.col(perm[p]);
    w.swap(wp);
  }
  return groups;
}

std::vector<int32_t> gptq_g_idx(const GptqConfig& cfg, const std::vector<int>& perm) {
  const int k = int(perm.size());
  std::vector<int32_t> g_idx(k, 0);
  if (cfg.group_size == -1) return g_idx;
  const int g = cfg.group_size;
  // act-order non-static: group = permuted position / G; otherwise j / G.
  for (int p = 0; p < k; ++p) g_idx[perm[p]] = (cfg.act_order && !cfg.static_groups) ? p / g : perm[p] / g;
  return g_idx;
}

bool gptq_quantize(const Eigen::MatrixXf& w, const Eigen::MatrixXf& h, const GptqConfig& cfg,
                   QuantizedWeight* out, std::string* err) {
  Eigen::MatrixXf wc = w, hc = h;
  return gptq_impl(wc, hc, cfg, out, err);
}

bool gptq_quantize_inplace(Eigen::MatrixXf& w, Eigen::MatrixXf& h, const GptqConfig& cfg,
                           QuantizedWeight* out, std::string* err) {
  return gptq_impl(w, h, cfg, out, err);
}

double output_error(const Eigen::MatrixXf& q, const Eigen::MatrixXf& w, const Eigen::MatrixXf& h) {
  const Eigen::MatrixXd dw = (q - w).cast<double>();
  return (dw * h.cast<double>() * dw.transpose()).trace();
}

}  // namespace qsweep::quant
