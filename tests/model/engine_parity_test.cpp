// Parity with Hugging Face transformers (fixtures made by
// scripts/fixtures/make_fixtures.py): logits within 1e-4, identical greedy ids.

#include <gtest/gtest.h>

#include <cmath>

#include "model/checkpoint/checkpoint.h"
#include "model/checkpoint/llama2c.h"
#include "model/engine/engine.h"
#include "tests/model/engine_test_util.h"
#include "tests/model/llama2c_reference.h"
#include "tests/testutil.h"

namespace qsweep::model {
namespace {

using test::floats;
using test::ints;
using test::max_abs_diff;

class TinyModelParity : public ::testing::TestWithParam<const char*> {};

TEST_P(TinyModelParity, LogitsAndGreedyMatchTransformers) {
  const auto dir = test::source_dir() / "tests/fixtures/models" / GetParam();
  const SafetensorsFile ref(dir / "reference.safetensors");
  const std::vector<int> ids = ints(ref, "input_ids");    // [2, 12]
  const std::vector<float> want = floats(ref, "logits");  // [2, 12, 128]
  const std::vector<int> greedy = ints(ref, "greedy_ids");
  ASSERT_EQ(ids.size(), 24u);
  ASSERT_EQ(want.size(), 24u * 128);
  auto engine = Engine::load(dir, {.threads = 2});
  ASSERT_EQ(engine->config().vocab_size, 128);
  float worst = 0;
  for (int b = 0; b < 2; ++b) {
    const std::vector<int> row(ids.begin() + 12 * b, ids.begin() + 12 * (b + 1));
    const std::vector<float> got = engine->logits(row);
    ASSERT_EQ(got.size(), 12u * 128);
    worst = std::max(worst, max_abs_diff(got.data(), want.data() + b * 12 * 128, got.size()));
  }
  std::printf("[ parity ] %s: max |logits - transformers| = %.3g\n", GetParam(), worst);
  EXPECT_LE(worst, 1e-4f) << GetParam();
  const std::vector<int> prompt(ids.begin(), ids.begin() + 5);
  EXPECT_EQ(engine->generate(prompt, {.max_tokens = 10}), greedy) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TinyModelParity,
                         ::testing::Values("llama2", "llama3", "mistral", "gemma", "qwen2"),
                         [](const auto& info) { return std::string(info.param); });

TEST(Stories260K, ImportedModelMatchesTransformersAndTheOracle) {
  const auto data = qsweep::testing::shared_data_dir();
  const auto bin = data / "models/stories260K/stories260K.bin";
  if (data.empty() || !std::filesystem::exists(bin))
    GTEST_SKIP() << "needs ../shared/data/models/stories260K/stories260K.bin (not found at " << bin
                 << ")";
  qsweep::testing::TempDir tmp;
  import_llama2c(bin, "", tmp / "stories260K");
  auto engine = Engine::load(tmp / "stories260K", {.threads = 2});
  const SafetensorsFile ref(test::source_dir() /
                            "tests/fixtures/stories260K/reference.safetensors");
  const std::vector<int> ids = ints(ref, "input_ids");    // [2, 32]
  const std::vector<float> want = floats(ref, "logits");  // [2, 32, 512]
  ASSERT_EQ(ids.size(), 64u);
  float worst = 0;
  for (int b = 0; b < 2; ++b) {
    const std::vector<int> row(ids.begin() + 32 * b, ids.begin() + 32 * (b + 1));
    const std::vector<float> got = engine->logits(row);
    worst = std::max(worst, max_abs_diff(got.data(), want.data() + b * 32 * 512, got.size()));
  }
  std::printf("[ parity ] stories260K: max |logits - transformers| = %.3g\n", worst);
  EXPECT_LE(worst, 1e-4f);
  const std::vector<int> got = engine->generate({1}, {.max_tokens = 60});
  const std::vector<int> oracle = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298,
                                   315, 421, 395, 317, 426, 338, 401, 396, 267, 337};
  ASSERT_GE(got.size(), 20u);
  EXPECT_EQ(std::vector<int>(got.begin(), got.begin() + 20), oracle);
  EXPECT_EQ(got, ints(ref, "greedy_ids"));
}

/// Import, reload and compare with the plain llama2.c forward pass, on both
/// llama2.c models of ../shared/data (stories260K: GQA; aidreams260K: MHA).
class Llama2cImportVsReference : public ::testing::TestWithParam<const char*> {};

TEST_P(Llama2cImportVsReference, LogitsMatchTheLlama2cForwardPass) {
  const auto data = qsweep::testing::shared_data_dir();
  const auto bin = data / "models" / GetParam() / (std::string(GetParam()) + ".bin");
  if (data.empty() || !std::filesystem::exists(bin))
    GTEST_SKIP() << "needs ../shared/data/models/" << GetParam() << " (not found at " << bin << ")";
  const Llama2cModel m = read_llama2c(bin);
  qsweep::testing::TempDir tmp;
  import_llama2c(bin, "", tmp / "hf");
  auto engine = Engine::load(tmp / "hf", {.threads = 2});
  const std::vector<int> ids = engine->generate({1}, {.max_tokens = 40});
  std::vector<int> seq_ids = {1};
  seq_ids.insert(seq_ids.end(), ids.begin(), ids.end());
  const std::vector<float> got = engine->logits(seq_ids);
  test::Llama2cReference ref(m);
  float worst = 0;
  for (size_t t = 0; t < seq_ids.size(); ++t) {
    const std::vector<float> want = ref.step(seq_ids[t], int(t));
    worst = std::max(worst, max_abs_diff(&got[t * m.vocab_size], want.data(), want.size()));
  }
  std::printf("[ parity ] %s import vs llama2.c forward: max |diff| = %.3g over %zu positions\n",
              GetParam(), worst, seq_ids.size());
  EXPECT_LE(worst, 1e-4f);
}

INSTANTIATE_TEST_SUITE_P(SharedData, Llama2cImportVsReference,
                         ::testing::Values("stories260K", "aidreams260K"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace qsweep::model
