#include "model/checkpoint/config.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace qsweep::model {
namespace {

using nlohmann::json;

struct Ctx {
  const std::string& path;
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(path + ": " + what);
  }
};

int get_int(const Ctx& c, const json& j, const char* key, std::optional<int> def) {
  if (!j.contains(key) || j[key].is_null()) {
    if (def) return *def;
    c.fail(std::string("missing required key '") + key + "'");
  }
  const json& v = j[key];
  if (!v.is_number_integer()) c.fail(std::string("'") + key + "' must be an integer");
  const int64_t x = v.get<int64_t>();
  if (x < 0 || x > INT32_MAX)
    c.fail(std::string("'") + key + "' out of range: " + std::to_string(x));
  return static_cast<int>(x);
}

double get_num(const Ctx& c, const json& j, const char* key, double def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_number()) c.fail(std::string("'") + key + "' must be a number");
  return j[key].get<double>();
}

bool get_bool(const Ctx& c, const json& j, const char* key, bool def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_boolean()) c.fail(std::string("'") + key + "' must be true or false");
  return j[key].get<bool>();
}

Activation parse_act(const Ctx& c, const std::string& s, const char* key) {
  if (s == "silu" || s == "swish") return Activation::kSilu;
  if (s == "gelu_pytorch_tanh" || s == "gelu_new" || s == "gelu_fast") return Activation::kGeluTanh;
  if (s == "gelu") return Activation::kGelu;
  c.fail(std::string("unsupported activation '") + s + "' ('" + key +
         "'); supported: silu, gelu_pytorch_tanh, gelu");
}

