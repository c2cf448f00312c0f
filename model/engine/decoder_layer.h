#pragma once
// One decoder layer on its own: loading it from a checkpoint and running it
// over a batch of sequences. The Transformer is built from these; layer-wise
// quantization (quant/layerwise.h) streams a model through them one layer at
// a time, so that only one layer's weights are in memory.

#include <memory>
#include <vector>

#include "model/checkpoint/config.h"
#include "model/engine/attention.h"
#include "model/engine/linear.h"
#include "model/engine/mlp.h"
#include "model/engine/rope.h"
#include "model/engine/workspace.h"

namespace qsweep::model {

class Checkpoint;

struct TransformerLayer {
  std::vector<float> attn_norm, ffn_norm;  // [d] (Gemma: stored w, applied as 1 + w)
  Attention attn;
  Mlp mlp;
};

/// Decoder layer `l` of `ckpt` (norms read as fp32, Linears built by
/// `loader`). Its attention uses KV cache slot `cache_slot` (the layer index
/// in a whole model; 0 when a layer runs alone with one-slot caches). Throws
/// std::runtime_error naming the tensor on missing tensors or bad shapes.
TransformerLayer load_decoder_layer(const Checkpoint& ckpt, const ModelConfig& c, int l,
                                    const LinearLoader& loader, int cache_slot);

/// Tensor `name` as fp32, which must have `n` elements (norm weights); throws
/// naming the folder and tensor otherwise.
std::vector<float> load_vector(const Checkpoint& ckpt, const std::string& name, int n);

/// Whether lm_head is the embedding (tie_word_embeddings); throws when it is
/// not tied and the checkpoint has no lm_head.weight.
bool lm_head_is_tied(const Checkpoint& ckpt, const ModelConfig& c);

/// The embedding table [vocab, d] as fp32. Throws on a wrong shape.
std::shared_ptr<AlignedVec> load_embedding(const Checkpoint& ckpt, const ModelConfig& c);

/// x [n, d] = table[ids[i]] (times sqrt(d) for Gemma, in fp32).
void embed_tokens(const AlignedVec& table, const ModelConfig& c, const int* ids, int n, float* x);

/// x [n_rows, d] += attn(norm(x)); x += mlp(norm(x)), in place. h, y are
/// scratch [n_rows, d]. Appends each segment's keys/values to its cache at
/// slot L.attn.layer without advancing the cache length (the caller does).
/// pos [n_rows]: absolute positions.
void decoder_layer_forward(const TransformerLayer& L, const ModelConfig& c, const Rope& rope,
                           float* x, float* h, float* y, int n_rows, std::vector<Segment>& segs,
                           const int* pos, Workspace& ws);

}  // namespace qsweep::model
