#include "quant/layer_stream.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "model/engine/kv_cache.h"
#include "model/engine/workspace.h"

namespace qsweep::quant {
namespace {

class HookedLinear final : public model::Linear {
 public:
  HookedLinear(std::unique_ptr<model::Linear> inner, LinearHook hook)
      : inner_(std::move(inner)), hook_(std::move(hook)) {}
  void forward(const float* x, float* y, int n) const override {
    hook_(x, n, lens_, n_seq_);
    inner_->forward(x, y, n);
  }
  int in_features() const override { return inner_->in_features(); }
  int out_features() const override { return inner_->out_features(); }
  size_t weight_bytes() const override { return inner_->weight_bytes(); }
  std::unique_ptr<model::Linear> release() { return std::move(inner_); }
  std::unique_ptr<model::Linear>& inner_slot() { return inner_; }
  /// Sequences of the forward call about to run (set by the stream).
  static thread_local int n_seq_;
  static thread_local const int* lens_;

 private:
  std::unique_ptr<model::Linear> inner_;
  LinearHook hook_;
};

thread_local int HookedLinear::n_seq_ = 1;
thread_local const int* HookedLinear::lens_ = nullptr;

}  // namespace

const char* linear_name(LinearId id) {
  switch (id) {
    case LinearId::kQ: return "self_attn.q_proj";
    case LinearId::kK: return "self_attn.k_proj";
    case LinearId::kV: return "self_attn.v_proj";
    case LinearId::kO: return "self_attn.o_proj";
    case LinearId::kGate: return "mlp.gate_proj";
    case LinearId::kUp: return "mlp.up_proj";
    case LinearId::kDown: return "mlp.down_proj";
  }
  return "?";
}

std::string linear_prefix(int layer, LinearId id) {
  return "model.layers." + std::to_string(layer) + "." + linear_name(id);
}

std::unique_ptr<model::Linear>& linear_slot(model::TransformerLayer& L, LinearId id) {
  switch (id) {
    case LinearId::kQ: return L.attn.q;
    case LinearId::kK: return L.attn.k;
    case LinearId::kV: return L.attn.v;
    case LinearId::kO: return L.attn.o;
    case LinearId::kGate: return L.mlp.gate;
    case LinearId::kUp: return L.mlp.up;
    case LinearId::kDown: return L.mlp.down;
  }
  throw std::logic_error("linear_slot");
}

LayerStream::LayerStream(const model::Checkpoint& ckpt, int max_batch_rows)
    : ckpt_(ckpt), max_batch_rows_(std::max(1, max_batch_rows)) {
  rope_ = std::make_unique<model::Rope>(ckpt.config().rope, ckpt.config().head_dim);
}

Activations LayerStream::embed(const std::vector<std::vector<int>>& seqs) const {
  const model::ModelConfig& c = config();
  Activations a;
  a.d = c.n_embd;
  int rows = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    if (seqs[s].empty())
      throw std::runtime_error("calibration sequence " + std::to_string(s) + " is empty");
    for (int id : seqs[s])
      if (id < 0 || id >= c.vocab_size)
        throw std::runtime_error("calibration sequence " + std::to_string(s) + " holds token id " +
                                 std::to_string(id) + " outside the vocabulary [0, " +
                                 std::to_string(c.vocab_size) + ") of " + ckpt_.dir().string());
    a.row0.push_back(rows);
    a.len.push_back(int(seqs[s].size()));
    rows += int(seqs[s].size());
  }
  a.x.resize(size_t(rows) * a.d);
  const model::TensorView& v = ckpt_.view("model.embed_tokens.weight");
  if (v.dtype == model::DType::kF32 && v.shape.size() == 2 && v.shape[0] == c.vocab_size &&
      v.shape[1] == c.n_embd) {
    // The rows the calibration uses, straight from the mapping (no
    // [vocab, d] copy), as embed_tokens computes them.
    const int d = c.n_embd;
    const float scale = c.embed_scale ? std::sqrt(static_cast<float>(d)) : 1.0f;
    std::vector<float> e(d);
    for (size_t s = 0; s < seqs.size(); ++s)
      for (size_t t = 0; t < seqs[s].size(); ++t) {
        std::memcpy(e.data(), v.data + size_t(seqs[s][t]) * d * 4, size_t(d) * 4);
        float* x = a.row(a.row0[s] + int(t));
        for (int i = 0; i < d; ++i) x[i] = e[i] * scale;
      }
  } else {
    const auto table = model::load_embedding(ckpt_, c);
    for (size_t s = 0; s < seqs.size(); ++s)
      model::embed_tokens(*table, c, seqs[s].data(), int(seqs[s].size()), a.row(a.row0[s]));
  }
  release_pages(v);
  return a;
}

