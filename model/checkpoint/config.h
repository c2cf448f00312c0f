#pragma once
// config.json of a Hugging Face causal LM -> ModelConfig.
//
// Supported architectures: LlamaForCausalLM, MistralForCausalLM,
// GemmaForCausalLM, Qwen2ForCausalLM. Both config generations are read: the
// legacy `rope_theta` + `rope_scaling` keys (transformers < 5, most Hub
// checkpoints) and transformers 5's `rope_parameters`.
//
// Error policy: parse_model_config throws std::runtime_error with a message
// naming config.json and the offending key.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace qsweep::model {

enum class Arch { kLlama, kMistral, kGemma, kQwen2 };
enum class Activation { kSilu, kGeluTanh, kGelu };
enum class RopeType { kDefault, kLinear, kLlama3 };

/// RoPE frequency parameters (transformers' modeling_rope_utils).
struct RopeConfig {
  RopeType type = RopeType::kDefault;
  double theta = 10000.0;
  double factor = 1.0;               // linear, llama3
  double low_freq_factor = 1.0;      // llama3
  double high_freq_factor = 4.0;     // llama3
  int original_max_position = 8192;  // llama3
};

struct ModelConfig {
  Arch arch = Arch::kLlama;
  std::string architecture;  // the config.json name, e.g. "LlamaForCausalLM"
  int vocab_size = 0;
  int n_embd = 0;     // hidden_size
  int n_ff = 0;       // intermediate_size
  int n_layer = 0;    // num_hidden_layers
  int n_head = 0;     // num_attention_heads
  int n_head_kv = 0;  // num_key_value_heads (default n_head)
  int head_dim = 0;   // default n_embd / n_head
  double rms_norm_eps = 1e-6;
  RopeConfig rope;
  bool tie_word_embeddings = false;
  Activation act = Activation::kSilu;
  bool attention_bias =
      false;  // q/k/v biases (and o for Llama/Gemma); Qwen2: q/k/v always; Mistral: never
  bool mlp_bias = false;
  int max_position_embeddings = 2048;
  int sliding_window = 0;      // 0: none (Mistral uses it when set)
  bool norm_plus_one = false;  // Gemma: RMSNorm scales by (1 + w)
  bool embed_scale = false;    // Gemma: embeddings times sqrt(n_embd)
  int bos_token_id = -1;       // -1: not given
  std::vector<int> eos_token_ids;
  std::string torch_dtype;  // "float32", "bfloat16", ... ("" if absent)
};

/// Whether o_proj has a bias: Llama and Gemma with attention_bias (Qwen2's
/// q/k/v biases come without one, Mistral has none).
inline bool has_o_proj_bias(const ModelConfig& c) {
  return (c.arch == Arch::kLlama || c.arch == Arch::kGemma) && c.attention_bias;
}

/// Parses the text of a config.json; `path` is used in messages only.
ModelConfig parse_model_config(const std::string& json_text,
                               const std::string& path = "config.json");
/// Reads and parses a config.json file.
ModelConfig load_model_config(const std::filesystem::path& path);
/// Writes the config as a Hugging Face config.json (used by import).
std::string model_config_to_json(const ModelConfig& c);

/// The names accepted in `architectures`, comma-separated (for messages).
std::string supported_architectures();

}  // namespace qsweep::model
