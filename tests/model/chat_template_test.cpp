// Chat templates against transformers' apply_chat_template renderings
// (tests/fixtures/chat_templates.json and, for the official Hub templates
// recognized by SHA-256, tests/fixtures/chat_templates_official.json): text,
// ids, and errors.

#include "model/tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "model/tokenizer/hf_tokenizer.h"
#include "model/util/python_str.h"
#include "tests/testutil.h"

namespace qsweep::model {
namespace {

using nlohmann::json;

std::filesystem::path source_dir() {
  const char* s = std::getenv("QSWEEP_SOURCE_DIR");
  return s && *s ? std::filesystem::path(s) : std::filesystem::path(".");
}

json fixtures() {
  return json::parse(testing::read_file(source_dir() / "tests/fixtures/chat_templates.json"));
}

TEST(ChatTemplate, RecognizesKnownTemplates) {
  const json fx = fixtures();
  EXPECT_EQ(recognize_chat_template(fx["templates"]["llama2"]), ChatFamily::kLlama2);
  EXPECT_EQ(recognize_chat_template(fx["templates"]["vicuna_v1.1"]), ChatFamily::kVicuna);
  EXPECT_EQ(recognize_chat_template(fx["templates"]["chatml"]), ChatFamily::kChatML);
  // Outer whitespace and CRLF do not matter; anything else does.
  EXPECT_EQ(recognize_chat_template("\n" + fx["templates"]["chatml"].get<std::string>() + "\n"),
            ChatFamily::kChatML);
  EXPECT_EQ(recognize_chat_template("{{ messages }}"), std::nullopt);
  std::string t = fx["templates"]["chatml"];
  t.replace(t.find("helpful"), 7, "helpless");
  EXPECT_EQ(recognize_chat_template(t), std::nullopt);
}

TEST(ChatTemplate, MatchesTransformersRenderings) {
  const auto data = testing::shared_data_dir();
  if (data.empty())
    GTEST_SKIP() << "../shared/data is absent: chat template ids need its tokenizers";
  const json fx = fixtures();
  std::map<std::string, std::unique_ptr<HfTokenizer>> toks;
  std::map<std::string, std::unique_ptr<ChatTemplate>> configs;
  for (const char* name : {"llama3_1", "gemma3", "llama2"}) {
    const auto dir = data / "tokenizers" / name;
    toks[name] = HfTokenizer::load((dir / "tokenizer.json").string());
    // llama2's config has no template: the model family gives it.
    configs[name] = std::make_unique<ChatTemplate>(
        ChatTemplate::from_config((dir / "tokenizer_config.json").string(), ChatFamily::kLlama2));
  }
  EXPECT_EQ(configs["llama3_1"]->family(), ChatFamily::kLlama3);
  EXPECT_EQ(configs["gemma3"]->family(), ChatFamily::kGemma);
  EXPECT_EQ(configs["llama2"]->family(), ChatFamily::kLlama2);

  int n = 0;
  for (const auto& r : fx["renderings"]) {
    const std::string family = r["family"], tokname = r["tokenizer"];
    const ChatTemplate& cfg = *configs[tokname];
    // llama3_1 / gemma3 render their config's template; the others the named
    // family with the llama2 tokenizer's special tokens.
    const ChatTemplate tmpl = family == tokname ? cfg
                                                : ChatTemplate(*parse_chat_family(family),
                                                               cfg.bos_token(), cfg.eos_token());
    std::vector<ChatMessage> conv;
    for (const auto& m : fx["conversations"][r["conversation"].get<int>()]) {
      conv.push_back({m["role"], m["content"]});
    }
    const bool gen = r["add_generation_prompt"];
    const std::string where = family + " conversation " +
                              std::to_string(r["conversation"].get<int>()) + (gen ? " +gen" : "");
    if (r.contains("error")) {
      EXPECT_THROW(tmpl.render(conv, gen), std::runtime_error) << where;
      continue;
    }
    std::string text;
    ASSERT_NO_THROW(text = tmpl.render(conv, gen)) << where;
    EXPECT_EQ(text, r["text"].get<std::string>()) << where;
    EXPECT_EQ(tmpl.encode(*toks[tokname], conv, gen), r["ids"].get<std::vector<TokenId>>())
        << where;
    ++n;
  }
  EXPECT_EQ(n, 50);
}

json official_fixtures() {
  return json::parse(
      testing::read_file(source_dir() / "tests/fixtures/chat_templates_official.json"));
}

TEST(ChatTemplate, Sha256OfNormalizedTemplate) {
  const json fx = fixtures();
  const std::string chatml = fx["templates"]["chatml"];
  // hashlib.sha256(text.strip().encode()).hexdigest()
  const std::string want = "6b737edc9bdf87c9a813d73b32cdef9e8dd9ed562c5204ebbf3a64b48f87e64d";
  EXPECT_EQ(chat_template_sha256(chatml), want);
  EXPECT_EQ(chat_template_sha256("\r\n " + chatml + "\n\n"), want);
  EXPECT_EQ(chat_template_sha256(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(ChatTemplate, RecognizesOfficialTemplatesBySha256) {
  const json fx = official_fixtures();
  EXPECT_EQ(recognize_chat_template_sha256(fx["templates"]["llama3.1"]["sha256_normalized"].get<std::string>()),
            ChatFamily::kLlama31);
  EXPECT_EQ(recognize_chat_template_sha256(fx["templates"]["gemma1"]["sha256_normalized"].get<std::string>()),
            ChatFamily::kGemma1);
  EXPECT_EQ(recognize_chat_template_sha256(chat_template_sha256("{{ messages }}")), std::nullopt);
  EXPECT_EQ(parse_chat_family("llama3.1"), ChatFamily::kLlama31);
  EXPECT_EQ(parse_chat_family("gemma1"), ChatFamily::kGemma1);
  EXPECT_STREQ(chat_family_name(ChatFamily::kLlama31), "llama3.1");
  EXPECT_STREQ(chat_family_name(ChatFamily::kGemma1), "gemma1");
}

// With the real template texts at hand (QSWEEP_OFFICIAL_TEMPLATES, default
// <source>/.device/templates; git-ignored, see tests/fixtures/README.md), a
// tokenizer_config.json holding them maps to the families.
TEST(ChatTemplate, RecognizesOfficialTemplateTexts) {
  const char* env = std::getenv("QSWEEP_OFFICIAL_TEMPLATES");
  const std::filesystem::path dir =
      env && *env ? std::filesystem::path(env) : source_dir() / ".device/templates";
  const auto llama = dir / "llama3_1_instruct.jinja", gemma = dir / "gemma_it.jinja";
  if (!std::filesystem::exists(llama) || !std::filesystem::exists(gemma))
    GTEST_SKIP() << "the official template texts are not in " << dir;
  testing::TempDir tmp;
  for (const auto& [path, family] :
       {std::pair{llama, ChatFamily::kLlama31}, std::pair{gemma, ChatFamily::kGemma1}}) {
    const std::string text = testing::read_file(path);
    EXPECT_EQ(recognize_chat_template(text), family) << path;
    const auto cfg = tmp / "tokenizer_config.json";
    testing::write_file(
        cfg, json{{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"chat_template", text}}.dump());
    EXPECT_EQ(ChatTemplate::from_config(cfg.string(), std::nullopt).family(), family) << path;
    std::string changed = text;
    changed.insert(changed.size() / 2, " ");
    EXPECT_EQ(recognize_chat_template(changed), std::nullopt) << path;
  }
}

TEST(ChatTemplate, MatchesTransformersOfficialRenderings) {
  const auto data = testing::shared_data_dir();
  if (data.empty())
    GTEST_SKIP() << "../shared/data is absent: chat template ids need its tokenizers";
  const json fx = official_fixtures();
  // The same conversations as chat_templates.json.
  EXPECT_EQ(fx["conversations"], fixtures()["conversations"]);
  std::map<std::string, std::unique_ptr<HfTokenizer>> toks;
  std::map<std::string, std::pair<std::string, std::string>> special;  // bos, eos
  for (const char* name : {"llama3_1", "gemma3"}) {
    const auto dir = data / "tokenizers" / name;
    toks[name] = HfTokenizer::load((dir / "tokenizer.json").string());
    // The config's own template is not the official one: only bos/eos are used.
    const ChatTemplate cfg = ChatTemplate::from_config(
        (dir / "tokenizer_config.json").string(), std::nullopt);
    special[name] = {cfg.bos_token(), cfg.eos_token()};
  }
  int n = 0, errors = 0;
  for (const auto& r : fx["renderings"]) {
    const std::string family = r["family"], tokname = r["tokenizer"];
    ASSERT_TRUE(parse_chat_family(family)) << family;
    ChatTemplate tmpl(*parse_chat_family(family), special[tokname].first,
                      special[tokname].second);
    if (r.contains("date_string")) tmpl.set_date_string(r["date_string"]);
    std::vector<ChatMessage> conv;
    for (const auto& m : fx["conversations"][r["conversation"].get<int>()]) {
      conv.push_back({m["role"], m["content"]});
    }
    const bool gen = r["add_generation_prompt"];
    const std::string where = family + " conversation " +
                              std::to_string(r["conversation"].get<int>()) + (gen ? " +gen" : "") +
                              (r.contains("date_string") ? " date" : "");
    if (r.contains("error")) {
      try {
        tmpl.render(conv, gen);
        ADD_FAILURE() << where << ": expected " << r["error"];
      } catch (const std::runtime_error& e) {
        // transformers: "TemplateError: <the template's message>"
        const std::string want = r["error"];
        EXPECT_NE(want.find(e.what()), std::string::npos) << where << ": " << e.what();
      }
      ++errors;
      continue;
    }
    std::string text;
    ASSERT_NO_THROW(text = tmpl.render(conv, gen)) << where;
    EXPECT_EQ(text, r["text"].get<std::string>()) << where;
    EXPECT_EQ(tmpl.encode(*toks[tokname], conv, gen), r["ids"].get<std::vector<TokenId>>())
        << where;
    ++n;
  }
  EXPECT_EQ(n, 26);
  EXPECT_EQ(errors, 4);
}

TEST(ChatTemplate, OfficialTemplatesRejectWhatTheyDoNotRender) {
  const ChatTemplate llama(ChatFamily::kLlama31, "<|begin_of_text|>", "<|eot_id|>");
  const ChatTemplate gemma(ChatFamily::kGemma1, "<bos>", "<eos>");
  for (const char* role : {"tool", "ipython"}) {
    try {
      llama.render({{"user", "a"}, {role, "{}"}}, true);
      ADD_FAILURE() << role << " must be rejected";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("tool messages are not supported"), std::string::npos)
          << e.what();
    }
  }
  EXPECT_THROW(llama.render({}, true), std::runtime_error);
  EXPECT_THROW(gemma.render({}, true), std::runtime_error);
  EXPECT_THROW(gemma.render({{"user", "a"}, {"user", "b"}}, true), std::runtime_error);
  EXPECT_THROW(gemma.render({{"system", "s"}, {"user", "a"}}, true), std::runtime_error);
  EXPECT_EQ(llama.date_string(), "26 Jul 2024");
}

TEST(ChatTemplate, RejectsNonAlternatingRoles) {
  const ChatTemplate llama2(ChatFamily::kLlama2, "<s>", "</s>");
  const ChatTemplate gemma(ChatFamily::kGemma, "<bos>", "<eos>");
  const std::vector<ChatMessage> bad = {{"user", "a"}, {"user", "b"}};
  EXPECT_THROW(llama2.render(bad, true), std::runtime_error);
  EXPECT_THROW(gemma.render(bad, true), std::runtime_error);
  EXPECT_THROW(gemma.render({}, true), std::runtime_error);
}

TEST(ChatTemplate, UnknownTemplateInConfigIsAnError) {
  testing::TempDir dir;
  const auto cfg = dir / "tokenizer_config.json";
  testing::write_file(cfg,
                      R"({"bos_token": "<s>", "chat_template": "{{ messages[0]['content'] }}"})");
  try {
    ChatTemplate::from_config(cfg.string(), ChatFamily::kLlama2);
    FAIL() << "an unknown template must not fall back to the model family";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("chat template of " + cfg.string() + " is not one qsweep can render"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("pass chat_template: <family> explicitly"), std::string::npos) << msg;
  }
  testing::write_file(cfg, R"({"bos_token": "<s>"})");
  EXPECT_THROW(ChatTemplate::from_config(cfg.string(), std::nullopt), std::runtime_error);
  EXPECT_EQ(ChatTemplate::from_config(cfg.string(), ChatFamily::kVicuna).family(),
            ChatFamily::kVicuna);
}

TEST(ChatTemplate, PythonStrip) {
  EXPECT_EQ(python_strip("  a b \n"), "a b");
  EXPECT_EQ(python_strip("\xE3\x80\x80x\xC2\xA0"), "x");      // U+3000, U+00A0
  EXPECT_EQ(python_strip("\xE2\x80\x8Bx"), "\xE2\x80\x8Bx");  // U+200B is not whitespace
  EXPECT_EQ(python_strip(""), "");
  // rstrip keeps the leading whitespace (lm-eval _encode_pair moves only the trailing part).
  EXPECT_EQ(python_rstrip(" a\t\xC2\xA0\n"), " a");
  EXPECT_EQ(python_rstrip("Answer:\xE3\x80\x80"), "Answer:");
  EXPECT_EQ(python_rstrip("x\xE2\x80\x8B"), "x\xE2\x80\x8B");
  EXPECT_EQ(python_rstrip("\n\n"), "");
  EXPECT_EQ(python_rstrip("\xFF "), "\xFF") << "an invalid byte is not whitespace";
}

}  // namespace
}  // namespace qsweep::model
