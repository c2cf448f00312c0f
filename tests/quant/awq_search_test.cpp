// AWQ clip and scale search against the golden values (SPECS.md A2.2, A2.3,
// A7): golden W with N = 64, K = 256; golden X with 1100 tokens, no dead column.
#include "quant/awq_search.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <string>

#include "tests/quant/golden.h"

namespace qsweep::quant {
namespace {

using testing::golden;

constexpr int kN = 64, kK = 256, kT = 1100;

TEST(AwqSearch, ScalesForRatioNormalised) {
  Eigen::VectorXf xm(3), wm(3);
  xm << 4.0f, 1.0f, 0.25f;
  wm << 1.0f, 1.0f, 1.0f;
  const Eigen::VectorXf s = awq_scales_for_ratio(xm, wm, 0.5, false);
  EXPECT_FLOAT_EQ(s.maxCoeff() * s.minCoeff(), 1.0f);
  EXPECT_FLOAT_EQ(s(1), 1.0f);
}

TEST(AwqSearch, GoldenClip) {
  std::string path;
  const nlohmann::json& g = golden(&path);
  if (g.is_null()) GTEST_SKIP() << "golden file absent: " << path;
  const auto& c = g["awq_clip"];
  const Eigen::MatrixXf w = testing::golden_w(kN, kK);
  const Eigen::MatrixXf x = testing::golden_x(kT, kK, -1);
  const AwqClipResult r = awq_compute_best_clip(w, x, 4, 128);
  EXPECT_EQ(r.tokens_used, c["tokens_used"].get<int>());
  ASSERT_EQ(r.best_max.cols(), 2);
  int exact = 0;
  for (int row = 0; row < 4; ++row)
    for (int gi = 0; gi < 2; ++gi) {
      const float want = c["best_max_val_rows0_3"][row][gi].get<float>();
      exact += r.best_max(row, gi) == want;
      EXPECT_NEAR(r.best_max(row, gi), want, 1e-6f * want) << row << "," << gi;
    }
  static const char* kKey[10] = {"1.0",  "0.95", "0.9",  "0.85", "0.8",
                                 "0.75", "0.7",  "0.65", "0.6",  "0.55"};
  std::map<std::string, int> hist;
  for (int row = 0; row < kN; ++row)
    for (int gi = 0; gi < 2; ++gi) ++hist[kKey[r.best_step(row, gi)]];
  std::string got;
  for (const auto& [k, v] : hist) got += k + ":" + std::to_string(v) + " ";
  std::printf("[awq_clip] best max rows 0-3 bit-exact %d/8; histogram %s\n", exact, got.c_str());
  for (const auto& [k, v] : c["shrink_ratio_histogram"].items())
    EXPECT_EQ(hist[k], v.get<int>()) << "ratio " << k;
  int total = 0;
  for (const auto& [k, v] : hist) total += v;
  EXPECT_EQ(total, kN * 2);

  Eigen::MatrixXf wc = w;
  awq_apply_clip(&wc, r.best_max, 128);
  EXPECT_FLOAT_EQ(wc.row(0).segment(0, 128).cwiseAbs().maxCoeff(), r.best_max(0, 0));
}

void check_scale(const char* key, bool duo) {
  std::string path;
  const nlohmann::json& g = golden(&path);
  if (g.is_null()) GTEST_SKIP() << "golden file absent: " << path;
  const auto& c = g[key];
  const Eigen::MatrixXf w = testing::golden_w(kN, kK);
  const Eigen::MatrixXf x = testing::golden_x(kT, kK, -1);
  const AwqScaleResult r = awq_search_scale_linear(w, x, 4, 128, duo);
  EXPECT_FLOAT_EQ(r.best_ratio, c["best_ratio"].get<float>());
  const double want_loss = c["best_loss"].get<double>();
  EXPECT_NEAR(r.best_loss, want_loss, 1e-4 * want_loss);
  double max_rel_hist = 0.0;
  for (int i = 0; i < 20; ++i) {
    const double want = c["loss_history"][i].get<double>();
    max_rel_hist = std::max(max_rel_hist, std::fabs(r.loss_history[size_t(i)] - want) / want);
  }
  EXPECT_LT(max_rel_hist, 1e-3);
  float max_rel_s = 0.0f;
  int s_exact = 0;
  for (int j = 0; j < 8; ++j) {
    const float want = c["best_scales_first8"][j].get<float>();
    s_exact += r.best_scales(j) == want;
    max_rel_s = std::max(max_rel_s, std::fabs(r.best_scales(j) - want) / want);
  }
  const float want37 = c["best_scales_ch37"].get<float>();
  s_exact += r.best_scales(37) == want37;
  max_rel_s = std::max(max_rel_s, std::fabs(r.best_scales(37) - want37) / want37);
  EXPECT_LT(max_rel_s, 1e-5f);
  int m_exact = 0;
  float max_rel_m = 0.0f;
  for (int j = 0; j < 4; ++j) {
    const float wx = c["x_mean_first4"][j].get<float>(), ww = c["w_mean_first4"][j].get<float>();
    m_exact += (r.x_mean(j) == wx) + (r.w_mean(j) == ww);
    max_rel_m =
        std::max({max_rel_m, std::fabs(r.x_mean(j) - wx) / wx, std::fabs(r.w_mean(j) - ww) / ww});
  }
  EXPECT_LT(max_rel_m, 1e-6f);
  std::printf(
      "[%s] best ratio %.2f (golden %.2f) loss %.10g (golden %.10g) loss history max rel %.2e; "
      "scales first8+ch37 bit-exact %d/9 max rel %.2e; x_mean/w_mean first4 bit-exact %d/8 max rel "
      "%.2e\n",
      key, r.best_ratio, c["best_ratio"].get<double>(), r.best_loss, want_loss, max_rel_hist,
      s_exact, max_rel_s, m_exact, max_rel_m);
}

TEST(AwqSearch, GoldenScaleSearchDuoTrue) { check_scale("awq_scale_search_duoTrue", true); }
TEST(AwqSearch, GoldenScaleSearchDuoFalse) { check_scale("awq_scale_search_duoFalse", false); }

}  // namespace
}  // namespace qsweep::quant