model::TransformerLayer LayerStream::load_layer(int l) const {
  model::TransformerLayer L = model::load_decoder_layer(ckpt_, config(), l, model::load_dense_linear, 0);
  // The layer is copied out: its source pages need not stay resident.
  const std::string lp = "model.layers." + std::to_string(l) + ".";
  for (const std::string& n : ckpt_.tensor_names())
    if (n.rfind(lp, 0) == 0) release_pages(ckpt_.view(n));
  return L;
}

void release_pages(const model::TensorView& v) {
  static const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
  const uintptr_t b = (uintptr_t(v.data) + page - 1) / page * page;
  const uintptr_t e = (uintptr_t(v.data) + v.n_bytes) / page * page;
  if (v.data && e > b) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
}

void LayerStream::for_each_batch(
    const Activations& act,
    const std::function<void(int row0, int n_rows, int first_seq, int n_seq)>& f) const {
  const int n = int(act.len.size());
  for (int s = 0; s < n;) {
    int e = s, rows = 0;
    while (e < n && (e == s || rows + act.len[e] <= max_batch_rows_)) rows += act.len[e++];
    f(act.row0[s], rows, s, e - s);
    s = e;
  }
}

namespace {

// One fresh single-slot cache per sequence of a batch, positions from 0.
struct BatchCaches {
  std::vector<model::KvCache> caches;
  std::vector<model::Segment> segs;
  std::vector<int> pos;
  BatchCaches(const Activations& act, int first_seq, int n_seq, int kv_dim) {
    caches.reserve(n_seq);
    int r = 0;
    for (int s = first_seq; s < first_seq + n_seq; ++s) {
      caches.emplace_back(1, kv_dim);
      caches.back().reserve(act.len[s]);
      segs.push_back({&caches.back(), r, act.len[s]});
      for (int i = 0; i < act.len[s]; ++i) pos.push_back(i);
      r += act.len[s];
    }
  }
};

}  // namespace

void LayerStream::offload(std::unique_ptr<model::Linear>& slot) const {
  if (!offload_ || !slot) return;
  if (auto* h = dynamic_cast<HookedLinear*>(slot.get())) return offload(h->inner_slot());
  if (dynamic_cast<const model::DenseLinear*>(slot.get())) slot = offload_(std::move(slot));
}

void LayerStream::offload(model::Attention& A) const {
  for (auto* s : {&A.q, &A.k, &A.v, &A.o}) offload(*s);
}

void LayerStream::offload(model::Mlp& M) const {
  for (auto* s : {&M.gate, &M.up, &M.down}) offload(*s);
}

void LayerStream::offload(model::TransformerLayer& L) const {
  offload(L.attn);
  offload(L.mlp);
}

void LayerStream::forward(model::TransformerLayer& L, Activations& act) const {
  offload(L);
  const model::ModelConfig& c = config();
  const int kvd = c.n_head_kv * c.head_dim;
  model::Workspace ws;
  for_each_batch(act, [&](int row0, int n_rows, int first_seq, int n_seq) {
    BatchCaches b(act, first_seq, n_seq, kvd);
    model::AlignedVec h(size_t(n_rows) * act.d), y(size_t(n_rows) * act.d);
    HookedLinear::n_seq_ = n_seq;
    HookedLinear::lens_ = act.len.data() + first_seq;
    model::decoder_layer_forward(L, c, *rope_, act.row(row0), h.data(), y.data(), n_rows, b.segs,
                                 b.pos.data(), ws);
  });
}

