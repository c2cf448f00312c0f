// AutoGPTQ v1 tensors (SPECS.md A1.5, A5.1): packed round trip and decode.
// Whole-model writing and loading: quantize_model_test.cpp.
#include "quant/gptq_checkpoint.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>

#include "model/checkpoint/checkpoint.h"
#include "model/dtype.h"
#include "tests/testutil.h"

namespace qsweep::quant {
namespace {

Eigen::MatrixXf random_matrix(int n, int k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 0.05f);
  Eigen::MatrixXf w(n, k);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < k; ++j) w(i, j) = d(rng);
  return w;
}

/// rtn_quantize's q with the scales rounded to fp16 as stored: what the v1
/// decode must give bit for bit.
Eigen::MatrixXf expected_dequant(const QuantizedWeight& qw) {
  Eigen::MatrixXf w(qw.q.rows(), qw.q.cols());
  for (int j = 0; j < qw.q.cols(); ++j) {
    const int g = qw.g_idx[j];
    for (int c = 0; c < qw.q.rows(); ++c) {
      const float s = model::f16_to_f32(model::f32_to_f16(qw.scale(c, g)));
      w(c, j) = s * (float(qw.codes(c, j)) - qw.zero(c, g));
    }
  }
  return w;
}

struct RoundTripCase {
  int bits, group;
  bool sym;
};

TEST(GptqPacked, RoundTripEqualsQuantizerOutput) {
  const RoundTripCase cases[] = {{8, -1, true}, {4, 32, true},  {4, 128, true},
                                 {8, 64, true}, {4, 32, false}, {8, -1, false}};
  for (const auto& c : cases) {
    const Eigen::MatrixXf w = random_matrix(48, 256, 7 + c.bits + c.group);
    const QuantizedWeight qw = rtn_quantize(w, c.bits, c.sym, c.group);
    GptqPacked pk;
    std::string err;
    ASSERT_TRUE(pack_gptq(qw, &pk, &err)) << err;
    // codes unpack exactly
    const int per = 32 / c.bits;
    for (int j = 0; j < 256; ++j)
      for (int n = 0; n < 48; ++n)
        ASSERT_EQ(int((pk.qweight[size_t(j / per) * 48 + n] >> (c.bits * (j % per))) &
                      ((1u << c.bits) - 1)),
                  qw.codes(n, j));
    const Eigen::MatrixXf got = dequantize_gptq(pk);
    const Eigen::MatrixXf want = expected_dequant(qw);
    EXPECT_EQ((got.array() != want.array()).count(), 0)
        << "bits " << c.bits << " group " << c.group << " sym " << c.sym;
    // and within half an fp16 rounding of the scale of the quantizer's q
    EXPECT_LE((got - qw.q).cwiseAbs().maxCoeff(), 1e-3f * w.cwiseAbs().maxCoeff());
  }
}

TEST(GptqCheckpoint, QuantizedLinearWeightNames) {
  EXPECT_FALSE(is_quantized_linear_weight("model.embed_tokens.weight"));
  EXPECT_FALSE(is_quantized_linear_weight("lm_head.weight"));
  EXPECT_FALSE(is_quantized_linear_weight("model.layers.0.input_layernorm.weight"));
  std::string p;
  EXPECT_TRUE(is_quantized_linear_weight("model.layers.12.mlp.down_proj.weight", &p));
  EXPECT_EQ(p, "model.layers.12.mlp.down_proj");
}

}  // namespace
}  // namespace qsweep::quant
