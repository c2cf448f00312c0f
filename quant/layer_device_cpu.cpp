// The CPU LayerDevice (layer_device.h): the CPU engine's decoder layer,
// attention and MLP (model/engine/), hooks through the layer's HookedLinears.
#include <cstring>
#include <stdexcept>

#include "model/engine/kv_cache.h"
#include "model/engine/workspace.h"
#include "quant/awq_search.h"
#include "quant/layer_device.h"

namespace qsweep::quant {
namespace {

// One fresh single-slot cache per sequence of a batch, positions from 0.
struct BatchCaches {
  std::vector<model::KvCache> caches;
  std::vector<model::Segment> segs;
  std::vector<int> pos;
  BatchCaches(const RowBatch& b, int kv_dim) {
    caches.reserve(b.n_seq);
    int r = 0;
    for (int s = 0; s < b.n_seq; ++s) {
      caches.emplace_back(1, kv_dim);
      caches.back().reserve(b.seq_len[s]);
      segs.push_back({&caches.back(), r, b.seq_len[s]});
      for (int i = 0; i < b.seq_len[s]; ++i) pos.push_back(i);
      r += b.seq_len[s];
    }
  }
};

class CpuLayerDevice final : public LayerDevice {
 public:
  explicit CpuLayerDevice(const model::ModelConfig& c) : c_(c), rope_(c.rope, c.head_dim) {}
  std::string name() const override { return "cpu"; }

  void run(LayerPart part, const LayerPlan& plan, const std::vector<RowBatch>& batches, const float* x,
           float* y) override {
    const model::TransformerLayer& L = *plan.layer;
    const int d = c_.n_embd, kvd = c_.n_head_kv * c_.head_dim;
    model::Workspace ws;
    model::AlignedVec copy, h, out;
    for (const RowBatch& b : batches) {
      set_hook_batch(b.seq_len, b.n_seq);
      const size_t n = size_t(b.n_rows) * d;
      const float* xb = x + size_t(b.row0) * d;
      float* yb = y ? y + size_t(b.row0) * d : nullptr;
      if (!yb) {  // hooks only: into scratch
        out.resize(n);
        yb = out.data();
      }
      if (part == LayerPart::kMlp) {
        L.mlp.forward(xb, yb, b.n_rows, ws);
        continue;
      }
      BatchCaches bc(b, kvd);
      if (part == LayerPart::kAttention) {
        L.attn.forward(xb, yb, b.n_rows, bc.segs, bc.pos.data(), rope_, ws);
        continue;
      }
      // The layer runs in place: on y's rows, or on a copy of x's.
      float* io = y ? yb : nullptr;
      if (!io) {
        copy.assign(xb, xb + n);
        io = copy.data();
      } else if (io != xb) {
        std::memcpy(io, xb, n * sizeof(float));
      }
      h.resize(n);
      out.resize(n);
      model::decoder_layer_forward(L, c_, rope_, io, h.data(), out.data(), b.n_rows, bc.segs, bc.pos.data(), ws);
    }
  }

  std::unique_ptr<AwqBlock> awq_block(LayerPart part, const LayerPlan& plan, const std::vector<LinearId>& scaled,
                                      const std::vector<RowBatch>& batches, const float* x, int bits,
                                      int group_size) override;

 private:
  model::ModelConfig c_;
  model::Rope rope_;
};

// Candidates are set into the layer's slots from the first loss() on; the
// original Linears go back when the block is destroyed.
class CpuAwqBlock final : public LayerDevice::AwqBlock {
 public:
  CpuAwqBlock(CpuLayerDevice& dev, LayerPart part, const LayerPlan& plan, const std::vector<LinearId>& scaled,
              const std::vector<RowBatch>& batches, const float* x, int bits, int group, int d)
      : dev_(dev), part_(part), plan_(plan), scaled_(scaled), batches_(batches), x_(x), bits_(bits), group_(group) {
    for (LinearId id : scaled_) {
      w_.push_back(linear_weight(*plan_.layer, id));
      b_.push_back(linear_bias(*plan_.layer, id));
    }
    ref_.resize(size_t(rows_of(batches_)) * d);
    out_.resize(ref_.size());
    dev_.run(part_, plan_, batches_, x_, ref_.data());
  }
  ~CpuAwqBlock() override {
    for (size_t i = 0; i < orig_.size(); ++i) linear_slot(*plan_.layer, scaled_[i]) = std::move(orig_[i]);
  }
  double loss(const Eigen::VectorXf& s) override {
    if (orig_.empty())  // the first candidate: the original Linears aside until the end
      for (LinearId id : scaled_) orig_.push_back(std::move(linear_slot(*plan_.layer, id)));
    for (size_t i = 0; i < scaled_.size(); ++i)
      set_linear(*plan_.layer, scaled_[i], awq_scaled_candidate(w_[i], s, bits_, group_), b_[i]);
    dev_.run(part_, plan_, batches_, x_, out_.data());
    return awq_loss(ref_.data(), out_.data(), ref_.size());
  }

 private:
  CpuLayerDevice& dev_;
  LayerPart part_;
  LayerPlan plan_;
  std::vector<LinearId> scaled_;
  std::vector<RowBatch> batches_;
  const float* x_;
  int bits_, group_;
  std::vector<Eigen::MatrixXf> w_;
  std::vector<std::vector<float>> b_;
  std::vector<std::unique_ptr<model::Linear>> orig_;
  std::vector<float> ref_, out_;
};

std::unique_ptr<LayerDevice::AwqBlock> CpuLayerDevice::awq_block(LayerPart part, const LayerPlan& plan,
                                                                 const std::vector<LinearId>& scaled,
                                                                 const std::vector<RowBatch>& batches, const float* x,
                                                                 int bits, int group_size) {
  if (part == LayerPart::kLayer) throw std::logic_error("awq_block: a block is kAttention or kMlp");
  return std::make_unique<CpuAwqBlock>(*this, part, plan, scaled, batches, x, bits, group_size, c_.n_embd);
}

}  // namespace

std::unique_ptr<LayerDevice> make_cpu_layer_device(const model::ModelConfig& c) {
  return std::make_unique<CpuLayerDevice>(c);
}

}  // namespace qsweep::quant
