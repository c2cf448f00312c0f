#pragma once
// The decoder-only transformer shared by Llama, Mistral, Gemma and Qwen2:
//   x = embed(ids) [* sqrt(d) for Gemma]
//   per layer: x += attn(norm(x)); x += mlp(norm(x))
//   logits = lm_head(norm(x))  (lm_head tied to the embedding when configured)
// The architectures differ only in config flags (ModelConfig).

#include <memory>
#include <vector>

#include "model/checkpoint/config.h"
#include "model/engine/decoder_layer.h"
#include "model/engine/kv_cache.h"

namespace qsweep::model {

class Checkpoint;

class Transformer {
 public:
  /// Loads every weight (converted to fp32 by the default loader). Throws
  /// std::runtime_error naming the tensor on missing tensors or bad shapes.
  Transformer(const Checkpoint& ckpt, const LinearLoader& loader);
  /// Builds a model with random weights N(0, std^2) (norm weights 1 / 0 for
  /// Gemma) for benchmarks and tests; deterministic in `seed`.
  Transformer(const ModelConfig& cfg, uint64_t seed, float std = 0.02f);

  const ModelConfig& config() const { return cfg_; }
  /// A fresh empty cache for one sequence.
  KvCache new_cache() const { return KvCache(cfg_.n_layer, cfg_.n_head_kv * cfg_.head_dim); }
  /// Runs ids [n_rows] (segment s owns rows segs[s].row0 ..) through the
  /// model, appending each segment's tokens to its cache (len advanced), and
  /// writes logits [out_rows.size(), vocab] of the listed batch rows.
  void forward(const int* ids, int n_rows, std::vector<Segment>& segs,
               const std::vector<int>& out_rows, float* logits) const;
  /// Bytes of weights read per decoded token (all layers + lm_head).
  size_t weight_bytes_per_token() const;

 private:
  ModelConfig cfg_;
  std::shared_ptr<AlignedVec> embed_;  // [vocab, d]
  std::vector<TransformerLayer> layers_;
  std::vector<float> final_norm_;    // [d]
  std::unique_ptr<Linear> lm_head_;  // [vocab, d]
  std::unique_ptr<Rope> rope_;
};

}  // namespace qsweep::model
