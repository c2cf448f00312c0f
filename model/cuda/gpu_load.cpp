// GpuTransformer from a checkpoint: each decoder layer is read on the host by
// the CPU engine's loader (model/engine/decoder_layer.h: the same tensor
// names, shape checks and messages), its q|k|v and gate|up matrices
// concatenated, uploaded (dense in the engine dtype, weight-only codes for
// gpu_weight_only.cu, activation-quantized codes for gpu_quant.cu), then
// freed; host memory holds one layer at a time.
#include <tbb/parallel_pipeline.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "model/checkpoint/checkpoint.h"
#include "model/cuda/gpu_impl.h"
#include "model/engine/decoder_layer.h"
#include "model/engine/rope.h"

namespace qsweep::model::cuda {

namespace {

/// The kinds of Linear the GPU engine runs.
enum class Kind { kDense, kActQuantized, kWeightOnly };

Kind kind_of(const Linear& l, const std::string& name) {
  if (dynamic_cast<const DenseLinear*>(&l)) return Kind::kDense;
  if (dynamic_cast<const ActQuantizedLinear*>(&l)) return Kind::kActQuantized;
  if (dynamic_cast<const WeightOnlyLinear*>(&l)) return Kind::kWeightOnly;
  throw std::runtime_error(name + ": the GPU engine runs dense, weight-only or activation-quantized Linears; the "
                           "loader returned another kind (load quantized checkpoints with quant's "
                           "gpu_engine_linear_loader, as the infer stage does)");
}

const std::vector<float>& bias_of(const Linear& l) {
  if (const auto* d = dynamic_cast<const DenseLinear*>(&l)) return d->bias();
  if (const auto* w = dynamic_cast<const WeightOnlyLinear*>(&l)) return w->data().bias;
  return dynamic_cast<const ActQuantizedLinear&>(l).data().bias;
}

struct Part {
  const Linear* l;
  std::string name;
};

/// Biases of the parts stacked ([] when none has one; zeros for a part without).
std::vector<float> stack_bias(const std::vector<Part>& parts) {
  bool any = false;
  for (const Part& p : parts) any = any || !bias_of(*p.l).empty();
  std::vector<float> out;
  if (!any) return out;
  for (const Part& p : parts) {
    const std::vector<float>& b = bias_of(*p.l);
    if (b.empty())
      out.insert(out.end(), p.l->out_features(), 0.0f);
    else
      out.insert(out.end(), b.begin(), b.end());
  }
  return out;
}

bool env_is(const char* name, const char* value) {
  const char* e = std::getenv(name);
  return e && std::string(e) == value;
}

/// Dense and weight-only parts as one dense matrix in the engine dtype
/// (weight-only ones dequantized: their exact weights).
void upload_dense(GpuTransformer::Impl& m, const std::vector<Part>& parts, const std::string& what, DeviceMatrix& M) {
  size_t n = 0;
  for (const Part& p : parts) n += size_t(p.l->out_features()) * p.l->in_features();
  std::vector<float> w(n);
  size_t at = 0;
  for (const Part& p : parts) {
    const size_t k = size_t(p.l->out_features()) * p.l->in_features();
    if (const auto* d = dynamic_cast<const DenseLinear*>(p.l))
      std::memcpy(w.data() + at, d->weight(), k * sizeof(float));
    else
      static_cast<const WeightOnlyLinear&>(*p.l).dequantize(w.data() + at);
    at += k;
  }
  M.dense = m.upload_matrix(w.data(), n, what);
  M.bytes = n * m.elt;
}

/// Weight-only parts on the GPU's int4/int8/fp8 kernels (`layouts[i]` the
/// layout of part i); consecutive parts with the same codes, groups and g_idx
/// (q|k|v, gate|up of one recipe) become one part.
void upload_weight_only(GpuTransformer::Impl& m, const std::vector<Part>& parts,
                        const std::vector<WeightOnlyLayout>& layouts, const std::string& what, DeviceMatrix& M) {
  auto data = [&](size_t i) -> const WeightOnlyLinear::Data& {
    return static_cast<const WeightOnlyLinear&>(*parts[i].l).data();
  };
  int row = 0;
  for (size_t i = 0; i < parts.size();) {
    const WeightOnlyLinear::Data& a = data(i);
    std::vector<const WeightOnlyLinear::Data*> same = {&a};
    while (i + same.size() < parts.size()) {
      const WeightOnlyLinear::Data& b = data(i + same.size());
      if (b.bits != a.bits || b.fp8 != a.fp8 || b.in != a.in || b.n_groups != a.n_groups || b.g_idx != a.g_idx) break;
      same.push_back(&b);
    }
    const WeightOnlyPart p = m.upload_weight_only(same, layouts[i], row, same.size() == 1 ? parts[i].name : what);
    M.bytes += size_t(p.out) * p.in * p.bits / 8 + size_t(p.out) * p.n_groups * 8 + (p.perm ? size_t(p.in) * 4 : 0);
    row += p.out;
    M.wparts.push_back(p);
    i += same.size();
  }
}

/// The device matrix of `parts` stacked by rows, with their stacked bias:
/// dense in the engine dtype, weight-only parts on their kernels, or
/// activation-quantized parts.
DeviceMatrix upload_stacked(GpuTransformer::Impl& m, const std::vector<Part>& parts, const std::string& what) {
  size_t n_act = 0;
  std::vector<WeightOnlyLayout> layouts;  // every part's, while all are weight-only with a kernel layout
  bool kernels = true;
  for (const Part& p : parts) {
    const Kind k = kind_of(*p.l, p.name);
    n_act += k == Kind::kActQuantized;
    std::optional<WeightOnlyLayout> L;
    if (kernels && k == Kind::kWeightOnly) L = weight_only_layout(static_cast<const WeightOnlyLinear&>(*p.l).data());
    if (L)
      layouts.push_back(std::move(*L));
    else
      kernels = false;
  }
  DeviceMatrix M;
  const std::vector<float> b = stack_bias(parts);
  M.bias = m.upload_f32(b.data(), b.size(), what + " bias");
  if (n_act == 0) {
    // Weight-only kernels when every part takes them (else, or with
    // $QSWEEP_GPU_WEIGHT_ONLY=dense, the exact weights dense).
    if (kernels && !env_is("QSWEEP_GPU_WEIGHT_ONLY", "dense"))
      upload_weight_only(m, parts, layouts, what, M);
    else
      upload_dense(m, parts, what, M);
    return M;
  }
  if (n_act != parts.size())
    throw std::runtime_error(what + ": mixes activation-quantized and other Linears (" + parts[0].name +
                             ", ...); the GPU engine runs a fused matrix one way (run this checkpoint with "
                             "device: cpu)");
  auto data = [&](size_t i) -> const ActQuantizedLinear::Data& {
    return static_cast<const ActQuantizedLinear&>(*parts[i].l).data();
  };
  // Parts that quantize their input the same way (the same scheme, and for
  // static FP8 the same input_scale) and whose row counts keep the padded
  // layout contiguous (multiples of 16) become one matrix: one activation
  // quantization, one GEMM, one epilogue.
  // ($QSWEEP_GPU_QUANT_MERGE=0: never, for tests.)
  bool merge = parts.size() > 1 && !env_is("QSWEEP_GPU_QUANT_MERGE", "0");
  for (size_t i = 0; i < parts.size(); ++i)
    merge = merge && data(i).act == data(0).act && data(i).input_scale == data(0).input_scale &&
            data(i).in == data(0).in && data(i).out % 16 == 0;
  if (merge) {
    ActQuantizedLinear::Data all;
    all.act = data(0).act;
    all.in = data(0).in;
    all.input_scale = data(0).input_scale;
    for (size_t i = 0; i < parts.size(); ++i) {
      all.out += data(i).out;
      all.codes.insert(all.codes.end(), data(i).codes.begin(), data(i).codes.end());
      all.w_scale.insert(all.w_scale.end(), data(i).w_scale.begin(), data(i).w_scale.end());
    }
    M.parts.push_back(m.upload_quantized(all, 0, what));
    M.bytes = size_t(all.out) * all.in + size_t(all.out) * 4;
    return M;
  }
  int row = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const ActQuantizedLinear::Data& d = data(i);
    M.parts.push_back(m.upload_quantized(d, row, parts[i].name));
    M.bytes += size_t(d.out) * d.in + size_t(d.out) * 4;
    row += d.out;
  }
  return M;
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
                               " holds a quantized checkpoint; load it with quant's gpu_engine_linear_loader "
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
  auto upload_layer = [&](int l, const TransformerLayer& L) {
    m.use_device();  // a TBB worker thread may run this
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const Linear *q = L.attn.q.get(), *k = L.attn.k.get(), *v = L.attn.v.get(), *o = L.attn.o.get(),
                 *g = L.mlp.gate.get(), *u = L.mlp.up.get(), *dn = L.mlp.down.get();
    DeviceLayer D;
    D.wqkv = upload_stacked(
        m, {{q, p + "self_attn.q_proj"}, {k, p + "self_attn.k_proj"}, {v, p + "self_attn.v_proj"}},
        p + "self_attn q|k|v");
    D.wo = upload_stacked(m, {{o, p + "self_attn.o_proj"}}, p + "self_attn.o_proj");
    D.wgu = upload_stacked(m, {{g, p + "mlp.gate_proj"}, {u, p + "mlp.up_proj"}}, p + "mlp gate|up");
    D.wdown = upload_stacked(m, {{dn, p + "mlp.down_proj"}}, p + "mlp.down_proj");
    D.attn_norm = m.upload_f32(L.attn_norm.data(), L.attn_norm.size(), p + "input_layernorm");
    D.ffn_norm = m.upload_f32(L.ffn_norm.data(), L.ffn_norm.size(), p + "post_attention_layernorm");
    m.layers.push_back(D);
  };
  // Host decoding of the layers (unpacking, validation of quantized
  // checkpoints) on up to 4 layers at once, uploads one at a time in layer
  // order; host memory holds at most 4 decoded layers.
  int next = 0;
  tbb::parallel_pipeline(
      4,
      tbb::make_filter<void, int>(tbb::filter_mode::serial_in_order,
                                  [&](tbb::flow_control& fc) {
                                    if (next == c.n_layer) {
                                      fc.stop();
                                      return 0;
                                    }
                                    return next++;
                                  }) &
          tbb::make_filter<int, std::pair<int, std::shared_ptr<const TransformerLayer>>>(
              tbb::filter_mode::parallel,
              [&](int l) {
                return std::make_pair(l, std::make_shared<const TransformerLayer>(
                                             load_decoder_layer(ckpt, c, l, loader, l)));
              }) &
          tbb::make_filter<std::pair<int, std::shared_ptr<const TransformerLayer>>, void>(
              tbb::filter_mode::serial_in_order,
              [&](const std::pair<int, std::shared_ptr<const TransformerLayer>>& in) {
                upload_layer(in.first, *in.second);
              }));
  m.use_device();
  {
    const std::shared_ptr<AlignedVec> e = load_embedding(ckpt, c);
    m.embed = m.upload_matrix(e->data(), e->size(), "model.embed_tokens.weight");
  }
  if (lm_head_is_tied(ckpt, c)) {
    m.lm_head.dense = m.embed;
  } else {
    const std::unique_ptr<Linear> lh = loader(ckpt, "lm_head", c.vocab_size, d, false);
    if (kind_of(*lh, "lm_head") == Kind::kActQuantized)
      throw std::runtime_error(
          "lm_head: the GPU engine runs lm_head without activation quantization (run this checkpoint with device: "
          "cpu)");
    m.lm_head = upload_stacked(m, {{lh.get(), "lm_head"}}, "lm_head.weight");
  }
  const std::vector<float> fn = load_vector(ckpt, "model.norm.weight", d);
  m.final_norm = m.upload_f32(fn.data(), fn.size(), "model.norm.weight");
  const std::vector<float> inv = Rope(c.rope, c.head_dim).inv_freq();
  m.inv_freq = m.upload_f32(inv.data(), inv.size(), "inv_freq");
}

}  // namespace qsweep::model::cuda
