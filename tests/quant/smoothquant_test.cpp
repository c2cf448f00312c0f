// SmoothQuant smoothing factors and INT8 per-channel weights against the
// golden values (SPECS.md A3, A1.6 item 2, A7): golden X with 1100 tokens;
// balance Linears: the golden W with N = 64, K = 256, and a second Linear the
// golden file does not describe. Only channel 1 of the 9 recorded depends on
// it: the golden ch1 implies max |W[:,1]| = 124/1024, which the N = 64 W
// (123/1024) lacks but formula rows 64-65 have; every union of formula rows
// [0, n) with 66 <= n <= 82 reproduces all 9 channels. So ch1 is checked with
// a second Linear of the formula's first 66 rows (inferred, not documented),
// all others with W (N = 64) alone and with both.
#include "quant/smoothquant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "tests/quant/golden.h"

namespace qsweep::quant {
namespace {

using testing::golden;

constexpr int kN = 64, kK = 256, kT = 1100;

TEST(SmoothQuant, GoldenScales) {
  std::string path;
  const nlohmann::json& g = golden(&path);
  if (g.is_null()) GTEST_SKIP() << "golden file absent: " << path;
  const Eigen::MatrixXf w = testing::golden_w(kN, kK);
  const Eigen::MatrixXf x = testing::golden_x(kT, kK, -1);
  const Eigen::MatrixXf w2 = testing::golden_w(66, kK);
  const Eigen::VectorXf absmax = act_absmax(x), mn = act_min(x), mx = act_max(x);
  for (const char* a : {"0.5", "0.8", "0.85"}) {
    const auto& c = g["smoothquant_scales"][a];
    const float alpha = std::stof(a);
    const Eigen::VectorXf so = smoothquant_scales_original(absmax, {&w, &w2}, alpha);
    const Eigen::VectorXf sl = smoothquant_scales_llmcompressor(mn, mx, {&w, &w2}, alpha);
    const Eigen::VectorXf so1 = smoothquant_scales_original(absmax, {&w}, alpha);
    const Eigen::VectorXf sl1 = smoothquant_scales_llmcompressor(mn, mx, {&w}, alpha);
    for (int j : {0, 2, 3, 4, 5, 6, 7, 37}) {
      EXPECT_EQ(so1(j), so(j)) << j;
      EXPECT_EQ(sl1(j), sl(j)) << j;
    }
    int exact = 0;
    float max_rel = 0.0f;
    auto cmp = [&](float got, float want, const char* what, int j) {
      exact += got == want;
      max_rel = std::max(max_rel, std::fabs(got - want) / want);
      EXPECT_NEAR(got, want, 2e-6f * want) << what << " alpha " << a << " ch " << j;
    };
    for (int j = 0; j < 8; ++j) {
      cmp(so(j), c["mit_first8"][j].get<float>(), "original", j);
      cmp(sl(j), c["llmcompressor_first8"][j].get<float>(), "llm-compressor", j);
    }
    cmp(so(37), c["mit_ch37"].get<float>(), "original", 37);
    cmp(sl(37), c["llmcompressor_ch37"].get<float>(), "llm-compressor", 37);
    std::printf(
        "[smoothquant alpha %s] ch0 original %.7g llm-compressor %.7g; first8+ch37 bit-exact %d/18 "
        "max rel %.2e\n",
        a, so(0), sl(0), exact, max_rel);
  }
}

TEST(SmoothQuant, GoldenInt8PerChannelWeight) {
  std::string path;
  const nlohmann::json& g = golden(&path);
  if (g.is_null()) GTEST_SKIP() << "golden file absent: " << path;
  const auto& c = g["int8_weight_per_channel"];
  const Eigen::MatrixXf w = testing::golden_w(kN, kK);
  const Int8Weight sq = int8_per_channel_smoothquant(w);
  const Int8Weight ct = int8_per_channel_ct(w);
  EXPECT_EQ(sq.scale(0), c["smoothquant_scale_row0"].get<float>());
  EXPECT_EQ(ct.scale(0), c["ct_scale_row0"].get<float>());
  for (int j = 0; j < 8; ++j) {
    EXPECT_EQ(sq.codes(0, j), c["smoothquant_q_row0_first8"][j].get<int>()) << j;
    EXPECT_EQ(ct.codes(0, j), c["ct_q_row0_first8"][j].get<int>()) << j;
  }
  EXPECT_EQ(sq.codes.minCoeff(), c["sq_q_min"].get<int>());
  EXPECT_EQ(sq.codes.maxCoeff(), c["sq_q_max"].get<int>());
  EXPECT_EQ(ct.codes.minCoeff(), c["ct_q_min"].get<int>());
  EXPECT_EQ(ct.codes.maxCoeff(), c["ct_q_max"].get<int>());
  std::printf("[int8_weight_per_channel] scales row0 %s / %s\n",
              testing::float_hex(sq.scale(0)).c_str(), testing::float_hex(ct.scale(0)).c_str());
}

}  // namespace
}  // namespace qsweep::quant
