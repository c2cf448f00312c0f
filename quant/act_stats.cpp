#include "quant/act_stats.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace qsweep::quant {

float ActStats::fp8_input_scale() const {
  return std::max(std::fabs(ema_min), std::fabs(ema_max)) / 448.0f;
}

ActStatsAccumulator::ActStatsAccumulator(int k)
    : k_(k),
      absmax_(Eigen::VectorXf::Zero(k)),
      min_(Eigen::VectorXf::Constant(k, std::numeric_limits<float>::infinity())),
      max_(Eigen::VectorXf::Constant(k, -std::numeric_limits<float>::infinity())),
      abssum_(Eigen::VectorXd::Zero(k)) {}

void ActStatsAccumulator::add_sample(const float* x, int rows) {
  float smin = std::numeric_limits<float>::infinity(), smax = -smin;
  for (int r = 0; r < rows; ++r) {
    const float* row = x + size_t(r) * k_;
    for (int j = 0; j < k_; ++j) {
      const float v = row[j];
      absmax_(j) = std::max(absmax_(j), std::fabs(v));
      min_(j) = std::min(min_(j), v);
      max_(j) = std::max(max_(j), v);
      abssum_(j) += std::fabs(double(v));
      smin = std::min(smin, v);
      smax = std::max(smax, v);
    }
  }
  add_extremes(rows, smin, smax);
}

void ActStatsAccumulator::add_extremes(int rows, float smin, float smax) {
  if (rows == 0) return;
  // The observer takes the batch's min/max, then the EMA; the qparams widen
  // the range to include 0, which max(|min|, |max|) does not need.
  if (samples_ == 0) {
    ema_min_ = smin;
    ema_max_ = smax;
  } else {
    ema_min_ += 0.01 * (double(smin) - ema_min_);
    ema_max_ += 0.01 * (double(smax) - ema_max_);
  }
  tokens_ += rows;
  ++samples_;
}

void ActStatsAccumulator::merge(const float* absmax, const float* min, const float* max, const double* abssum,
                                const std::vector<int>& sample_rows, const std::vector<float>& sample_min,
                                const std::vector<float>& sample_max) {
  for (int j = 0; j < k_; ++j) {
    absmax_(j) = std::max(absmax_(j), absmax[j]);
    min_(j) = std::min(min_(j), min[j]);
    max_(j) = std::max(max_(j), max[j]);
    abssum_(j) += abssum[j];
  }
  for (size_t s = 0; s < sample_rows.size(); ++s) add_extremes(sample_rows[s], sample_min[s], sample_max[s]);
}

ActStats ActStatsAccumulator::finish() const {
  ActStats s;
  s.absmax = absmax_;
  s.min = min_;
  s.max = max_;
  s.absmean = (tokens_ > 0 ? abssum_ / double(tokens_) : abssum_).cast<float>();
  s.ema_min = float(ema_min_);
  s.ema_max = float(ema_max_);
  s.tokens = tokens_;
  s.samples = samples_;
  return s;
}

}  // namespace qsweep::quant
