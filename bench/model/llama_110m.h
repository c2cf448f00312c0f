#pragma once
// The synthetic 110M-class Llama of the engine and evaluation benchmarks
// (and llama_1b(), the GPU benchmarks' 1B-class shapes):
// hidden 768, 12 layers, 12 heads (no GQA), intermediate 2048, vocab 32000
// (the Llama-2 tokenizer's), 2048 positions; weights are random (seeded).

#include "model/checkpoint/config.h"

namespace qsweep::model {

inline ModelConfig llama_110m() {
  ModelConfig c;
  c.arch = Arch::kLlama;
  c.architecture = "LlamaForCausalLM";
  c.vocab_size = 32000;
  c.n_embd = 768;
  c.n_ff = 2048;
  c.n_layer = 12;
  c.n_head = 12;
  c.n_head_kv = 12;
  c.head_dim = 64;
  c.rms_norm_eps = 1e-5;
  c.max_position_embeddings = 2048;
  c.bos_token_id = 1;
  return c;
}

/// The 1B-class shapes of the GPU benchmarks (Llama 3.2 1B's: hidden 2048,
/// 16 layers, GQA 32/8 heads of 64, intermediate 8192, vocab 128,256, tied
/// embeddings), as experiments/models/synthetic_llama_1b.json.
inline ModelConfig llama_1b() {
  ModelConfig c = llama_110m();
  c.vocab_size = 128256;
  c.n_embd = 2048;
  c.n_ff = 8192;
  c.n_layer = 16;
  c.n_head = 32;
  c.n_head_kv = 8;
  c.head_dim = 64;
  c.tie_word_embeddings = true;
  c.rope.theta = 500000;
  c.bos_token_id = 128000;
  return c;
}

}  // namespace qsweep::model