/// rope_scaling (legacy) or rope_parameters (transformers 5); `r` is an object.
void parse_rope(const Ctx& c, const json& r, const char* key, RopeConfig* rope) {
  std::string type = "default";
  if (r.contains("rope_type") && r["rope_type"].is_string())
    type = r["rope_type"].get<std::string>();
  else if (r.contains("type") && r["type"].is_string())
    type = r["type"].get<std::string>();
  if (r.contains("rope_theta")) rope->theta = get_num(c, r, "rope_theta", rope->theta);
  const std::string where = std::string("'") + key + "'";
  if (type == "default") {
    rope->type = RopeType::kDefault;
  } else if (type == "linear") {
    rope->type = RopeType::kLinear;
    if (!r.contains("factor")) c.fail(where + " of type linear needs 'factor'");
    rope->factor = get_num(c, r, "factor", 1.0);
  } else if (type == "llama3") {
    rope->type = RopeType::kLlama3;
    for (const char* k :
         {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"})
      if (!r.contains(k)) c.fail(where + " of type llama3 needs '" + k + "'");
    rope->factor = get_num(c, r, "factor", 8.0);
    rope->low_freq_factor = get_num(c, r, "low_freq_factor", 1.0);
    rope->high_freq_factor = get_num(c, r, "high_freq_factor", 4.0);
    rope->original_max_position = get_int(c, r, "original_max_position_embeddings", 8192);
    if (!(rope->high_freq_factor > rope->low_freq_factor))
      c.fail(where + ": high_freq_factor must exceed low_freq_factor");
  } else {
    c.fail(where + " has unsupported rope type '" + type + "'; supported: default, linear, llama3");
  }
  if (!(rope->factor > 0) || !std::isfinite(rope->factor))
    c.fail(where + ": 'factor' must be positive");
}

const char* arch_name(Arch a) {
  switch (a) {
    case Arch::kLlama:
      return "LlamaForCausalLM";
    case Arch::kMistral:
      return "MistralForCausalLM";
    case Arch::kGemma:
      return "GemmaForCausalLM";
    case Arch::kQwen2:
      return "Qwen2ForCausalLM";
  }
  return "?";
}

}  // namespace

std::string supported_architectures() {
  return "LlamaForCausalLM, MistralForCausalLM, GemmaForCausalLM, Qwen2ForCausalLM";
}

ModelConfig parse_model_config(const std::string& text, const std::string& path) {
  const Ctx c{path};
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    c.fail(std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object()) c.fail("not a JSON object");
  ModelConfig m;
  if (!j.contains("architectures") || !j["architectures"].is_array() ||
      j["architectures"].empty() || !j["architectures"][0].is_string())
    c.fail("missing 'architectures' (a list naming the model class, e.g. [\"LlamaForCausalLM\"])");
  m.architecture = j["architectures"][0].get<std::string>();
  if (m.architecture == "LlamaForCausalLM")
    m.arch = Arch::kLlama;
  else if (m.architecture == "MistralForCausalLM")
    m.arch = Arch::kMistral;
  else if (m.architecture == "GemmaForCausalLM")
    m.arch = Arch::kGemma;
  else if (m.architecture == "Qwen2ForCausalLM")
    m.arch = Arch::kQwen2;
  else
    throw std::runtime_error("unsupported architecture '" + m.architecture + "' (" + path +
                             " 'architectures'); supported: " + supported_architectures());

  m.vocab_size = get_int(c, j, "vocab_size", std::nullopt);
  m.n_embd = get_int(c, j, "hidden_size", std::nullopt);
  m.n_ff = get_int(c, j, "intermediate_size", std::nullopt);
  m.n_layer = get_int(c, j, "num_hidden_layers", std::nullopt);
  m.n_head = get_int(c, j, "num_attention_heads", std::nullopt);
  if (m.vocab_size <= 0 || m.n_embd <= 0 || m.n_ff <= 0 || m.n_layer <= 0 || m.n_head <= 0)
    c.fail(
        "vocab_size, hidden_size, intermediate_size, num_hidden_layers and num_attention_heads "
        "must be positive");
  m.n_head_kv = get_int(c, j, "num_key_value_heads", m.n_head);
  if (m.n_head_kv <= 0 || m.n_head % m.n_head_kv != 0)
    c.fail("num_key_value_heads (" + std::to_string(m.n_head_kv) +
           ") must divide num_attention_heads (" + std::to_string(m.n_head) + ")");
  if (j.contains("head_dim") && !j["head_dim"].is_null()) {
    m.head_dim = get_int(c, j, "head_dim", std::nullopt);
  } else {
    if (m.n_embd % m.n_head != 0)
      c.fail("hidden_size is not a multiple of num_attention_heads and no 'head_dim'");
    m.head_dim = m.n_embd / m.n_head;
  }
  if (m.head_dim <= 0 || m.head_dim % 2 != 0) c.fail("'head_dim' must be positive and even");
  m.rms_norm_eps = get_num(c, j, "rms_norm_eps", 1e-6);
  m.max_position_embeddings = get_int(c, j, "max_position_embeddings", 2048);

  // RoPE: transformers 5 `rope_parameters`, else legacy rope_theta + rope_scaling.
  m.rope.theta = get_num(c, j, "rope_theta", 10000.0);
  if (j.contains("rope_parameters") && !j["rope_parameters"].is_null()) {
    if (!j["rope_parameters"].is_object()) c.fail("'rope_parameters' must be an object");
    parse_rope(c, j["rope_parameters"], "rope_parameters", &m.rope);
  } else if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    if (!j["rope_scaling"].is_object()) c.fail("'rope_scaling' must be an object or null");
    parse_rope(c, j["rope_scaling"], "rope_scaling", &m.rope);
  }
  if (!(m.rope.theta > 0)) c.fail("'rope_theta' must be positive");

  m.tie_word_embeddings = get_bool(c, j, "tie_word_embeddings", m.arch == Arch::kGemma);
  // Gemma reads hidden_activation (falling back to gelu_pytorch_tanh); others hidden_act.
  if (m.arch == Arch::kGemma) {
    if (j.contains("hidden_activation") && j["hidden_activation"].is_string())
      m.act = parse_act(c, j["hidden_activation"].get<std::string>(), "hidden_activation");
    else
      m.act = Activation::kGeluTanh;
  } else {
    if (j.contains("hidden_act") && !j["hidden_act"].is_null()) {
      if (!j["hidden_act"].is_string()) c.fail("'hidden_act' must be a string");
      m.act = parse_act(c, j["hidden_act"].get<std::string>(), "hidden_act");
    }
  }
  // Biases as transformers builds them: Qwen2 always has q/k/v biases; Mistral never; Llama and
  // Gemma follow attention_bias (o_proj too).
  m.attention_bias = m.arch == Arch::kQwen2     ? true
                     : m.arch == Arch::kMistral ? false
                                                : get_bool(c, j, "attention_bias", false);
  m.mlp_bias = m.arch == Arch::kLlama ? get_bool(c, j, "mlp_bias", false) : false;
  if (m.arch == Arch::kMistral && j.contains("sliding_window") && !j["sliding_window"].is_null())
    m.sliding_window = get_int(c, j, "sliding_window", 0);
  if (m.arch == Arch::kQwen2 && get_bool(c, j, "use_sliding_window", false))
    c.fail("'use_sliding_window': true is not supported for Qwen2");
  m.norm_plus_one = m.embed_scale = m.arch == Arch::kGemma;
  m.bos_token_id = j.contains("bos_token_id") && j["bos_token_id"].is_number_integer()
                       ? j["bos_token_id"].get<int>()
                       : -1;
  if (j.contains("eos_token_id")) {
    const json& e = j["eos_token_id"];
    if (e.is_number_integer())
      m.eos_token_ids.push_back(e.get<int>());
    else if (e.is_array())
      for (const json& x : e)
        if (x.is_number_integer()) m.eos_token_ids.push_back(x.get<int>());
  }
  for (const char* k : {"torch_dtype", "dtype"})
    if (j.contains(k) && j[k].is_string()) m.torch_dtype = j[k].get<std::string>();
  return m;
}

