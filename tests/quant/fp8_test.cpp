// FP8 E4M3FN casts (SPECS.md A4.1): golden table, exhaustive round trip.
#include "quant/fp8.h"

#include <gtest/gtest.h>

#include <cmath>

#include "tests/quant/golden.h"

namespace qsweep::quant {
namespace {

TEST(Fp8, GoldenCastTable) {
  std::string path;
  const nlohmann::json& g = testing::golden(&path);
  if (g.is_null()) GTEST_SKIP() << "golden file absent: " << path;
  for (const auto& row : g["fp8_e4m3fn_cast_torch"]) {
    const float x = testing::as_float(row["x"]);
    EXPECT_EQ(int(f32_to_e4m3fn_nonsat(x)), row["bits"].get<int>()) << "x " << x;
    EXPECT_EQ(int(f32_to_e4m3fn(x)), row["bits_after_clamp448"].get<int>()) << "x " << x;
    const float back = e4m3fn_to_f32(f32_to_e4m3fn_nonsat(x));
    if (row["decoded"].is_null())
      EXPECT_TRUE(std::isnan(back)) << "x " << x;
    else
      EXPECT_EQ(back, row["decoded"].get<float>()) << "x " << x;
  }
}

TEST(Fp8, SpecBoundaries) {
  EXPECT_EQ(f32_to_e4m3fn(464.0f), 0x7E);
  EXPECT_EQ(f32_to_e4m3fn_nonsat(464.0f), 0x7E);
  EXPECT_EQ(f32_to_e4m3fn_nonsat(464.1f), 0x7F);
  EXPECT_EQ(f32_to_e4m3fn(464.1f), 0x7E);
  EXPECT_EQ(f32_to_e4m3fn(1e30f), 0x7E);
  EXPECT_EQ(f32_to_e4m3fn(-INFINITY), 0xFE);
  EXPECT_EQ(f32_to_e4m3fn(INFINITY), 0x7E);
  EXPECT_EQ(f32_to_e4m3fn(NAN) & 0x7F, 0x7F);
  EXPECT_EQ(f32_to_e4m3fn(-0.0f), 0x80);
  EXPECT_EQ(e4m3fn_to_f32(0x7E), 448.0f);
  EXPECT_EQ(e4m3fn_to_f32(0x08), 0.015625f);
  EXPECT_EQ(e4m3fn_to_f32(0x01), 0.001953125f);
  EXPECT_EQ(f32_to_e4m3fn(0.0009765625f), 0x00);  // half the smallest subnormal ties to 0
  EXPECT_EQ(f32_to_e4m3fn(0.0029296875f), 0x02);  // 1.5 subnormal steps ties to 2
  EXPECT_EQ(f32_to_e4m3fn(1.0625f), 56);
  EXPECT_EQ(f32_to_e4m3fn(1.1875f), 58);
}

TEST(Fp8, ExhaustiveAllCodes) {
  int nan_codes = 0;
  for (int b = 0; b < 256; ++b) {
    const float v = e4m3fn_to_f32(uint8_t(b));
    if (std::isnan(v)) {
      ++nan_codes;
      EXPECT_EQ(b & 0x7F, 0x7F);
      continue;
    }
    EXPECT_LE(std::fabs(v), 448.0f);
    // Every finite code round-trips (0x80 is -0).
    EXPECT_EQ(int(f32_to_e4m3fn(v)), b) << "code " << b;
    EXPECT_EQ(int(f32_to_e4m3fn_nonsat(v)), b) << "code " << b;
    // Midpoints to the next code up tie to the even mantissa; just above
    // rounds up.
    const int mag = b & 0x7F;
    if (mag < 0x7E) {
      const float next = e4m3fn_to_f32(uint8_t(b + 1));
      const float mid = (v + next) / 2;  // exact in float32
      const int even = (mag & 1) == 0 ? b : b + 1;
      EXPECT_EQ(int(f32_to_e4m3fn(mid)), even) << "midpoint above code " << b;
      EXPECT_EQ(int(f32_to_e4m3fn(std::nextafter(mid, 2 * next))), b + 1) << "code " << b;
      EXPECT_EQ(int(f32_to_e4m3fn(std::nextafter(mid, 0.0f))), b) << "code " << b;
    }
  }
  EXPECT_EQ(nan_codes, 2);
}

TEST(Fp8, GoldenPerTensorWeight) {
  std::string path;
  const nlohmann::json& g = testing::golden(&path);
  if (g.is_null()) GTEST_SKIP() << "golden file absent: " << path;
  const Eigen::MatrixXf w = testing::golden_w(64, 256);
  const float scale = w.cwiseAbs().maxCoeff() / 448.0f;
  EXPECT_EQ(testing::float_hex(scale), g["fp8_per_tensor_weight"]["scale_hex"].get<std::string>());
  double num = 0, den = 0;
  for (int r = 0; r < w.rows(); ++r)
    for (int k = 0; k < w.cols(); ++k) {
      const uint8_t b = f32_to_e4m3fn(w(r, k) / scale);
      if (r == 0 && k < 8) {
        EXPECT_EQ(int(b), g["fp8_per_tensor_weight"]["bits_row0_first8"][k].get<int>()) << k;
      }
      const double d = double(e4m3fn_to_f32(b)) * scale - w(r, k);
      num += d * d;
      den += double(w(r, k)) * w(r, k);
    }
  EXPECT_NEAR(std::sqrt(num / den), g["fp8_per_tensor_weight"]["rel_fro_err"].get<double>(), 1e-4);
}

}  // namespace
}  // namespace qsweep::quant
