// The embedded backend's request encoding (lm-eval v0.4.4 HFLM semantics) on
// stories260K: _encode_pair's whitespace move, the empty-context prefix
// token, add_bos_token, answers equal to the engine's own scoring, stop
// strings, and the fingerprint.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "model/backend/embedded_backend.h"
#include "model/engine/engine.h"
#include "model/tokenizer/llama2c_tokenizer.h"
#include "model/tokenizer/tokenizer.h"
#include "tests/model/stories_fixture.h"
#include "tests/testutil.h"

namespace qsweep::model {
namespace {

namespace fs = std::filesystem;

TEST(EmbeddedBackend, EncodePairMovesTrailingWhitespaceToTheContinuation) {
  NEED_STORIES();
  EmbeddedBackend b(*st->engine, *st->tok, {});
  // lm-eval: context "Once upon a time " + continuation "there" is scored as
  // encode("Once upon a time") then whole[len(ctx):] of encode(context+continuation).
  const auto [ctx, cont] = b.encode_pair("Once upon a time ", "there");
  EXPECT_EQ(ctx, ids(*st->tok, "Once upon a time"));
  const auto whole = ids(*st->tok, "Once upon a time there");
  ASSERT_GE(whole.size(), ctx.size());
  EXPECT_EQ(cont, std::vector<int>(whole.begin() + ctx.size(), whole.end()));
  EXPECT_EQ(b.encode_pair("Once upon a time", " there"), b.encode_pair("Once upon a time ", "there"));
  // Unicode whitespace (U+00A0) counts as Python whitespace too.
  const auto [ctx2, cont2] = b.encode_pair("Lily\xC2\xA0", "ran");
  EXPECT_EQ(ctx2, ids(*st->tok, "Lily"));
}

TEST(EmbeddedBackend, EmptyContextStartsFromBos) {
  NEED_STORIES();
  EmbeddedBackend b(*st->engine, *st->tok, {});
  const auto [ctx, cont] = b.encode_pair("", "Once upon a time");
  EXPECT_EQ(ctx, std::vector<int>{st->tok->bos_id()});
  EXPECT_EQ(cont, ids(*st->tok, "Once upon a time"));
}

TEST(EmbeddedBackend, AddBosTokenPrefixesTheContextAndChangesTheFingerprint) {
  NEED_STORIES();
  EmbeddedBackend plain(*st->engine, *st->tok, {});
  EmbeddedBackend bos(*st->engine, *st->tok, {.add_bos_token = true});
  const auto [c0, k0] = plain.encode_pair("Once upon a time", " there");
  const auto [c1, k1] = bos.encode_pair("Once upon a time", " there");
  ASSERT_FALSE(c1.empty());
  EXPECT_EQ(c1.front(), st->tok->bos_id());
  EXPECT_EQ(std::vector<int>(c1.begin() + 1, c1.end()), c0);
  EXPECT_EQ(k0, k1);
  EXPECT_NE(plain.fingerprint(), bos.fingerprint());
}

TEST(EmbeddedBackend, LoglikelihoodEqualsTheEngineOnTheEncodedPair) {
  NEED_STORIES();
  EmbeddedBackend b(*st->engine, *st->tok, {});
  EmbeddedBackend naive(*st->engine, *st->tok, {.reuse_prefix = false});
  std::vector<TextLoglikelihood> reqs = {{"Lily saw a big", " dog"},
                                         {"Lily saw a big", " cat"},
                                         {"Lily saw a big ", "tree."},
                                         {"", "Once upon a time"}};
  const auto a = b.loglikelihood(reqs);
  const auto n = naive.loglikelihood(reqs);
  ASSERT_EQ(a.size(), reqs.size());
  for (size_t i = 0; i < reqs.size(); ++i) {
    const auto [ctx, cont] = b.encode_pair(reqs[i].context, reqs[i].continuation);
    const LoglikelihoodResult want = st->engine->loglikelihood(ctx, cont);
    EXPECT_NEAR(a[i].logprob, want.logprob, 1e-4) << i;
    EXPECT_EQ(a[i].is_greedy, want.is_greedy) << i;
    EXPECT_NEAR(n[i].logprob, a[i].logprob, 1e-4) << "prefix reuse changes no answer: " << i;
    EXPECT_EQ(a[i].context_tokens, int(ctx.size()));
    EXPECT_EQ(a[i].continuation_tokens, int(cont.size()));
    EXPECT_LT(a[i].logprob, 0);
  }
}

TEST(EmbeddedBackend, GenerateUntilCutsAtTheFirstStopString) {
  NEED_STORIES();
  EmbeddedBackend b(*st->engine, *st->tok, {});
  TextGeneration free_run{.context = "Once upon a time", .until = {}, .max_gen_toks = 40};
  const std::string full = b.generate_until(std::span(&free_run, 1))[0];
  ASSERT_GT(full.size(), 10u) << full;
  // Stop at a substring that occurs in the free generation: the answer is
  // everything before its first occurrence.
  const std::string stop = full.substr(full.size() / 2, 3);
  TextGeneration cut = free_run;
  cut.until = {stop};
  const std::string got = b.generate_until(std::span(&cut, 1))[0];
  EXPECT_EQ(got, full.substr(0, full.find(stop))) << "stop \"" << stop << "\" in \"" << full << "\"";
  // max_gen_toks bounds the length in tokens.
  TextGeneration few = free_run;
  few.max_gen_toks = 3;
  const std::string short_gen = b.generate_until(std::span(&few, 1))[0];
  EXPECT_LE(ids(*st->tok, short_gen).size(), 4u) << short_gen;
  EXPECT_EQ(full.rfind(short_gen, 0), 0u) << "greedy decoding is a prefix of the longer run";
}

TEST(EmbeddedBackend, RollingScoresEveryToken) {
  NEED_STORIES();
  EmbeddedBackend b(*st->engine, *st->tok, {});
  const std::string text = "Once upon a time, there was a little girl named Lily.";
  const auto r = b.loglikelihood_rolling(std::vector<std::string>{text});
  EXPECT_EQ(r[0].tokens, int(ids(*st->tok, text).size()));
  const auto ll = b.loglikelihood(std::vector<TextLoglikelihood>{{"", text}});
  EXPECT_NEAR(r[0].logprob, ll[0].logprob, 1e-3) << "one window = the BOS-prefixed loglikelihood";
}

}  // namespace
}  // namespace qsweep::model

