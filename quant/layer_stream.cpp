#include "quant/layer_stream.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "quant/layer_device.h"

namespace qsweep::quant {
namespace {

class HookedLinear final : public model::Linear {
 public:
  HookedLinear(std::unique_ptr<model::Linear> inner, LinearHook hook, ActStatsAccumulator* stats = nullptr)
      : inner_(std::move(inner)), hook_(std::move(hook)), stats_(stats) {}
  void forward(const float* x, float* y, int n) const override {
    hook_(x, n, lens_, n_seq_);
    inner_->forward(x, y, n);
  }
  int in_features() const override { return inner_->in_features(); }
  int out_features() const override { return inner_->out_features(); }
  size_t weight_bytes() const override { return inner_->weight_bytes(); }
  std::unique_ptr<model::Linear> release() { return std::move(inner_); }
  const model::Linear* inner() const { return inner_.get(); }
  const LinearHook& hook() const { return hook_; }
  /// Non-null: the hook feeds this accumulator (a device may reduce itself).
  ActStatsAccumulator* stats() const { return stats_; }
  /// Sequences of the forward call about to run (set by the stream).
  static thread_local int n_seq_;
  static thread_local const int* lens_;

 private:
  std::unique_ptr<model::Linear> inner_;
  LinearHook hook_;
  ActStatsAccumulator* stats_;
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
    : ckpt_(ckpt), max_batch_rows_(std::max(1, max_batch_rows)), device_(make_cpu_layer_device(ckpt.config())) {}

LayerStream::~LayerStream() = default;

void LayerStream::set_device(std::unique_ptr<LayerDevice> device) {
  device_ = device ? std::move(device) : make_cpu_layer_device(config());
}

void set_hook_batch(const int* seq_len, int n_seq) {
  HookedLinear::lens_ = seq_len;
  HookedLinear::n_seq_ = n_seq;
}

LayerPlan LayerStream::plan(model::TransformerLayer& L) {
  LayerPlan p;
  p.layer = &L;
  for (LinearId id : kAllLinears) {
    const model::Linear* l = linear_slot(L, id).get();
    while (const auto* h = dynamic_cast<const HookedLinear*>(l)) {
      if (h->stats())
        p.stats[size_t(id)].push_back(h->stats());
      else
        p.hooks[size_t(id)].push_back(&h->hook());
      l = h->inner();
    }
    p.linear[size_t(id)] = dynamic_cast<const model::DenseLinear*>(l);
  }
  return p;
}

std::vector<RowBatch> LayerStream::seq_batches(const Activations& act) const {
  std::vector<RowBatch> out;
  const int n = int(act.len.size());
  for (int s = 0; s < n;) {
    int e = s, rows = 0;
    while (e < n && (e == s || rows + act.len[e] <= max_batch_rows_)) rows += act.len[e++];
    out.push_back({act.row0[s], rows, e - s, act.len.data() + s});
    s = e;
  }
  return out;
}

std::vector<RowBatch> LayerStream::row_batches(int rows, std::vector<int>* len) const {
  len->clear();
  for (int r = 0; r < rows; r += max_batch_rows_) len->push_back(std::min(max_batch_rows_, rows - r));
  std::vector<RowBatch> out;
  for (size_t i = 0; i < len->size(); ++i) out.push_back({int(i) * max_batch_rows_, (*len)[i], 1, &(*len)[i]});
  return out;
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

void LayerStream::forward(model::TransformerLayer& L, Activations& act) const {
  device_->run(LayerPart::kLayer, plan(L), seq_batches(act), act.x.data(), act.x.data());
}

void LayerStream::forward_discard(model::TransformerLayer& L, const Activations& act) const {
  device_->run(LayerPart::kLayer, plan(L), seq_batches(act), act.x.data(), nullptr);
}

void LayerStream::attention(model::TransformerLayer& L, const Activations& shape, const float* x, float* y) const {
  device_->run(LayerPart::kAttention, plan(L), seq_batches(shape), x, y);
}

void LayerStream::mlp(model::TransformerLayer& L, const float* x, float* y, int rows) const {
  std::vector<int> len;
  device_->run(LayerPart::kMlp, plan(L), row_batches(rows, &len), x, y);
}

void hook_linear(model::TransformerLayer& L, LinearId id, LinearHook hook) {
  auto& slot = linear_slot(L, id);
  slot = std::make_unique<HookedLinear>(std::move(slot), std::move(hook));
}

void hook_stats(model::TransformerLayer& L, LinearId id, ActStatsAccumulator* acc) {
  auto& slot = linear_slot(L, id);
  const int k = slot->in_features();
  LinearHook feed = [acc, k](const float* x, int, const int* len, int n_seq) {
    for (int s = 0; s < n_seq; ++s) {
      acc->add_sample(x, len[s]);
      x += size_t(len[s]) * k;
    }
  };
  slot = std::make_unique<HookedLinear>(std::move(slot), std::move(feed), acc);
}

void unhook_all(model::TransformerLayer& L) {
  for (LinearId id : kAllLinears) {
    auto& slot = linear_slot(L, id);
    while (auto* h = dynamic_cast<HookedLinear*>(slot.get())) slot = h->release();
  }
}

namespace {
const model::DenseLinear& dense_of(const model::TransformerLayer& L, LinearId id) {
  const auto* d = dynamic_cast<const model::DenseLinear*>(linear_slot(const_cast<model::TransformerLayer&>(L), id).get());
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
