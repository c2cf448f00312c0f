#pragma once
// llama2.c checkpoints (karpathy/llama2.c `run.c` format, fp32, little-endian):
//   7 x int32 header: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
//                     (vocab_size < 0: the classifier is a separate tensor)
//   fp32 tensors in order: token_embedding[vocab,dim], rms_att[L,dim], wq[L,dim,dim],
//   wk[L,kv_dim,dim], wv[L,kv_dim,dim], wo[L,dim,dim], rms_ffn[L,dim], w1[L,hidden,dim],
//   w2[L,dim,hidden], w3[L,hidden,dim], rms_final[dim], 2 x seq_len*head_size/2 legacy
//   RoPE tables (skipped), then wcls[vocab,dim] when untied.
// llama2.c rotates interleaved pairs (x[2i], x[2i+1]); Hugging Face Llama rotates
// halves (x[i], x[i+hd/2]), so import permutes the rows of wq and wk per head.
//
// Error policy: functions throw std::runtime_error naming the file.

#include <cstdint>
#include <filesystem>
#include <vector>

namespace qsweep::model {

struct Llama2cModel {
  int dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0,
      seq_len = 0;
  bool shared_classifier = true;       // header vocab_size > 0
  std::vector<float> token_embedding;  // [vocab, dim]
  std::vector<float> rms_att;          // [L, dim]
  std::vector<float> wq;               // [L, dim, dim]
  std::vector<float> wk;               // [L, kv_dim, dim]
  std::vector<float> wv;               // [L, kv_dim, dim]
  std::vector<float> wo;               // [L, dim, dim]
  std::vector<float> rms_ffn;          // [L, dim]
  std::vector<float> w1;               // [L, hidden, dim]
  std::vector<float> w2;               // [L, dim, hidden]
  std::vector<float> w3;               // [L, hidden, dim]
  std::vector<float> rms_final;        // [dim]
  std::vector<float> wcls;             // [vocab, dim], empty when shared
  int head_size() const { return dim / n_heads; }
  int kv_dim() const { return n_kv_heads * head_size(); }
};

/// Reads and validates a llama2.c checkpoint (header sanity, sizes vs file size).
Llama2cModel read_llama2c(const std::filesystem::path& path);

/// Permutes the rows of a [n_heads * head_dim, cols] projection from
/// interleaved RoPE pairs to rotate-half order (HF Llama), per head.
std::vector<float> permute_rope_rows(const std::vector<float>& w, int n_heads, int rows, int cols);

/// Writes a Hugging Face Llama folder to `out_dir`: model.safetensors (fp32,
/// wq/wk permuted), config.json (LlamaForCausalLM) and generation_config.json.
/// `tokenizer_bin` (a llama2.c tok*.bin) must exist when non-empty; tokenizer
/// files are written by the tokenizer part, not here.
void import_llama2c(const std::filesystem::path& bin, const std::filesystem::path& tokenizer_bin,
                    const std::filesystem::path& out_dir);

}  // namespace qsweep::model
