#pragma once
// Per-channel statistics of a Linear's input activations over a calibration
// set, as the methods need them:
//   absmax  max |x| per channel        SmoothQuant original (SPECS.md A3.1)
//   min/max per channel                SmoothQuant llm-compressor (A3.2)
//   absmean mean |x| per channel       AWQ x_mean (A2.2), for inspection
//   ema_min/ema_max per tensor         FP8 static input scale: compressed-
//                                      tensors MovingAverageMinMax observer,
//                                      one batch per calibration sequence,
//                                      r += 0.01 * (new - r) after the first (A1.6 item 4)
// Accumulated in double where it sums, stored float.

#include <Eigen/Dense>
#include <vector>
#include <cstdint>

namespace qsweep::quant {

struct ActStats {
  Eigen::VectorXf absmax, min, max, absmean;  ///< [K]
  float ema_min = 0, ema_max = 0;
  int64_t tokens = 0;
  int64_t samples = 0;
  /// FP8 static input scale max(|ema_min|, |ema_max|) / 448.
  float fp8_input_scale() const;
};

class ActStatsAccumulator {
 public:
  explicit ActStatsAccumulator(int k);
  /// One calibration sample (sequence): x [rows, K] row-major.
  void add_sample(const float* x, int rows);
  ActStats finish() const;
  int k() const { return k_; }
  /// The same as add_sample() over samples whose per-channel reductions were
  /// made elsewhere (a GPU): absmax, min, max [K] over all their rows,
  /// abssum [K] (Σ |x| in double), and per sample in order its rows and
  /// min / max over all its values.
  void merge(const float* absmax, const float* min, const float* max, const double* abssum,
             const std::vector<int>& sample_rows, const std::vector<float>& sample_min,
             const std::vector<float>& sample_max);

 private:
  void add_extremes(int rows, float smin, float smax);  // one sample's EMA step and counts
  int k_;
  Eigen::VectorXf absmax_, min_, max_;
  Eigen::VectorXd abssum_;
  double ema_min_ = 0, ema_max_ = 0;
  int64_t tokens_ = 0, samples_ = 0;
};

}  // namespace qsweep::quant
