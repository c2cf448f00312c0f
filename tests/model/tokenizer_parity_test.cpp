// Parity with Hugging Face `tokenizers` on the fixture corpus: identical ids
// (with and without special tokens) and decoded text for the three
// tokenizer.json files in ../shared/data/tokenizers.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "model/tokenizer/hf_tokenizer.h"
#include "tests/model/tokenizer_corpus.h"
#include "tests/testutil.h"

namespace qsweep::model {
namespace {

using nlohmann::json;

std::filesystem::path source_dir() {
  const char* s = std::getenv("QSWEEP_SOURCE_DIR");
  return s && *s ? std::filesystem::path(s) : std::filesystem::path(".");
}

std::string ids_str(const std::vector<TokenId>& v, size_t max = 40) {
  std::string s = "[";
  for (size_t i = 0; i < v.size() && i < max; ++i) s += (i ? " " : "") + std::to_string(v[i]);
  if (v.size() > max) s += " ...";
  return s + "]";
}

// Index of the first difference (or the shorter length).
size_t first_diff(const std::vector<TokenId>& a, const std::vector<TokenId>& b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return i;
}

void check_parity(const std::string& name) {
  const auto data = testing::shared_data_dir();
  if (data.empty()) GTEST_SKIP() << "../shared/data is absent: tokenizer parity needs it";
  const auto tok_path = data / "tokenizers" / name / "tokenizer.json";
  if (!std::filesystem::exists(tok_path)) GTEST_SKIP() << tok_path << " is absent";

  const auto corpus = testing::build_tokenizer_corpus(
      data, source_dir() / "tests/fixtures/tokenizer_edge_cases.json");
  const auto t0 = std::chrono::steady_clock::now();
  auto tok = HfTokenizer::load(tok_path.string());
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::ifstream f(source_dir() / "tests/fixtures/tokenizers" / (name + ".jsonl"));
  ASSERT_TRUE(f) << "fixture for " << name << " missing";
  std::vector<json> fixtures;
  for (std::string line; std::getline(f, line);) {
    if (!line.empty()) fixtures.push_back(json::parse(line));
  }
  ASSERT_EQ(fixtures.size(), corpus.size()) << "corpus and fixture sizes differ";

  size_t sha_bad = 0, ids_bad = 0, special_bad = 0, decoded_bad = 0, n_tokens = 0;
  double encode_s = 0;
  std::ostringstream diffs;
  int shown = 0;
  for (size_t i = 0; i < corpus.size(); ++i) {
    const auto& e = corpus[i];
    const json& fx = fixtures[i];
    if (fx["src"] != e.src || fx["sha"] != testing::sha256_prefix16(e.text)) {
      ++sha_bad;
      if (shown++ < 5) diffs << "  " << e.src << ": corpus text differs from fixture (sha)\n";
      continue;
    }
    const auto want = fx["ids"].get<std::vector<TokenId>>();
    const auto s0 = std::chrono::steady_clock::now();
    const auto got = tok->encode(e.text, false);
    encode_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
    n_tokens += got.size();
    if (got != want) {
      ++ids_bad;
      if (shown++ < 5) {
        const size_t d = first_diff(got, want);
        diffs << "  " << e.src << " ids differ at " << d << ": got "
              << ids_str({got.begin() + std::min(d, got.size()), got.end()}, 12) << " want "
              << ids_str({want.begin() + std::min(d, want.size()), want.end()}, 12) << " text "
              << json(e.text.substr(0, 80)).dump() << "\n";
      }
    }
    if (fx.contains("ids_special")) {
      const auto ws = fx["ids_special"].get<std::vector<TokenId>>();
      const auto gs = tok->encode(e.text, true);
      if (gs != ws) {
        ++special_bad;
        if (shown++ < 5)
          diffs << "  " << e.src << " ids_special: got " << ids_str(gs) << " want " << ids_str(ws)
                << "\n";
      }
    }
    if (fx.contains("decoded")) {
      const std::string wd = fx["decoded"].get<std::string>();
      const std::string gd = tok->decode(want, false);
      if (gd != wd) {
        ++decoded_bad;
        if (shown++ < 5)
          diffs << "  " << e.src << " decoded: got " << json(gd).dump() << " want "
                << json(wd).dump() << "\n";
      }
    }
  }
  // Throughput: the pass above started with an empty word cache; a second
  // pass runs with it warm.
  const auto w0 = std::chrono::steady_clock::now();
  for (const auto& e : corpus) tok->encode(e.text, false);
  const double warm_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
  std::printf(
      "[%s] load %.2f s; %zu strings, %zu tokens; encode (cold cache) %.3f s = %.0f tokens/s, "
      "(warm cache) %.3f s = %.0f tokens/s\n",
      name.c_str(), load_s, corpus.size(), n_tokens, encode_s, n_tokens / encode_s, warm_s,
      n_tokens / warm_s);
  EXPECT_EQ(sha_bad + ids_bad + special_bad + decoded_bad, 0u)
      << name << ": " << sha_bad << " corpus/sha mismatches, " << ids_bad << " ids mismatches, "
      << special_bad << " ids_special mismatches, " << decoded_bad << " decoded mismatches (of "
      << corpus.size() << " strings)\n"
      << diffs.str();
}

// One tokenizer shared by 4 threads (the BPE cache is shared): every thread
// gets the single-threaded ids.
TEST(TokenizerParity, ConcurrentEncodeIsDeterministic) {
  const auto data = testing::shared_data_dir();
  if (data.empty()) GTEST_SKIP() << "../shared/data is absent";
  auto tok = HfTokenizer::load((data / "tokenizers/llama3_1/tokenizer.json").string());
  const auto corpus = testing::build_tokenizer_corpus(
      data, source_dir() / "tests/fixtures/tokenizer_edge_cases.json");
  std::vector<std::vector<TokenId>> want;
  {
    auto fresh = HfTokenizer::load((data / "tokenizers/llama3_1/tokenizer.json").string());
    for (const auto& e : corpus) want.push_back(fresh->encode(e.text, true));
  }
  std::vector<size_t> bad(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t k = 0; k < corpus.size(); ++k) {
        const size_t i = (k + t * corpus.size() / 4) % corpus.size();  // different orders
        if (tok->encode(corpus[i].text, true) != want[i]) ++bad[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad, std::vector<size_t>(4, 0));
}

TEST(TokenizerParity, Llama2) { check_parity("llama2"); }
TEST(TokenizerParity, Llama3_1) { check_parity("llama3_1"); }
TEST(TokenizerParity, Gemma3) { check_parity("gemma3"); }

}  // namespace
}  // namespace qsweep::model