ModelConfig load_model_config(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f)
    throw std::runtime_error(path.string() +
                             ": cannot open (a Hugging Face model folder needs config.json)");
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_model_config(ss.str(), path.string());
}

std::string model_config_to_json(const ModelConfig& m) {
  json j;
  j["architectures"] = {arch_name(m.arch)};
  static const char* types[] = {"llama", "mistral", "gemma", "qwen2"};
  j["model_type"] = types[static_cast<int>(m.arch)];
  j["vocab_size"] = m.vocab_size;
  j["hidden_size"] = m.n_embd;
  j["intermediate_size"] = m.n_ff;
  j["num_hidden_layers"] = m.n_layer;
  j["num_attention_heads"] = m.n_head;
  j["num_key_value_heads"] = m.n_head_kv;
  j["head_dim"] = m.head_dim;
  j["rms_norm_eps"] = m.rms_norm_eps;
  j["rope_theta"] = m.rope.theta;
  if (m.rope.type == RopeType::kDefault) {
    j["rope_scaling"] = nullptr;
  } else if (m.rope.type == RopeType::kLinear) {
    j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", m.rope.factor}};
  } else {
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", m.rope.factor},
                         {"low_freq_factor", m.rope.low_freq_factor},
                         {"high_freq_factor", m.rope.high_freq_factor},
                         {"original_max_position_embeddings", m.rope.original_max_position}};
  }
  j["tie_word_embeddings"] = m.tie_word_embeddings;
  static const char* acts[] = {"silu", "gelu_pytorch_tanh", "gelu"};
  j[m.arch == Arch::kGemma ? "hidden_activation" : "hidden_act"] = acts[static_cast<int>(m.act)];
  j["attention_bias"] = m.attention_bias;
  j["mlp_bias"] = m.mlp_bias;
  j["max_position_embeddings"] = m.max_position_embeddings;
  if (m.bos_token_id >= 0) j["bos_token_id"] = m.bos_token_id;
  if (m.eos_token_ids.size() == 1)
    j["eos_token_id"] = m.eos_token_ids[0];
  else if (!m.eos_token_ids.empty())
    j["eos_token_id"] = m.eos_token_ids;
  if (!m.torch_dtype.empty()) j["torch_dtype"] = m.torch_dtype;
  return j.dump(2) + "\n";
}

}  // namespace qsweep::model
