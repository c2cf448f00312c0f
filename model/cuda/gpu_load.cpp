// GpuTransformer from a checkpoint: each decoder layer is read on the host by
// the CPU engine's loader (model/engine/decoder_layer.h: the same tensor
// names, shape checks and messages), its q|k|v and gate|up matrices
// concatenated, uploaded and converted to the engine dtype, then freed; host
// memory holds one layer at a time.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "model/checkpoint/checkpoint.h"
#include "model/cuda/gpu_impl.h"
#include "model/engine/decoder_layer.h"
#include "model/engine/rope.h"

namespace qsweep::model::cuda {

namespace {

const DenseLinear& dense(const Linear& l, const std::string& name) {
  const auto* d = dynamic_cast<const DenseLinear*>(&l);
  if (!d) throw std::runtime_error(name + ": the GPU engine needs dense weights (a loader returned a quantized layer)");
  return *d;
}

/// Rows of several [out_i, in] matrices one after another: [sum out_i, in].
std::vector<float> stack(std::initializer_list<const DenseLinear*> parts) {
  size_t n = 0;
  for (const DenseLinear* p : parts) n += size_t(p->out_features()) * p->in_features();
  std::vector<float> out(n);
  size_t at = 0;
  for (const DenseLinear* p : parts) {
    const size_t k = size_t(p->out_features()) * p->in_features();
    std::memcpy(out.data() + at, p->weight(), k * sizeof(float));
    at += k;
  }
  return out;
}

/// Biases of the parts stacked ([] when none has one; zeros for a part without).
std::vector<float> stack_bias(std::initializer_list<const DenseLinear*> parts) {
  bool any = false;
  for (const DenseLinear* p : parts) any = any || !p->bias().empty();
  std::vector<float> out;
  if (!any) return out;
  for (const DenseLinear* p : parts) {
    if (p->bias().empty())
      out.insert(out.end(), p->out_features(), 0.0f);
    else
      out.insert(out.end(), p->bias().begin(), p->bias().end());
  }
  return out;
}

/// Without a loader: refuses checkpoints stored quantized (their Linears are
/// not dense).
void check_dense(const Checkpoint& ckpt) {
  for (const char* f : {"config.json", "quantize_config.json"}) {
    std::ifstream in(ckpt.dir() / f);
    if (!in) continue;
    std::stringstream ss;
    ss << in.rdbuf();
    if (std::string(f) == "quantize_config.json" || ss.str().find("\"quantization_config\"") != std::string::npos)
      throw std::runtime_error("model folder " + ckpt.dir().string() +
                               " holds a quantized checkpoint; load it with quant's dequantizing loader "
                               "(the infer stage does) or on the CPU engine (device cpu)");
  }
}

}  // namespace

GpuTransformer::GpuTransformer(const Checkpoint& ckpt, const GpuEngineOptions& opts, const LinearLoader& loader_in)
    : cfg_(ckpt.config()), opts_(opts) {
  const LinearLoader loader = loader_in ? loader_in : LinearLoader(load_dense_linear);
  if (!loader_in) check_dense(ckpt);
  impl_ = std::make_unique<Impl>(cfg_, opts_);
  Impl& m = *impl_;
  const ModelConfig& c = cfg_;
  const int d = c.n_embd;
  for (int l = 0; l < c.n_layer; ++l) {
    const TransformerLayer L = load_decoder_layer(ckpt, c, l, loader, l);
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const DenseLinear& q = dense(*L.attn.q, p + "self_attn.q_proj");
    const DenseLinear& k = dense(*L.attn.k, p + "self_attn.k_proj");
    const DenseLinear& v = dense(*L.attn.v, p + "self_attn.v_proj");
    const DenseLinear& o = dense(*L.attn.o, p + "self_attn.o_proj");
    const DenseLinear& g = dense(*L.mlp.gate, p + "mlp.gate_proj");
    const DenseLinear& u = dense(*L.mlp.up, p + "mlp.up_proj");
    const DenseLinear& dn = dense(*L.mlp.down, p + "mlp.down_proj");
    DeviceLayer D;
    {
      const std::vector<float> w = stack({&q, &k, &v});
      D.wqkv = m.upload_matrix(w.data(), w.size(), p + "self_attn q|k|v");
    }
    D.wo = m.upload_matrix(o.weight(), size_t(o.out_features()) * o.in_features(), p + "self_attn.o_proj");
    {
      const std::vector<float> w = stack({&g, &u});
      D.wgu = m.upload_matrix(w.data(), w.size(), p + "mlp gate|up");
    }
    D.wdown = m.upload_matrix(dn.weight(), size_t(dn.out_features()) * dn.in_features(), p + "mlp.down_proj");
    D.attn_norm = m.upload_f32(L.attn_norm.data(), L.attn_norm.size(), p + "input_layernorm");
    D.ffn_norm = m.upload_f32(L.ffn_norm.data(), L.ffn_norm.size(), p + "post_attention_layernorm");
    const std::vector<float> bqkv = stack_bias({&q, &k, &v}), bgu = stack_bias({&g, &u});
    D.bqkv = m.upload_f32(bqkv.data(), bqkv.size(), p + "self_attn q|k|v bias");
    D.bo = m.upload_f32(o.bias().data(), o.bias().size(), p + "self_attn.o_proj.bias");
    D.bgu = m.upload_f32(bgu.data(), bgu.size(), p + "mlp gate|up bias");
    D.bdown = m.upload_f32(dn.bias().data(), dn.bias().size(), p + "mlp.down_proj.bias");
    m.layers.push_back(D);
  }
  {
    const std::shared_ptr<AlignedVec> e = load_embedding(ckpt, c);
    m.embed = m.upload_matrix(e->data(), e->size(), "model.embed_tokens.weight");
  }
  if (lm_head_is_tied(ckpt, c)) {
    m.lm_head = m.embed;
  } else {
    const std::unique_ptr<Linear> lh = loader(ckpt, "lm_head", c.vocab_size, d, false);
    m.lm_head = m.upload_matrix(dense(*lh, "lm_head").weight(), size_t(c.vocab_size) * d, "lm_head.weight");
  }
  const std::vector<float> fn = load_vector(ckpt, "model.norm.weight", d);
  m.final_norm = m.upload_f32(fn.data(), fn.size(), "model.norm.weight");
  const std::vector<float> inv = Rope(c.rope, c.head_dim).inv_freq();
  m.inv_freq = m.upload_f32(inv.data(), inv.size(), "inv_freq");
}

}  // namespace qsweep::model::cuda
