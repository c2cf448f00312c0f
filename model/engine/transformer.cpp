#include "model/engine/transformer.h"

#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>

#include "model/checkpoint/checkpoint.h"
#include "model/engine/kernel_assert.h"
#include "model/engine/norm.h"

namespace qsweep::model {

Transformer::Transformer(const Checkpoint& ckpt, const LinearLoader& loader) : cfg_(ckpt.config()) {
  const ModelConfig& c = cfg_;
  const int d = c.n_embd;
  embed_ = load_embedding(ckpt, c);
  for (int l = 0; l < c.n_layer; ++l) layers_.push_back(load_decoder_layer(ckpt, c, l, loader, l));
  final_norm_ = load_vector(ckpt, "model.norm.weight", d);
  if (lm_head_is_tied(ckpt, c))
    lm_head_ = std::make_unique<DenseLinear>(embed_, c.vocab_size, d);
  else
    lm_head_ = loader(ckpt, "lm_head", c.vocab_size, d, false);
  rope_ = std::make_unique<Rope>(c.rope, c.head_dim);
}

Transformer::Transformer(const ModelConfig& cfg, uint64_t seed, float stdev) : cfg_(cfg) {
  const ModelConfig& c = cfg_;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, stdev);
  auto rand_mat = [&](int out, int in) {
    auto w = std::make_shared<AlignedVec>(size_t(out) * in);
    for (float& x : *w) x = nd(rng);
    return w;
  };
  auto dense = [&](int out, int in, bool bias) {
    std::vector<float> b(bias ? out : 0);
    for (float& x : b) x = nd(rng);
    return std::make_unique<DenseLinear>(rand_mat(out, in), out, in, std::move(b));
  };
  const int d = c.n_embd, qd = c.n_head * c.head_dim, kvd = c.n_head_kv * c.head_dim;
  embed_ = rand_mat(c.vocab_size, d);
  const float norm_w = c.norm_plus_one ? 0.0f : 1.0f;
  for (int l = 0; l < c.n_layer; ++l) {
    TransformerLayer L;
    L.attn_norm.assign(d, norm_w);
    L.ffn_norm.assign(d, norm_w);
    L.attn.n_head = c.n_head;
    L.attn.n_head_kv = c.n_head_kv;
    L.attn.head_dim = c.head_dim;
    L.attn.sliding_window = c.sliding_window;
    L.attn.layer = l;
    L.attn.q = dense(qd, d, c.attention_bias);
    L.attn.k = dense(kvd, d, c.attention_bias);
    L.attn.v = dense(kvd, d, c.attention_bias);
    L.attn.o = dense(d, qd, false);
    L.mlp.act = c.act;
    L.mlp.gate = dense(c.n_ff, d, c.mlp_bias);
    L.mlp.up = dense(c.n_ff, d, c.mlp_bias);
    L.mlp.down = dense(d, c.n_ff, c.mlp_bias);
    layers_.push_back(std::move(L));
  }
  final_norm_.assign(d, norm_w);
  if (c.tie_word_embeddings)
    lm_head_ = std::make_unique<DenseLinear>(embed_, c.vocab_size, d);
  else
    lm_head_ = dense(c.vocab_size, d, false);
  rope_ = std::make_unique<Rope>(c.rope, c.head_dim);
}

size_t Transformer::weight_bytes_per_token() const {
  size_t b = lm_head_->weight_bytes();
  for (const auto& L : layers_)
    b += L.attn.q->weight_bytes() + L.attn.k->weight_bytes() + L.attn.v->weight_bytes() +
         L.attn.o->weight_bytes() + L.mlp.gate->weight_bytes() + L.mlp.up->weight_bytes() +
         L.mlp.down->weight_bytes();
  return b;
}

void Transformer::forward(const int* ids, int n_rows, std::vector<Segment>& segs,
                          const std::vector<int>& out_rows, float* logits) const {
  const ModelConfig& c = cfg_;
  const int d = c.n_embd;
  // Positions of every row, and room in each cache.
  std::vector<int> pos(n_rows, -1);
  for (Segment& s : segs) {
    QSWEEP_KASSERT(s.cache && s.row0 >= 0 && s.row0 + s.n_tok <= n_rows);
    s.cache->reserve(s.cache->len() + s.n_tok);
    for (int i = 0; i < s.n_tok; ++i) pos[s.row0 + i] = s.cache->len() + i;
  }
  for (int r = 0; r < n_rows; ++r) QSWEEP_KASSERT(pos[r] >= 0);  // every row belongs to a segment
  // x [n_rows, d]: embeddings (Gemma: times sqrt(d), computed in fp32).
  AlignedVec x(size_t(n_rows) * d), h(size_t(n_rows) * d), y(size_t(n_rows) * d);
  embed_tokens(*embed_, c, ids, n_rows, x.data());
  Workspace ws;
  for (const TransformerLayer& L : layers_)
    decoder_layer_forward(L, c, *rope_, x.data(), h.data(), y.data(), n_rows, segs, pos.data(), ws);
  for (Segment& s : segs) s.cache->set_len(s.cache->len() + s.n_tok);
  if (out_rows.empty()) return;
  // Final norm and lm_head only on the requested rows: hs [m, d] -> logits [m, vocab].
  const int m = static_cast<int>(out_rows.size());
  AlignedVec hs(size_t(m) * d);
  for (int i = 0; i < m; ++i) {
    QSWEEP_KASSERT(out_rows[i] >= 0 && out_rows[i] < n_rows);
    std::memcpy(&hs[size_t(i) * d], &x[size_t(out_rows[i]) * d], sizeof(float) * d);
  }
  rms_norm(hs.data(), hs.data(), m, d, final_norm_.data(), static_cast<float>(c.rms_norm_eps),
           c.norm_plus_one);
  lm_head_->forward(hs.data(), logits, m);
}

}  // namespace qsweep::model
