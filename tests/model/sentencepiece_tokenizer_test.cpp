// The SentencePiece tokenizer.model of ../shared/data/tokenizers/llama2
// against the tokenizer.json fixture ids of the same folder.

#include "model/tokenizer/sentencepiece_tokenizer.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/tokenizer/hf_tokenizer.h"
#include "tests/model/tokenizer_corpus.h"
#include "tests/testutil.h"

namespace qsweep::model {
namespace {

TEST(SentencePieceTokenizer, RoundTripAndSpecials) {
  const auto data = testing::shared_data_dir();
  if (data.empty()) GTEST_SKIP() << "../shared/data is absent";
  auto sp = SentencePieceTokenizer::load((data / "tokenizers/llama2/tokenizer.model").string());
  EXPECT_EQ(sp->vocab_size(), 32000u);
  EXPECT_EQ(sp->bos_id(), 1);
  EXPECT_EQ(sp->eos_id(), 2);
  const std::string text =
      "Hello world! caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80\n  x";
  const auto ids = sp->encode(text, true);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(sp->decode(ids, true), text);
  EXPECT_EQ(sp->decode(ids, false), "<s>" + text);
  EXPECT_EQ(sp->token_to_id("<s>"), 1);
  EXPECT_EQ(sp->token_to_id("no such piece"), -1);
}

TEST(SentencePieceTokenizer, AgreesWithTokenizerJson) {
  const auto data = testing::shared_data_dir();
  if (data.empty()) GTEST_SKIP() << "../shared/data is absent";
  auto sp = SentencePieceTokenizer::load((data / "tokenizers/llama2/tokenizer.model").string());
  auto hf = HfTokenizer::load((data / "tokenizers/llama2/tokenizer.json").string());
  // Vocabulary agreement first: the two files must describe one vocabulary
  // for id parity to be meaningful.
  size_t vocab_diff = 0;
  std::string example;
  for (TokenId id = 0; id < 32000; ++id) {
    if (sp->id_to_token(id) != hf->id_to_token(id)) {
      if (vocab_diff++ == 0) {
        example = "id " + std::to_string(id) + ": tokenizer.model \"" + sp->id_to_token(id) +
                  "\" vs tokenizer.json \"" + hf->id_to_token(id) + "\"";
      }
    }
  }
  const char* src = std::getenv("QSWEEP_SOURCE_DIR");
  const auto corpus = testing::build_tokenizer_corpus(
      data, std::filesystem::path(src ? src : ".") / "tests/fixtures/tokenizer_edge_cases.json");
  size_t id_diff = 0, special_text = 0;
  std::string first;
  for (const auto& e : corpus) {
    if (sp->encode(e.text, false) != hf->encode(e.text, false)) {
      ++id_diff;
      if (e.text.find("<s>") != std::string::npos || e.text.find("</s>") != std::string::npos ||
          e.text.find("<unk>") != std::string::npos) {
        ++special_text;
      } else if (first.empty()) {
        first = e.src;
      }
    }
  }
  std::printf(
      "tokenizer.model vs tokenizer.json: %zu of 32000 vocab entries differ (%s); "
      "%zu of %zu corpus strings encode differently (%zu contain <s>/</s>/<unk> text); "
      "first other: %s\n",
      vocab_diff, example.c_str(), id_diff, corpus.size(), special_text, first.c_str());
  RecordProperty("vocab_diff", static_cast<int>(vocab_diff));
  RecordProperty("id_diff", static_cast<int>(id_diff));
  if (vocab_diff > 0) {
    // Documented systematic difference (see the report in model/tokenizer/
    // sentencepiece_tokenizer.h): the two files in ../shared/data come from
    // different models, so only the self-consistency checks apply.
    GTEST_SKIP() << "tokenizer.model and tokenizer.json of ../shared/data/tokenizers/llama2 have "
                    "different vocabularies ("
                 << vocab_diff << " ids differ, e.g. " << example << "): id parity is not defined";
  }
  EXPECT_EQ(id_diff, special_text) << "first differing string: " << first;
}

}  // namespace
}  // namespace qsweep::model

namespace qsweep::model {
namespace {

// The legacy-Llama tokenizer.json qsweep writes for tokenizer.model (as
// transformers' LlamaConverter does), run by qsweep's tokenizer.json code,
// must give SentencePiece's ids for the whole corpus.
TEST(SentencePieceTokenizer, ConvertedTokenizerJsonMatchesCorpus) {
  const auto data = testing::shared_data_dir();
  if (data.empty()) GTEST_SKIP() << "../shared/data is absent";
  auto sp = SentencePieceTokenizer::load((data / "tokenizers/llama2/tokenizer.model").string());
  testing::TempDir dir;
  write_hf_tokenizer_files(sp->scored_vocab(), dir.path().string());
  auto hf = HfTokenizer::load((dir / "tokenizer.json").string());
  EXPECT_EQ(hf->bos_id(), 1);
  EXPECT_EQ(hf->eos_id(), 2);
  const char* src = std::getenv("QSWEEP_SOURCE_DIR");
  const auto corpus = testing::build_tokenizer_corpus(
      data, std::filesystem::path(src ? src : ".") / "tests/fixtures/tokenizer_edge_cases.json");
  size_t diff = 0, special_text = 0, decode_diff = 0;
  std::string first;
  for (const auto& e : corpus) {
    const auto want = sp->encode(e.text, true);
    if (hf->encode(e.text, true) != want) {
      if (e.text.find("<s>") != std::string::npos || e.text.find("</s>") != std::string::npos ||
          e.text.find("<unk>") != std::string::npos) {
        ++special_text;  // HF matches these as special tokens; SentencePiece reads text
      } else {
        if (diff++ == 0) first = e.src + " " + e.text.substr(0, 60);
      }
    }
    if (hf->decode(want, true) != sp->decode(want, true)) ++decode_diff;
  }
  std::printf(
      "converted tokenizer.model: %zu corpus strings differ (+%zu with <s>/</s>/<unk> text), "
      "%zu decodes differ, of %zu\n",
      diff, special_text, decode_diff, corpus.size());
  EXPECT_EQ(diff, 0u) << "first: " << first;
  EXPECT_EQ(decode_diff, 0u);
}

}  // namespace
}  // namespace qsweep::model