// ---- Parity with Hugging Face transformers (tests/fixtures/eval_reference,
// made on the GPU machine by scripts/fixtures/make_eval_reference.py from
// real prompts of the six OLL v1 tasks).

namespace qsweep::model {
namespace {

nlohmann::json reference() {
  std::ifstream in(testing::source_dir() / "tests/fixtures/eval_reference/stories260k_reference.json");
  return nlohmann::json::parse(in);
}

std::string fnv1a64(const std::vector<int>& ids) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (int x : ids)
    for (int b = 0; b < 4; ++b) {
      h ^= (static_cast<uint32_t>(x) >> (8 * b)) & 0xFF;
      h *= 0x100000001B3ull;
    }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

TEST(EmbeddedBackendParity, LoglikelihoodsEqualTransformersOnRealPrompts) {
  NEED_STORIES();
  const nlohmann::json ref = reference();
  ASSERT_EQ(ref["model_max_length"], st->engine->max_length());
  size_t n = 0;
  for (bool bos : {false, true}) {
    EmbeddedBackend b(*st->engine, *st->tok, {.add_bos_token = bos});
    std::vector<TextLoglikelihood> reqs;
    std::vector<const nlohmann::json*> want;
    for (const auto& e : ref["loglikelihood"]) {
      if (e["add_bos_token"] != bos) continue;
      const auto& r = ref["requests"][e["req"].get<size_t>()];
      reqs.push_back({r["context"], r["continuation"]});
      want.push_back(&e);
    }
    const auto got = b.loglikelihood(reqs);
    for (size_t i = 0; i < reqs.size(); ++i, ++n) {
      const auto& e = *want[i];
      const auto [ctx, cont] = b.encode_pair(reqs[i].context, reqs[i].continuation);
      EXPECT_EQ(int(ctx.size()), e["context_len"].get<int>()) << i;
      EXPECT_EQ(fnv1a64(ctx), e["context_fnv"]) << "context ids of request " << i;
      EXPECT_EQ(cont, e["continuation_ids"].get<std::vector<int>>()) << i;
      EXPECT_NEAR(got[i].logprob, e["logprob"].get<double>(), 2e-4 * std::max(1.0, std::abs(e["logprob"].get<double>())))
          << "request " << i << " bos " << bos;
      EXPECT_EQ(got[i].is_greedy, e["is_greedy"].get<bool>()) << i;
    }
  }
  EXPECT_GE(n, 60u);
}

TEST(EmbeddedBackendParity, GreedyGenerationsEqualTransformers) {
  NEED_STORIES();
  const nlohmann::json ref = reference();
  EmbeddedBackend b(*st->engine, *st->tok, {});
  std::vector<TextGeneration> reqs;
  for (const auto& g : ref["generate"])
    reqs.push_back({.context = g["context"], .until = g["until"], .max_gen_toks = g["max_gen_toks"]});
  ASSERT_FALSE(reqs.empty());
  const auto got = b.generate_until(reqs);
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(got[i], ref["generate"][i]["text"]) << i;
}

TEST(EmbeddedBackendParity, EncodePairIdsEqualTransformersForLlamaTokenizers) {
  NEED_STORIES();
  const fs::path data = testing::shared_data_dir();
  const nlohmann::json ref = reference();
  for (const char* name : {"llama3_1", "llama2"}) {
    const auto tok = load_tokenizer((data / "tokenizers" / name).string());
    size_t n = 0;
    for (bool bos : {false, true}) {
      EmbeddedBackend b(*st->engine, *tok, {.add_bos_token = bos});
      for (const auto& e : ref["pairs"][name]) {
        if (e["add_bos_token"] != bos) continue;
        const auto& r = ref["requests"][e["req"].get<size_t>()];
        const auto [ctx, cont] = b.encode_pair(r["context"], r["continuation"]);
        EXPECT_EQ(fnv1a64(ctx), e["context_fnv"]) << name << " bos " << bos << " req " << e["req"];
        EXPECT_EQ(cont, e["continuation_ids"].get<std::vector<int>>()) << name << " req " << e["req"];
        ++n;
      }
    }
    EXPECT_GE(n, 90u) << name;
  }
}

}  // namespace
}  // namespace qsweep::model
