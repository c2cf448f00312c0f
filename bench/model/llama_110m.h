#pragma once
// The synthetic 110M-class Llama of the engine and evaluation benchmarks:
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

}  // namespace qsweep::model
