// The llama2.c tokenizer (tok512.bin of stories260K) against run.c behaviour
// and the known oracle, and the tok512 -> Hugging Face tokenizer.json writer.

#include "model/tokenizer/llama2c_tokenizer.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "model/tokenizer/hf_tokenizer.h"
#include "tests/model/tokenizer_corpus.h"
#include "tests/testutil.h"

namespace qsweep::model {
namespace {

const char* k_oracle_text =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
    "One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily";
const std::vector<TokenId> k_oracle_ids = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298,
                                           315, 421, 395, 317, 426, 338, 401, 396, 267, 337};

std::unique_ptr<Llama2cTokenizer> load_tok512() {
  const auto data = testing::shared_data_dir();
  if (data.empty()) return nullptr;
  const auto p = data / "models/stories260K/tok512.bin";
  return std::filesystem::exists(p) ? Llama2cTokenizer::load(p.string()) : nullptr;
}

TEST(Llama2cTokenizer, OracleDecodeAndRoundTrip) {
  auto tok = load_tok512();
  if (!tok) GTEST_SKIP() << "../shared/data/models/stories260K/tok512.bin is absent";
  EXPECT_EQ(tok->vocab_size(), 512u);
  EXPECT_EQ(tok->max_token_length(), 7);
  const std::string d = tok->decode(k_oracle_ids, false);
  EXPECT_EQ(d.rfind("Once upon a time, there was a little girl named Lily", 0), 0u) << d;
  // After BOS (as generation prints it) the same text.
  std::vector<TokenId> with_bos = {1};
  with_bos.insert(with_bos.end(), k_oracle_ids.begin(), k_oracle_ids.end());
  EXPECT_EQ(tok->decode(with_bos, true), d);

  const auto ids = tok->encode(k_oracle_text, false);
  EXPECT_EQ(tok->decode(ids, false), k_oracle_text);
  // The oracle generation starts with the same tokens the text encodes to.
  ASSERT_GE(ids.size(), 20u);
  EXPECT_EQ(std::vector<TokenId>(ids.begin(), ids.begin() + 20), k_oracle_ids);
}

TEST(Llama2cTokenizer, EncodeIsStable) {
  auto tok = load_tok512();
  if (!tok) GTEST_SKIP() << "../shared/data/models/stories260K/tok512.bin is absent";
  EXPECT_EQ(tok->encode("Once upon a time", false), (std::vector<TokenId>{403, 407, 261, 378}));
  EXPECT_EQ(tok->encode("Once upon a time", true), (std::vector<TokenId>{1, 403, 407, 261, 378}));
  EXPECT_EQ(tok->encode("", true), (std::vector<TokenId>{1}));
  // A code point outside the vocabulary falls back to its bytes (ids 3 + byte).
  const auto e = tok->encode("\xE6\x97\xA5", false);  // U+65E5
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(std::vector<TokenId>(e.begin() + 1, e.end()),
            (std::vector<TokenId>{3 + 0xE6, 3 + 0x97, 3 + 0xA5}));
  EXPECT_EQ(tok->decode(e, false), "\xE6\x97\xA5");
}

TEST(Llama2cTokenizer, HfConversionEncodesTheSame) {
  auto tok = load_tok512();
  if (!tok) GTEST_SKIP() << "../shared/data/models/stories260K/tok512.bin is absent";
  testing::TempDir dir;
  write_hf_tokenizer(*tok, dir.path().string());
  auto hf = HfTokenizer::load((dir / "tokenizer.json").string());
  EXPECT_EQ(hf->bos_id(), 1);
  EXPECT_EQ(hf->eos_id(), 2);

  std::vector<std::string> texts = {
      k_oracle_text, "Once upon a time", "",
      " ",           "  two  spaces ",   "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80",
      "a\nb\n\n"};
  const char* src = std::getenv("QSWEEP_SOURCE_DIR");
  const auto corpus = testing::build_tokenizer_corpus(
      testing::shared_data_dir(),
      std::filesystem::path(src ? src : ".") / "tests/fixtures/tokenizer_edge_cases.json");
  for (const auto& e : corpus) texts.push_back(e.text);

  size_t bad_ids = 0, bad_decode = 0;
  std::string first;
  for (const auto& t : texts) {
    const auto want = tok->encode(t, true);
    const auto got = hf->encode(t, true);
    if (got != want) {
      if (bad_ids++ == 0) first = t.substr(0, 80);
    }
    if (hf->decode(want, true) != tok->decode(want, true)) ++bad_decode;
  }
  EXPECT_EQ(bad_ids, 0u) << "of " << texts.size() << " texts; first: " << first;
  EXPECT_EQ(bad_decode, 0u) << "of " << texts.size() << " texts";
}

}  // namespace
}  // namespace qsweep::model
