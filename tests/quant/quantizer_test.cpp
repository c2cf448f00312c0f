// Quantizer (SPECS.md A1.4): params, quirks, round-half-to-even.
#include "quant/quantizer.h"

#include <gtest/gtest.h>

namespace qsweep::quant {
namespace {

TEST(Quantizer, SymFourBit) {
  Eigen::MatrixXf x(1, 4);
  x << -0.75f, 0.1f, 0.5f, 0.3f;
  Quantizer q(4, true);
  q.find_params(x);
  EXPECT_FLOAT_EQ(q.scale()[0], 1.5f / 15);
  EXPECT_EQ(q.zero()[0], 8.0f);
  Eigen::VectorXf out(1);
  Eigen::VectorXi code(1);
  q.quantize(Eigen::VectorXf::Constant(1, -0.75f), out, code);
  EXPECT_EQ(code[0], 0);  // -8 reachable for the most negative value
}

TEST(Quantizer, SymAllNonNegativeQuirk) {
  Eigen::MatrixXf x(1, 3);
  x << 0.0f, 0.5f, 1.5f;
  Quantizer q(4, true);
  q.find_params(x);
  EXPECT_FLOAT_EQ(q.scale()[0], 1.5f / 15);  // xmin stays 0
  EXPECT_EQ(q.zero()[0], 8.0f);
  Eigen::VectorXf out(1);
  Eigen::VectorXi code(1);
  q.quantize(Eigen::VectorXf::Constant(1, 1.5f), out, code);
  EXPECT_EQ(code[0], 15);  // clips at 7 steps above zero
  EXPECT_FLOAT_EQ(out[0], 0.7f);
}

TEST(Quantizer, AllZeroRowAndAsymZero) {
  Eigen::MatrixXf x = Eigen::MatrixXf::Zero(1, 4);
  Quantizer q(4, false);
  q.find_params(x);
  EXPECT_FLOAT_EQ(q.scale()[0], 2.0f / 15);
  EXPECT_EQ(q.zero()[0], std::nearbyint(1.0f / (2.0f / 15)));
  Eigen::MatrixXf y(1, 2);
  y << 0.25f, 1.0f;  // asym, all positive: xmin = 0 -> zero 0
  q.find_params(y);
  EXPECT_EQ(q.zero()[0], 0.0f);
}

TEST(Quantizer, RoundHalfToEven) {
  // Four rows, each with range [-7.5, 7.5]: sym scale = 15/15 = 1, zero 8.
  Eigen::MatrixXf x(4, 2);
  x.col(0).setConstant(-7.5f);
  x.col(1).setConstant(7.5f);
  Quantizer q(4, true);
  q.find_params(x);
  ASSERT_EQ(q.scale()[0], 1.0f);
  Eigen::VectorXf w(4), out(4);
  Eigen::VectorXi code(4);
  w << 0.5f, 1.5f, 2.5f, -0.5f;
  q.quantize(w, out, code);
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_EQ(out[1], 2.0f);
  EXPECT_EQ(out[2], 2.0f);
  EXPECT_EQ(out[3], 0.0f);
  EXPECT_EQ(code[2], 10);
}

TEST(Rtn, PerChannelAndGroupShapes) {
  Eigen::MatrixXf w = Eigen::MatrixXf::Random(4, 64);
  QuantizedWeight pc = rtn_quantize(w, 8, true, -1);
  EXPECT_EQ(pc.scale.cols(), 1);
  QuantizedWeight g = rtn_quantize(w, 4, false, 32);
  EXPECT_EQ(g.scale.cols(), 2);
  EXPECT_EQ(g.g_idx[31], 0);
  EXPECT_EQ(g.g_idx[32], 1);
  EXPECT_LT((pc.q - w).cwiseAbs().maxCoeff(), pc.scale.maxCoeff());
}

}  // namespace
}  // namespace qsweep::quant
