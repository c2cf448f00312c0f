// Unit tests of model/tokenizer: added-token matching rules, the BPE model,
// and clear errors for bad input (missing, truncated, garbage files and
// unsupported components).

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "model/tokenizer/hf_tokenizer.h"
#include "model/tokenizer/llama2c_tokenizer.h"
#include "model/tokenizer/regex.h"
#include "model/tokenizer/sentencepiece_tokenizer.h"
#include "model/tokenizer/utf8.h"
#include "tests/testutil.h"

namespace qsweep::model {
namespace {

using nlohmann::json;

// A character-level BPE tokenizer.json: every char of `chars` is a token,
// plus `merges` (with their merged tokens) and added tokens.
json tiny_tokenizer(const std::string& chars,
                    const std::vector<std::pair<std::string, std::string>>& merges,
                    const json& added) {
  json vocab = json::object();
  int id = 0;
  for (size_t i = 0; i < chars.size();) {
    const size_t n = utf8::char_len(chars, i);
    const std::string c = chars.substr(i, n);
    if (!vocab.contains(c)) vocab[c] = id++;
    i += n;
  }
  json jm = json::array();
  for (const auto& [a, b] : merges) {
    if (!vocab.contains(a + b)) vocab[a + b] = id++;
    jm.push_back(json::array({a, b}));
  }
  json at = json::array();
  for (const auto& a : added) {
    json t = a;
    t["id"] = id++;
    for (const char* k : {"single_word", "lstrip", "rstrip", "normalized", "special"}) {
      if (!t.contains(k)) t[k] = false;
    }
    at.push_back(t);
  }
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", at},
          {"normalizer", nullptr},
          {"pre_tokenizer", nullptr},
          {"post_processor", nullptr},
          {"decoder", nullptr},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", jm}}}};
}

std::vector<std::string> pieces(const Tokenizer& t, const std::vector<TokenId>& ids) {
  std::vector<std::string> out;
  for (TokenId id : ids) out.push_back(t.id_to_token(id));
  return out;
}

TEST(TokenizerAddedTokens, StripAndSingleWordRules) {
  // The options_use_cases example of HF's added_vocabulary.rs (without the
  // lowercase normalizer).
  const json j = tiny_tokenizer(" mynaeisthoy[]CLSEP", {},
                                {{{"content", "[CLS]"}, {"special", true}},
                                 {{"content", "[SEP]"}, {"special", true}},
                                 {{"content", "my"}, {"lstrip", true}, {"rstrip", true}},
                                 {{"content", "name"}},
                                 {{"content", "ony"}, {"single_word", true}}});
  auto tok = HfTokenizer::parse(j.dump(), "tiny");
  const auto ids = tok->encode("[CLS] my name is anthony [SEP]", false);
  const std::vector<std::string> want = {"[CLS]", "my", "name", " ", "i", "s", " ", "a",
                                         "n",     "t",  "h",    "o", "n", "y", " ", "[SEP]"};
  EXPECT_EQ(pieces(*tok, ids), want);
  // single_word: "ony" alone is the token.
  EXPECT_EQ(pieces(*tok, tok->encode("a ony", false)), (std::vector<std::string>{"a", " ", "ony"}));
  // Longest first: "[CLS]" wins over its prefix characters; decode drops specials.
  EXPECT_EQ(tok->decode(ids, true),
            "my name   i s   a n t h o n y  ");  // no decoder: joined by " "
}

TEST(TokenizerBpe, MergesByRankLeftmostFirst) {
  // "aaa" with the single merge (a, a): leftmost pair first -> "aa" "a".
  auto tok = HfTokenizer::parse(
      tiny_tokenizer("ab", {{"a", "a"}, {"aa", "b"}}, json::array()).dump(), "t");
  EXPECT_EQ(pieces(*tok, tok->encode("aaa", false)), (std::vector<std::string>{"aa", "a"}));
  EXPECT_EQ(pieces(*tok, tok->encode("aab", false)), (std::vector<std::string>{"aab"}));
  EXPECT_EQ(pieces(*tok, tok->encode("", false)), std::vector<std::string>{});
  // Unknown characters with no unk token and no byte fallback are dropped.
  EXPECT_EQ(pieces(*tok, tok->encode("axb", false)), (std::vector<std::string>{"a", "b"}));
}

TEST(TokenizerRegex, WhitespaceClassMatchesOniguruma) {
  // U+0085 is White_Space (Oniguruma \s) though not \p{Xps} (PCRE2 \s).
  Regex re("\\s+", "test");
  const auto m = re.find_all("a\xC2\x85 b");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0], (std::pair<size_t, size_t>{1, 4}));
  EXPECT_THROW(Regex("(", "test.json: pre_tokenizer Split"), std::runtime_error);
}

