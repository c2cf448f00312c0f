#include "quant/smoothquant.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "quant/quantizer.h"

namespace qsweep::quant {
namespace {

Eigen::VectorXf weight_absmax(const std::vector<const Eigen::MatrixXf*>& fcs) {
  Eigen::VectorXf m = Eigen::VectorXf::Zero(fcs.front()->cols());
  for (const Eigen::MatrixXf* w : fcs)
    m = m.cwiseMax(w->cwiseAbs().colwise().maxCoeff().transpose());
  return m;
}

}  // namespace

Eigen::VectorXf act_absmax(const Eigen::MatrixXf& x) {
  return x.cwiseAbs().colwise().maxCoeff().transpose();
}
Eigen::VectorXf act_min(const Eigen::MatrixXf& x) { return x.colwise().minCoeff().transpose(); }
Eigen::VectorXf act_max(const Eigen::MatrixXf& x) { return x.colwise().maxCoeff().transpose(); }

Eigen::VectorXf smoothquant_scales_original(const Eigen::VectorXf& absmax,
                                            const std::vector<const Eigen::MatrixXf*>& fcs,
                                            float alpha) {
  const Eigen::VectorXf wmax = weight_absmax(fcs).cwiseMax(1e-5f);
  Eigen::VectorXf s(absmax.size());
  for (int j = 0; j < s.size(); ++j)
    s(j) =
        std::max(pow_like_torch(absmax(j), alpha) / pow_like_torch(wmax(j), 1.0f - alpha), 1e-5f);
  return s;
}

Eigen::VectorXf smoothquant_scales_llmcompressor(const Eigen::VectorXf& amin,
                                                 const Eigen::VectorXf& amax,
                                                 const std::vector<const Eigen::MatrixXf*>& fcs,
                                                 float alpha) {
  const Eigen::VectorXf wscale = 2.0f * weight_absmax(fcs);
  Eigen::VectorXf s(amin.size());
  for (int j = 0; j < s.size(); ++j) {
    const float a = amax(j) - amin(j);
    float v = pow_like_torch(a, alpha) / pow_like_torch(wscale(j), 1.0f - alpha);
    if (!(wscale(j) > 0.0f)) v = a;
    s(j) = std::max(v, 1e-5f);
  }
  return s;
}

Int8Weight int8_per_channel_smoothquant(const Eigen::MatrixXf& w) {
  Int8Weight out;
  out.scale = (w.cwiseAbs().rowwise().maxCoeff().cwiseMax(1e-5f) / 127.0f).eval();
  out.codes.resize(w.rows(), w.cols());
  out.q.resize(w.rows(), w.cols());
  for (int r = 0; r < w.rows(); ++r)
    for (int j = 0; j < w.cols(); ++j) {
      const float c = rne(w(r, j) / out.scale(r));
      out.codes(r, j) = int(c);
      out.q(r, j) = c * out.scale(r);
    }
  return out;
}

Int8Weight int8_per_channel_ct(const Eigen::MatrixXf& w) {
  Int8Weight out;
  out.scale.resize(w.rows());
  out.codes.resize(w.rows(), w.cols());
  out.q.resize(w.rows(), w.cols());
  const float eps = std::numeric_limits<float>::epsilon();
  for (int r = 0; r < w.rows(); ++r) {
    const float mn = std::min(w.row(r).minCoeff(), 0.0f), mx = std::max(w.row(r).maxCoeff(), 0.0f);
    const float scale = std::max(std::max(-mn, mx) / (255.0f / 2.0f), eps);
    out.scale(r) = scale;
    for (int j = 0; j < w.cols(); ++j) {
      const float c = rne(std::clamp(w(r, j) / scale, -128.0f, 127.0f));
      out.codes(r, j) = int(c);
      out.q(r, j) = c * scale;
    }
  }
  return out;
}

}  // namespace qsweep::quant
