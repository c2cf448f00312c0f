// Kernels against plain reference loops: linear, RMSNorm, RoPE, KV cache,
// sampler, and lm-eval's rolling windows.

#include <gtest/gtest.h>
#include <tbb/task_arena.h>

#include <cmath>
#include <random>

#include "model/engine/kv_cache.h"
#include "model/engine/linear.h"
#include "model/engine/norm.h"
#include "model/engine/rolling.h"
#include "model/engine/rope.h"
#include "model/engine/sampler.h"

namespace qsweep::model {
namespace {

std::vector<float> randn(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd;
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

TEST(DenseLinear, MatchesTheReferenceLoopForGemmAndGemv) {
  for (int threads : {1, 2}) {
    tbb::task_arena arena(threads);
    for (auto [n, out, in] : {std::tuple{1, 300, 70}, {7, 33, 16}, {130, 257, 64}, {1, 5, 3}}) {
      const std::vector<float> wv = randn(size_t(out) * in, 1);
      auto w = std::make_shared<AlignedVec>(wv.begin(), wv.end());
      std::vector<float> b = randn(out, 2), x = randn(size_t(n) * in, 3), y(size_t(n) * out);
      DenseLinear lin(w, out, in, b);
      arena.execute([&] { lin.forward(x.data(), y.data(), n); });
      float worst = 0;
      for (int r = 0; r < n; ++r)
        for (int c = 0; c < out; ++c) {
          double acc = b[c];
          for (int k = 0; k < in; ++k)
            acc += double(x[size_t(r) * in + k]) * (*w)[size_t(c) * in + k];
          worst = std::max(worst, float(std::abs(acc - y[size_t(r) * out + c])));
        }
      EXPECT_LE(worst, 1e-4f) << n << "x" << out << "x" << in << " threads " << threads;
    }
  }
}

TEST(RmsNorm, PlainAndGemmaPlusOne) {
  const float x[4] = {1, 2, 3, 4}, w[4] = {1, 0.5f, 2, 0};
  float y[4];
  const float inv = 1.0f / std::sqrt((1 + 4 + 9 + 16) / 4.0f + 1e-5f);
  rms_norm(x, y, 1, 4, w, 1e-5f, false);
  EXPECT_FLOAT_EQ(y[1], 2 * inv * 0.5f);
  EXPECT_FLOAT_EQ(y[3], 0.0f);
  rms_norm(x, y, 1, 4, w, 1e-5f, true);
  EXPECT_FLOAT_EQ(y[1], 2 * inv * 1.5f);
  EXPECT_FLOAT_EQ(y[3], 4 * inv);
}

TEST(Rope, RotatesHalvesAndKeepsNorm) {
  RopeConfig cfg;
  Rope rope(cfg, 4);  // inv_freq = {1, 0.01}
  EXPECT_FLOAT_EQ(rope.inv_freq()[1], 0.01f);
  float x[4] = {1, 0, 0, 0};  // pairs (0, 2) and (1, 3)
  const int pos = 2;
  rope.apply(x, 1, 1, &pos);
  EXPECT_NEAR(x[0], std::cos(2.0f), 1e-6);
  EXPECT_NEAR(x[2], std::sin(2.0f), 1e-6);
  EXPECT_EQ(x[1], 0.0f);
  const int zero = 0;
  float y[4] = {1, 2, 3, 4};
  rope.apply(y, 1, 1, &zero);
  EXPECT_EQ(y[3], 4.0f);  // position 0 is the identity
}

TEST(Rope, Llama3ScalingKeepsHighAndScalesLowFrequencies) {
  RopeConfig cfg;
  cfg.type = RopeType::kLlama3;
  cfg.theta = 500000;
  cfg.factor = 8;
  cfg.low_freq_factor = 1;
  cfg.high_freq_factor = 4;
  cfg.original_max_position = 8192;
  Rope scaled(cfg, 128);
  cfg.type = RopeType::kDefault;
  Rope plain(cfg, 128);
  EXPECT_EQ(scaled.inv_freq()[0], plain.inv_freq()[0]);              // wavelength 2*pi: kept
  EXPECT_FLOAT_EQ(scaled.inv_freq()[63], plain.inv_freq()[63] / 8);  // longest: / factor
  // Medium band: strictly between the two.
  int medium = 0;
  for (int i = 0; i < 64; ++i) {
    const float p = plain.inv_freq()[i], s = scaled.inv_freq()[i];
    if (s < p && s > p / 8 * 1.0001f) ++medium;
  }
  EXPECT_GT(medium, 0);
}

TEST(KvCache, ForkCopiesValidRowsOnly) {
  KvCache c(2, 3);
  c.reserve(4);
  for (int l = 0; l < 2; ++l)
    for (int i = 0; i < 12; ++i) c.k(l)[i] = c.v(l)[i] = float(100 * l + i);
  c.set_len(2);
  KvCache f = c.fork(5);
  EXPECT_EQ(f.len(), 2);
  EXPECT_EQ(f.k(1)[5], 105.0f);
  f.reserve(7);
  f.k(0)[6] = -1;
  EXPECT_EQ(c.k(0)[6], 6.0f);  // independent storage
}

TEST(Sampler, GreedyTopPAndSeeds) {
  const float lg[5] = {0.5f, 2.0f, 2.0f, -1.0f, 1.9f};
  EXPECT_EQ(argmax(lg, 5), 1);  // first maximum, as torch.argmax
  Sampler greedy(0, 1, 0);
  EXPECT_EQ(greedy.sample(lg, 5), 1);
  Sampler tiny_p(1.0f, 1e-6f, 3);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(tiny_p.sample(lg, 5), 1);  // nucleus of one token
  Sampler a(1.0f, 1.0f, 42), b(1.0f, 1.0f, 42);
  std::vector<int> sa, sb;
  int counts[5] = {};
  for (int i = 0; i < 2000; ++i) {
    sa.push_back(a.sample(lg, 5));
    sb.push_back(b.sample(lg, 5));
    ++counts[sa.back()];
  }
  EXPECT_EQ(sa, sb);
  // p(3) = e^-1 / sum ~ 0.02; p(1) ~ 0.33
  EXPECT_GT(counts[1], 500);
  EXPECT_LT(counts[3], 100);
}

TEST(RollingWindows, MatchLmEvalGold) {
  // lm-eval's test_get_rolling_token_windows_v1 (max_seq_len 10, context_len 1).
  std::vector<int> x(34);
  for (int i = 0; i < 34; ++i) x[i] = i;
  const auto w = rolling_windows(x, -100, 10);
  ASSERT_EQ(w.size(), 4u);
  EXPECT_EQ(w[0].input, (std::vector<int>{-100, 0, 1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(w[0].predicted, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(w[1].input, (std::vector<int>{9, 10, 11, 12, 13, 14, 15, 16, 17, 18}));
  EXPECT_EQ(w[2].predicted, (std::vector<int>{20, 21, 22, 23, 24, 25, 26, 27, 28, 29}));
  EXPECT_EQ(w[3].input, (std::vector<int>{23, 24, 25, 26, 27, 28, 29, 30, 31, 32}));
  EXPECT_EQ(w[3].predicted, (std::vector<int>{30, 31, 32, 33}));
  std::vector<int> ctx, cont;
  disjoint_window(w[3], &ctx, &cont);
  EXPECT_EQ(ctx, (std::vector<int>{23, 24, 25, 26, 27, 28, 29}));
  EXPECT_EQ(cont, (std::vector<int>{30, 31, 32, 33}));
  // With more context per window, every token is still predicted once.
  const auto w2 = rolling_windows(x, -100, 10, 4);
  size_t total = 0;
  for (const auto& win : w2) {
    total += win.predicted.size();
    EXPECT_LE(win.input.size(), 10u);
  }
  EXPECT_EQ(total, x.size());
  EXPECT_TRUE(rolling_windows({}, 1, 10).empty());
}

}  // namespace
}  // namespace qsweep::model
