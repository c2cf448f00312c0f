#include "model/engine/decoder_layer.h"

#include <cmath>
#include <stdexcept>

#include "model/checkpoint/checkpoint.h"
#include "model/engine/kernel_assert.h"
#include "model/engine/norm.h"

namespace qsweep::model {
std::vector<float> load_vector(const Checkpoint& ckpt, const std::string& name, int n) {
  const TensorView& v = ckpt.view(name);
  if (v.numel() != n)
    throw std::runtime_error("model folder " + ckpt.dir().string() + ": tensor '" + name +
                             "' has " + std::to_string(v.numel()) +
                             " elements, config.json implies " + std::to_string(n));
  std::vector<float> out(n);
  ckpt.read_f32(name, out.data(), out.size());
  return out;
}

bool lm_head_is_tied(const Checkpoint& ckpt, const ModelConfig& c) {
  if (c.tie_word_embeddings) return true;
  if (ckpt.has("lm_head.weight")) return false;
  throw std::runtime_error("model folder " + ckpt.dir().string() +
                           ": tensor 'lm_head.weight' not found and config.json has tie_word_embeddings false");
}

TransformerLayer load_decoder_layer(const Checkpoint& ckpt, const ModelConfig& c, int l,
                                    const LinearLoader& loader, int cache_slot) {
  const int d = c.n_embd, qd = c.n_head * c.head_dim, kvd = c.n_head_kv * c.head_dim;
  const std::string p = "model.layers." + std::to_string(l) + ".";
  TransformerLayer L;
  L.attn_norm = load_vector(ckpt, p + "input_layernorm.weight", d);
  L.ffn_norm = load_vector(ckpt, p + "post_attention_layernorm.weight", d);
  L.attn.n_head = c.n_head;
  L.attn.n_head_kv = c.n_head_kv;
  L.attn.head_dim = c.head_dim;
  L.attn.sliding_window = c.sliding_window;
  L.attn.layer = cache_slot;
  L.attn.q = loader(ckpt, p + "self_attn.q_proj", qd, d, c.attention_bias);
  L.attn.k = loader(ckpt, p + "self_attn.k_proj", kvd, d, c.attention_bias);
  L.attn.v = loader(ckpt, p + "self_attn.v_proj", kvd, d, c.attention_bias);
  L.attn.o = loader(ckpt, p + "self_attn.o_proj", d, qd, has_o_proj_bias(c));
  L.mlp.act = c.act;
  L.mlp.gate = loader(ckpt, p + "mlp.gate_proj", c.n_ff, d, c.mlp_bias);
  L.mlp.up = loader(ckpt, p + "mlp.up_proj", c.n_ff, d, c.mlp_bias);
  L.mlp.down = loader(ckpt, p + "mlp.down_proj", d, c.n_ff, c.mlp_bias);
  return L;
}

std::shared_ptr<AlignedVec> load_embedding(const Checkpoint& ckpt, const ModelConfig& c) {
  const std::string name = "model.embed_tokens.weight";
  const TensorView& v = ckpt.view(name);
  if (v.shape.size() != 2 || v.shape[0] != c.vocab_size || v.shape[1] != c.n_embd)
    throw std::runtime_error("model folder " + ckpt.dir().string() + ": tensor '" + name +
                             "' does not have shape [vocab_size, hidden_size] = [" +
                             std::to_string(c.vocab_size) + ", " + std::to_string(c.n_embd) +
                             "]");
  auto e = std::make_shared<AlignedVec>(size_t(c.vocab_size) * c.n_embd);
  ckpt.read_f32(name, e->data(), e->size());
  return e;
}

void embed_tokens(const AlignedVec& table, const ModelConfig& c, const int* ids, int n, float* x) {
  const int d = c.n_embd;
  const float scale = c.embed_scale ? std::sqrt(static_cast<float>(d)) : 1.0f;
  for (int r = 0; r < n; ++r) {
    QSWEEP_KASSERT(ids[r] >= 0 && ids[r] < c.vocab_size);
    const float* e = table.data() + size_t(ids[r]) * d;
    for (int i = 0; i < d; ++i) x[size_t(r) * d + i] = e[i] * scale;
  }
}

void decoder_layer_forward(const TransformerLayer& L, const ModelConfig& c, const Rope& rope,
                           float* x, float* h, float* y, int n_rows, std::vector<Segment>& segs,
                           const int* pos, Workspace& ws) {
  const int d = c.n_embd;
  const size_t n = size_t(n_rows) * d;
  const float eps = static_cast<float>(c.rms_norm_eps);
  rms_norm(x, h, n_rows, d, L.attn_norm.data(), eps, c.norm_plus_one);
  L.attn.forward(h, y, n_rows, segs, pos, rope, ws);
  for (size_t i = 0; i < n; ++i) x[i] += y[i];
  rms_norm(x, h, n_rows, d, L.ffn_norm.data(), eps, c.norm_plus_one);
  L.mlp.forward(h, y, n_rows, ws);
  for (size_t i = 0; i < n; ++i) x[i] += y[i];
}

}  // namespace qsweep::model