void LayerStream::forward_discard(model::TransformerLayer& L, const Activations& act) const {
  offload(L);
  // Batch by batch on a copy of the batch's rows only (not of all of act):
  // the same calls, inputs and hooks as forward() on a full copy.
  const model::ModelConfig& c = config();
  const int kvd = c.n_head_kv * c.head_dim;
  model::Workspace ws;
  model::AlignedVec xb;
  for_each_batch(act, [&](int row0, int n_rows, int first_seq, int n_seq) {
    BatchCaches b(act, first_seq, n_seq, kvd);
    xb.assign(act.row(row0), act.row(row0) + size_t(n_rows) * act.d);
    model::AlignedVec h(size_t(n_rows) * act.d), y(size_t(n_rows) * act.d);
    HookedLinear::n_seq_ = n_seq;
    HookedLinear::lens_ = act.len.data() + first_seq;
    model::decoder_layer_forward(L, c, *rope_, xb.data(), h.data(), y.data(), n_rows, b.segs,
                                 b.pos.data(), ws);
  });
}

void LayerStream::attention(model::Attention& A, const Activations& shape, const float* x, float* y) const {
  offload(A);
  const model::ModelConfig& c = config();
  const int kvd = c.n_head_kv * c.head_dim;
  model::Workspace ws;
  for_each_batch(shape, [&](int row0, int n_rows, int first_seq, int n_seq) {
    BatchCaches b(shape, first_seq, n_seq, kvd);
    HookedLinear::n_seq_ = n_seq;
    HookedLinear::lens_ = shape.len.data() + first_seq;
    A.forward(x + size_t(row0) * shape.d, y + size_t(row0) * shape.d, n_rows, b.segs,
              b.pos.data(), *rope_, ws);
  });
}

void LayerStream::mlp(model::Mlp& M, const float* x, float* y, int rows) const {
  offload(M);
  model::Workspace ws;
  const int d = config().n_embd;
  for (int r = 0; r < rows; r += max_batch_rows_) {
    const int n = std::min(max_batch_rows_, rows - r);
    M.forward(x + size_t(r) * d, y + size_t(r) * d, n, ws);
  }
}

void hook_linear(model::TransformerLayer& L, LinearId id, LinearHook hook) {
  auto& slot = linear_slot(L, id);
  slot = std::make_unique<HookedLinear>(std::move(slot), std::move(hook));
}

void unhook_all(model::TransformerLayer& L) {
  for (LinearId id : kAllLinears) {
    auto& slot = linear_slot(L, id);
    while (auto* h = dynamic_cast<HookedLinear*>(slot.get())) slot = h->release();
  }
}

namespace {
const model::DenseLinear& dense_of(const model::TransformerLayer& L, LinearId id) {
  const auto* d = dynamic_cast<const model::DenseLinear*>(
      &model::host_linear(*linear_slot(const_cast<model::TransformerLayer&>(L), id)));
  if (!d) throw std::logic_error(std::string("layer Linear ") + linear_name(id) + " is not dense");
  return *d;
}
}  // namespace

Eigen::MatrixXf linear_weight(const model::TransformerLayer& L, LinearId id) {
  const model::DenseLinear& d = dense_of(L, id);
  return Eigen::Map<const model::MatrixRM>(d.weight(), d.out_features(), d.in_features());
}

std::vector<float> linear_bias(const model::TransformerLayer& L, LinearId id) {
  return dense_of(L, id).bias();
}

void set_linear(model::TransformerLayer& L, LinearId id, const Eigen::MatrixXf& w,
                std::vector<float> bias) {
  linear_slot(L, id) = model::make_dense_linear(w, std::move(bias));
}

}  // namespace qsweep::quant