TEST(TokenizerUtf8, LossyLikeRust) {
  EXPECT_EQ(utf8::lossy("a\xFF"
                        "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(utf8::lossy("\xE2\x82"), "\xEF\xBF\xBD");  // a truncated sequence is one U+FFFD
  EXPECT_EQ(utf8::lossy("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_TRUE(utf8::valid("caf\xC3\xA9"));
}

// Expects `f` to throw std::runtime_error whose message contains every needle.
template <class F>
void expect_error(F f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const std::runtime_error& e) {
    for (const auto& n : needles)
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

TEST(TokenizerBadInput, MissingTruncatedGarbage) {
  testing::TempDir dir;
  const auto missing = (dir / "nope" / "tokenizer.json").string();
  expect_error([&] { HfTokenizer::load(missing); }, {"cannot open", missing});
  expect_error([&] { load_tokenizer(missing); }, {missing});

  const std::string full = tiny_tokenizer("ab", {{"a", "b"}}, json::array()).dump();
  const auto trunc = (dir / "truncated.json").string();
  testing::write_file(trunc, full.substr(0, full.size() / 2));
  expect_error([&] { HfTokenizer::load(trunc); }, {trunc, "not valid JSON"});

  const auto garbage = (dir / "garbage.json").string();
  testing::write_file(garbage, std::string("\x00\x01\x02 binary", 10));
  expect_error([&] { HfTokenizer::load(garbage); }, {garbage, "not valid JSON"});

  const auto notok = (dir / "other.json").string();
  testing::write_file(notok, R"({"hello": 1})");
  expect_error([&] { HfTokenizer::load(notok); }, {notok, "no \"model\""});

  const auto bin = (dir / "tok.bin").string();
  testing::write_file(bin, std::string("\x07\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00"
                                       "ab",
                                       14));
  expect_error([&] { Llama2cTokenizer::load(bin); }, {bin, "not a llama2.c tokenizer"});
  testing::write_file(bin, "");
  expect_error([&] { Llama2cTokenizer::load(bin); }, {bin});

  const auto spm = (dir / "tokenizer.model").string();
  testing::write_file(spm, "this is not a protobuf");
  expect_error([&] { SentencePieceTokenizer::load(spm); }, {spm, "not a SentencePiece model"});
}

TEST(TokenizerBadInput, UnsupportedComponentsAreNamed) {
  struct Case {
    const char* key;
    json value;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {"normalizer", {{"type", "NFKC"}}, "normalizer NFKC is not supported"},
      {"normalizer",
       {{"type", "Sequence"}, {"normalizers", {{{"type", "Lowercase"}}}}},
       "normalizer Lowercase is not supported"},
      {"pre_tokenizer",
       {{"type", "Metaspace"}, {"replacement", "_"}},
       "pre_tokenizer Metaspace is not supported"},
      {"pre_tokenizer",
       {{"type", "Split"}, {"pattern", {{"Regex", "("}}}, {"behavior", "Isolated"}},
       "cannot compile regex"},
      {"pre_tokenizer",
       {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Sideways"}},
       "unknown behavior"},
      {"decoder", {{"type", "WordPiece"}}, "decoder WordPiece is not supported"},
      {"post_processor",
       {{"type", "BertProcessing"}},
       "post_processor BertProcessing is not supported"},
      {"truncation", {{"max_length", 8}}, "\"truncation\" settings are not supported"},
  };
  for (const auto& c : cases) {
    json j = tiny_tokenizer("ab", {}, json::array());
    j[c.key] = c.value;
    expect_error([&] { HfTokenizer::parse(j.dump(), "some/tokenizer.json"); },
                 {"some/tokenizer.json", c.needle});
  }
  json j = tiny_tokenizer("ab", {}, json::array());
  j["model"]["type"] = "WordPiece";
  expect_error([&] { HfTokenizer::parse(j.dump(), "x.json"); },
               {"x.json", "model WordPiece is not supported"});
  j = tiny_tokenizer("ab", {}, json::array());
  j["model"]["merges"] = json::array({"a c"});
  expect_error([&] { HfTokenizer::parse(j.dump(), "x.json"); },
               {"x.json", "not in the vocabulary"});
  j = tiny_tokenizer("ab", {}, json::array());
  j["model"]["vocab"]["c"] = "three";
  expect_error([&] { HfTokenizer::parse(j.dump(), "x.json"); },
               {"x.json", "vocab id of c is not an integer"});
  j = tiny_tokenizer("ab", {}, json::array());
  j["model"]["merges"] = json::array({json::array({"a", "b", "c"})});
  expect_error([&] { HfTokenizer::parse(j.dump(), "x.json"); }, {"x.json", "not two tokens"});
  j = tiny_tokenizer("ab", {}, json::array());
  j["model"].erase("merges");
  expect_error([&] { HfTokenizer::parse(j.dump(), "x.json"); }, {"x.json", "missing \"merges\""});
  j = tiny_tokenizer("ab", {}, json::array());
  j["model"]["unk_token"] = "<unk>";
  expect_error([&] { HfTokenizer::parse(j.dump(), "x.json"); }, {"unk_token \"<unk>\""});
}

TEST(TokenizerFactory, PicksTheFormat) {
  const auto data = testing::shared_data_dir();
  if (data.empty()) GTEST_SKIP() << "../shared/data is absent";
  auto a = load_tokenizer((data / "tokenizers/llama3_1").string());
  EXPECT_EQ(a->bos_id(), 128000);
  EXPECT_EQ(a->eos_id(), 128009);  // <|eot_id|> from tokenizer_config.json
  EXPECT_EQ(a->vocab_size(), 128256u);
  EXPECT_EQ(a->token_to_id("<|eot_id|>"), 128009);
  auto b = load_tokenizer((data / "tokenizers/llama2/tokenizer.model").string());
  EXPECT_EQ(b->bos_id(), 1);
  auto c = load_tokenizer((data / "models/stories260K/tok512.bin").string());
  EXPECT_EQ(c->vocab_size(), 512u);
  auto g = load_tokenizer((data / "tokenizers/gemma3").string());
  EXPECT_EQ(g->bos_id(), 2);
  EXPECT_EQ(g->eos_id(), g->token_to_id("<end_of_turn>"));
  EXPECT_EQ(g->vocab_size(), 262145u);  // 262144 model tokens + <image_soft_token>
}

}  // namespace
}  // namespace qsweep::model
