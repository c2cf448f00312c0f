#include "model/checkpoint/llama2c.h"

#include <gtest/gtest.h>

#include <cstring>

#include "model/checkpoint/checkpoint.h"
#include "tests/testutil.h"

namespace qsweep::model {
namespace {

using qsweep::testing::TempDir;
using qsweep::testing::write_file;

std::string header(std::vector<int32_t> h) {
  std::string s(h.size() * 4, '\0');
  std::memcpy(s.data(), h.data(), s.size());
  return s;
}

std::string error_of(const std::filesystem::path& p) {
  try {
    read_llama2c(p);
    return "";
  } catch (const std::runtime_error& e) {
    return e.what();
  }
}

TEST(Llama2c, PermuteRopeRowsMatchesTheViewTransposeReshape) {
  // 2 heads of head_dim 4, 1 column: rows (h, i, j) -> (h, j, i).
  std::vector<float> w = {0, 1, 2, 3, 4, 5, 6, 7};
  EXPECT_EQ(permute_rope_rows(w, 2, 8, 1), (std::vector<float>{0, 2, 1, 3, 4, 6, 5, 7}));
}

TEST(Llama2c, RejectsBadHeadersAndTruncation) {
  TempDir dir;
  const auto p = dir / "m.bin";
  write_file(p, "abc");
  EXPECT_NE(error_of(p).find("truncated"), std::string::npos);
  write_file(p, header({0, 1, 1, 1, 1, 1, 1}));
  EXPECT_NE(error_of(p).find("implausible header"), std::string::npos);
  write_file(p, header({64, 172, 5, 8, 3, 512, 512}));
  EXPECT_NE(error_of(p).find("inconsistent header"), std::string::npos);
  write_file(p, header({64, 172, 5, 8, 4, 512, 512}) + std::string(1000, '\0'));
  const std::string e = error_of(p);
  EXPECT_NE(e.find("truncated: the header implies"), std::string::npos) << e;
  EXPECT_NE(e.find("m.bin"), std::string::npos);
  write_file(p, header({64, 172, 5, 8, 4, INT32_MIN, 512}));
  EXPECT_NE(error_of(p).find("implausible"), std::string::npos);
}

TEST(Llama2c, ImportsAnUntiedModelWithItsClassifier) {
  TempDir dir;
  // dim 4, hidden 8, 1 layer, 2 heads, 1 kv head, vocab -6 (untied), seq_len 3.
  const int d = 4, hd = 8, V = 6, kv = 2, seq = 3;
  std::string s = header({d, hd, 1, 2, 1, -V, seq});
  const size_t n = V * d + d + d * d + 2 * kv * d + d * d + d + 3 * hd * d + d + seq * 2;
  std::vector<float> body(n);
  for (size_t i = 0; i < n; ++i) body[i] = float(i);
  std::vector<float> wcls(V * d, 7.0f);
  s.append(reinterpret_cast<const char*>(body.data()), body.size() * 4);
  s.append(reinterpret_cast<const char*>(wcls.data()), wcls.size() * 4);
  write_file(dir / "m.bin", s);
  const Llama2cModel m = read_llama2c(dir / "m.bin");
  EXPECT_FALSE(m.shared_classifier);
  EXPECT_EQ(m.vocab_size, V);
  EXPECT_EQ(m.wcls[0], 7.0f);
  import_llama2c(dir / "m.bin", "", dir / "out");
  Checkpoint ck(dir / "out");
  EXPECT_FALSE(ck.config().tie_word_embeddings);
  EXPECT_EQ(ck.config().n_head_kv, 1);
  EXPECT_EQ(ck.matrix_f32("lm_head.weight")(5, 3), 7.0f);
  EXPECT_TRUE(std::filesystem::exists(dir / "out/generation_config.json"));
  EXPECT_THROW(import_llama2c(dir / "m.bin", dir / "no-tok.bin", dir / "out2"), std::runtime_error);
}

}  // namespace
}  // namespace qsweep::model
