// AWQ pseudo-quantization and GEMM packing against the golden values
// (SPECS.md A2.4, A2.6, A7; N = 64 variant of the golden W).
#include "quant/awq.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>

#include "tests/quant/golden.h"

namespace qsweep::quant {
namespace {

using testing::golden;
using testing::hex32;

constexpr int kN = 64, kK = 256;

TEST(Awq, PackToyInterleave) {
  QuantizedWeight qw;
  qw.bits = 4;
  qw.codes.resize(8, 1);
  for (int n = 0; n < 8; ++n) qw.codes(n, 0) = n;
  qw.scale = Eigen::MatrixXf::Ones(8, 1);
  qw.zero = Eigen::MatrixXf::Zero(8, 1);
  AwqPacked p;
  std::string err;
  ASSERT_TRUE(pack_awq_gemm(qw, &p, &err)) << err;
  EXPECT_EQ(hex32(p.qweight[0]), "75316420");
}

TEST(Awq, GoldenRtnAsymG128AndGemmPacking) {
  std::string path;
  const nlohmann::json& g = golden(&path);
  if (g.is_null()) GTEST_SKIP() << "golden file absent: " << path;
  const auto& c = g["awq_rtn_asym_g128"];
  const Eigen::MatrixXf w = testing::golden_w(kN, kK);
  const QuantizedWeight qw = awq_pseudo_quantize(w, 4, 128);
  ASSERT_EQ(qw.scale.cols(), 2);
  int scale_exact = 0;
  for (int r = 0; r < 4; ++r)
    for (int gi = 0; gi < 2; ++gi) {
      const float want = c["scales_rows0_3"][r][gi].get<float>();
      scale_exact += qw.scale(r, gi) == want;
      EXPECT_NEAR(qw.scale(r, gi), want, 1e-6f * want) << r << "," << gi;
      EXPECT_EQ(qw.zero(r, gi), c["zeros_rows0_3"][r][gi].get<float>()) << r << "," << gi;
    }
  int64_t sum = 0, wsum = 0;
  for (int r = 0; r < kN; ++r)
    for (int k = 0; k < kK; ++k) {
      sum += qw.codes(r, k);
      wsum += int64_t(qw.codes(r, k)) * (((int64_t(r) * kK + k) % 1000003) + 1);
    }
  int hist_l1 = 0;
  for (int v = 0; v < 16; ++v)
    hist_l1 += std::abs(int((qw.codes.array() == v).count()) - c["q"]["hist"][v].get<int>());
  int row_same = 0;
  for (int k = 0; k < 16; ++k) {
    row_same += qw.codes(0, k) == c["q"]["row0_first16"][k].get<int>();
    row_same += qw.codes(1, k) == c["q"]["row1_first16"][k].get<int>();
  }
  std::printf(
      "[awq_rtn_asym_g128] scales rows 0-3 bit-exact %d/8; sum_q %lld (golden %lld) "
      "weighted %lld (golden %lld) hist_l1 %d rows %d/32\n",
      scale_exact, (long long)sum, (long long)c["q"]["sum_q"].get<int64_t>(), (long long)wsum,
      (long long)c["q"]["weighted_sum_q"].get<int64_t>(), hist_l1, row_same);
  // fp16 (AutoAWQ) vs float32 (here) may flip rare ties: >= 99.5% identical.
  const double max_diff = 0.005 * kN * kK;
  EXPECT_LE(hist_l1 / 2, max_diff);
  EXPECT_LE(std::abs(sum - c["q"]["sum_q"].get<int64_t>()), max_diff * 15);
  EXPECT_GE(row_same, 31);
  const bool codes_exact = sum == c["q"]["sum_q"].get<int64_t>() &&
                           wsum == c["q"]["weighted_sum_q"].get<int64_t>() && hist_l1 == 0;

  AwqPacked p;
  std::string err;
  ASSERT_TRUE(pack_awq_gemm(qw, &p, &err)) << err;
  const auto& gp = g["awq_gemm_pack"];
  EXPECT_EQ(kK, gp["qweight_shape"][0].get<int>());
  EXPECT_EQ(kN / 8, gp["qweight_shape"][1].get<int>());
  for (int n = 0; n < 8; ++n) {
    EXPECT_EQ(qw.codes(n, 0), gp["intweight_k0_n0_7"][n].get<int>()) << n;
    EXPECT_EQ(qw.zero(n, 0), gp["zeros_k0_n0_7"][n].get<float>()) << n;
  }
  int words_same = 0;
  for (int row = 0; row < 2; ++row)
    for (int col = 0; col < 4; ++col)
      words_same += hex32(p.qweight[size_t(row) * (kN / 8) + col]) ==
                    gp["qweight_hex_[0:2,0:4]"][row][col].get<std::string>();
  for (int col = 0; col < 4; ++col)
    EXPECT_EQ(hex32(p.qzeros[col]), gp["qzeros_hex_row0"][col].get<std::string>()) << col;
  if (codes_exact) {
    EXPECT_EQ(words_same, 8);
  } else {
    EXPECT_GE(words_same, 6);
  }
}

}  // namespace
}  // namespace qsweep::quant
