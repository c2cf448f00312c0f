#include "model/checkpoint/config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/testutil.h"

namespace qsweep::model {
namespace {

std::filesystem::path fixtures() {
  const char* s = std::getenv("QSWEEP_SOURCE_DIR");
  return std::filesystem::path(s ? s : ".") / "tests/fixtures/models";
}

std::string error_of(const std::string& text) {
  try {
    parse_model_config(text, "/m/config.json");
    return "";
  } catch (const std::runtime_error& e) {
    return e.what();
  }
}

nlohmann::json base() {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"vocab_size", 100},
          {"hidden_size", 64},
          {"intermediate_size", 128},
          {"num_hidden_layers", 2},
          {"num_attention_heads", 4}};
}

TEST(ModelConfig, FixturesOfEveryArchitecture) {
  const ModelConfig l2 = load_model_config(fixtures() / "llama2/config.json");
  EXPECT_EQ(l2.arch, Arch::kLlama);
  EXPECT_EQ(l2.n_head_kv, 4);
  EXPECT_EQ(l2.head_dim, 8);
  EXPECT_EQ(l2.rope.type, RopeType::kDefault);
  EXPECT_FALSE(l2.tie_word_embeddings);
  EXPECT_DOUBLE_EQ(l2.rms_norm_eps, 1e-5);

  const ModelConfig l3 = load_model_config(fixtures() / "llama3/config.json");
  EXPECT_EQ(l3.rope.type, RopeType::kLlama3);
  EXPECT_DOUBLE_EQ(l3.rope.theta, 500000.0);
  EXPECT_DOUBLE_EQ(l3.rope.factor, 8.0);
  EXPECT_EQ(l3.rope.original_max_position, 8192);
  EXPECT_TRUE(l3.tie_word_embeddings);
  EXPECT_EQ(l3.torch_dtype, "bfloat16");

  const ModelConfig mi = load_model_config(fixtures() / "mistral/config.json");
  EXPECT_EQ(mi.arch, Arch::kMistral);
  EXPECT_EQ(mi.sliding_window, 4096);

  const ModelConfig ge = load_model_config(fixtures() / "gemma/config.json");
  EXPECT_EQ(ge.arch, Arch::kGemma);
  EXPECT_EQ(ge.n_head_kv, 1);
  EXPECT_EQ(ge.head_dim, 16);  // != hidden / heads = 8
  EXPECT_EQ(ge.act, Activation::kGeluTanh);
  EXPECT_TRUE(ge.norm_plus_one);
  EXPECT_TRUE(ge.embed_scale);

  const ModelConfig qw = load_model_config(fixtures() / "qwen2/config.json");
  EXPECT_EQ(qw.arch, Arch::kQwen2);
  EXPECT_TRUE(qw.attention_bias);
  EXPECT_DOUBLE_EQ(qw.rope.theta, 1e6);
}

TEST(ModelConfig, LegacyRopeKeysAndDefaults) {
  auto j = base();
  j["rope_theta"] = 500000.0;
  j["rope_scaling"] = {{"type", "llama3"},
                       {"factor", 32.0},
                       {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 8192}};
  ModelConfig c = parse_model_config(j.dump());
  EXPECT_EQ(c.rope.type, RopeType::kLlama3);
  EXPECT_DOUBLE_EQ(c.rope.factor, 32.0);
  EXPECT_DOUBLE_EQ(c.rope.theta, 500000.0);
  EXPECT_EQ(c.n_head_kv, 4);  // default = heads
  EXPECT_EQ(c.head_dim, 16);  // default hidden / heads
  j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2.0}};
  c = parse_model_config(j.dump());
  EXPECT_EQ(c.rope.type, RopeType::kLinear);
  j["rope_scaling"] = nullptr;
  EXPECT_EQ(parse_model_config(j.dump()).rope.type, RopeType::kDefault);
  j["eos_token_id"] = {128001, 128009};
  EXPECT_EQ(parse_model_config(j.dump()).eos_token_ids, (std::vector<int>{128001, 128009}));
}

TEST(ModelConfig, ErrorsNameTheKey) {
  auto j = base();
  j["architectures"] = {"GPTNeoXForCausalLM"};
  EXPECT_EQ(
      error_of(j.dump()),
      "unsupported architecture 'GPTNeoXForCausalLM' (/m/config.json 'architectures'); supported: "
      "LlamaForCausalLM, MistralForCausalLM, GemmaForCausalLM, Qwen2ForCausalLM");
  j = base();
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  EXPECT_EQ(error_of(j.dump()),
            "/m/config.json: 'rope_scaling' has unsupported rope type 'yarn'; supported: default, "
            "linear, llama3");
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
  EXPECT_EQ(error_of(j.dump()),
            "/m/config.json: 'rope_scaling' of type llama3 needs 'low_freq_factor'");
  j = base();
  j["num_key_value_heads"] = 3;
  EXPECT_NE(error_of(j.dump()).find("num_key_value_heads (3) must divide"), std::string::npos);
  j = base();
  j.erase("hidden_size");
  EXPECT_EQ(error_of(j.dump()), "/m/config.json: missing required key 'hidden_size'");
  j = base();
  j["hidden_act"] = "relu2";
  EXPECT_NE(error_of(j.dump()).find("unsupported activation 'relu2'"), std::string::npos);
  EXPECT_NE(error_of("{").find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of("{}").find("missing 'architectures'"), std::string::npos);
}

TEST(ModelConfig, JsonRoundTrip) {
  ModelConfig c = load_model_config(fixtures() / "llama3/config.json");
  ModelConfig d = parse_model_config(model_config_to_json(c));
  EXPECT_EQ(d.rope.type, RopeType::kLlama3);
  EXPECT_EQ(d.n_head_kv, c.n_head_kv);
  EXPECT_EQ(d.tie_word_embeddings, c.tie_word_embeddings);
  EXPECT_DOUBLE_EQ(d.rope.high_freq_factor, 4.0);
}

}  // namespace
}  // namespace qsweep::model
