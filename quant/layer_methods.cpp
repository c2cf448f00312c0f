#include "quant/layer_methods.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>

#include "quant/awq.h"
#include "quant/awq_search.h"
#include "quant/fp8.h"
#include "quant/hessian.h"
#include "quant/layer_device.h"
#include "quant/smoothquant.h"

namespace qsweep::quant {
namespace {

using Method = LayerRecipe::Method;

QuantizedLinear make_linear(int l, LinearId id, QuantizedWeight qw, WeightType type,
                            WeightStrategy strategy, bool sym, bool act_order, ActQuant act,
                            std::vector<float> bias) {
  QuantizedLinear ql;
  ql.prefix = linear_prefix(l, id);
  ql.type = type;
  ql.bits = qw.bits;
  ql.strategy = strategy;
  ql.sym = sym;
  ql.act_order = act_order;
  ql.weight = std::move(qw);
  ql.act = act;
  ql.bias = std::move(bias);
  return ql;
}

// Int8 per-channel symmetric RTN with the SmoothQuant repository's amax/127.
QuantizedWeight int8_absmax127(const Eigen::MatrixXf& w) {
  const Int8Weight iw = int8_per_channel_smoothquant(w);
  QuantizedWeight qw = QuantizedWeight::sized(int(w.rows()), int(w.cols()), 8, -1);
  qw.q = iw.q;
  qw.codes = iw.codes.array() + 128;
  qw.scale.col(0) = iw.scale;
  qw.zero.setConstant(128.0f);
  return qw;
}

// Rows [rows, K] row-major captured from a hook, appended to a matrix.
struct Capture {
  std::vector<float> data;
  int k = 0;
  Capture(int width, int expected_rows) : k(width) { data.reserve(size_t(expected_rows) * width); }
  int rows() const { return k ? int(data.size() / k) : 0; }
  LinearHook hook() {
    return [this](const float* x, int n, const int*, int) { data.insert(data.end(), x, x + size_t(n) * k); };
  }
  Eigen::MatrixXf matrix() const {  // [rows, K] col-major copy, 64 x 64 tiles over threads
    const int n = rows();
    Eigen::MatrixXf m(n, k);
    tbb::parallel_for(0, (n + 63) / 64, [&](int t) {
      const int r0 = t * 64, r1 = std::min(n, r0 + 64);
      for (int j0 = 0; j0 < k; j0 += 64)
        for (int j = j0; j < std::min(k, j0 + 64); ++j)
          for (int r = r0; r < r1; ++r) m(r, j) = data[size_t(r) * k + j];
    });
    return m;
  }
};

// ---- SmoothQuant -----------------------------------------------------------

void smooth_group(std::vector<float>& norm, bool norm_plus_one,
                  const std::vector<Eigen::MatrixXf*>& ws, const ActStats& st,
                  const LayerRecipe& r) {
  std::vector<const Eigen::MatrixXf*> fcs(ws.begin(), ws.end());
  const Eigen::VectorXf s =
      r.smooth_llmcompressor ? smoothquant_scales_llmcompressor(st.min, st.max, fcs, r.smooth_alpha)
                             : smoothquant_scales_original(st.absmax, fcs, r.smooth_alpha);
  for (size_t j = 0; j < norm.size(); ++j)
    norm[j] = norm_plus_one ? (1.0f + norm[j]) / s(j) - 1.0f : norm[j] / s(j);
  for (Eigen::MatrixXf* w : ws)
    for (int j = 0; j < w->cols(); ++j) w->col(j) *= s(j);
}

// ---- the weight quantizers ---------------------------------------------------

QuantizedLinear quantize_plain(int l, LinearId id, const Eigen::MatrixXf& w,
                               std::vector<float> bias, const LayerRecipe& r, ActQuant act) {
  if (r.method == Method::kFp8)
    return make_linear(l, id, fp8_quantize(w, r.fp8_weights), WeightType::kFloat8,
                       r.fp8_weights, true, false, act, std::move(bias));
  QuantizedWeight qw = (r.bits == 8 && r.group_size == -1 && r.sym && r.int8_absmax127)
                           ? int8_absmax127(w)
                           : rtn_quantize(w, r.bits, r.sym, r.group_size);
  return make_linear(l, id, std::move(qw), WeightType::kInt,
                     r.group_size == -1 ? WeightStrategy::kChannel : WeightStrategy::kGroup,
                     r.sym, false, act, std::move(bias));
}

void check_group(int l, LinearId id, int k, int group) {
  if (group != -1 && k % group != 0)
    throw std::runtime_error("layer " + linear_prefix(l, id) + ": group_size " +
                             std::to_string(group) + " does not divide its " + std::to_string(k) +
                             " input features; use a group size that divides every Linear's "
                             "in_features, or -1 (per channel)");
}

}  // namespace

LinearId stats_source(LinearId id) {
  switch (id) {
    case LinearId::kK:
    case LinearId::kV: return LinearId::kQ;
    case LinearId::kUp: return LinearId::kGate;
    default: return id;
  }
}

QuantizedWeight fp8_quantize(const Eigen::MatrixXf& w, WeightStrategy strategy) {
  const int n = int(w.rows()), k = int(w.cols());
  QuantizedWeight qw = QuantizedWeight::sized(n, k, 8, -1);
  qw.zero.setZero();
  if (n == 0 || k == 0) return qw;
  const float eps = std::numeric_limits<float>::epsilon();
  // Per-row max |w|, the column-major matrix walked in order.
  std::vector<float> amax(n, 0.0f);
  for (int j = 0; j < k; ++j)
    for (int r = 0; r < n; ++r) amax[r] = std::max(amax[r], std::fabs(w(r, j)));
  const float tensor_amax = *std::max_element(amax.begin(), amax.end());
  for (int r = 0; r < n; ++r)
    qw.scale(r, 0) = std::max((strategy == WeightStrategy::kTensor ? tensor_amax : amax[r]) / 448.0f, eps);
  static const std::array<float, 256> decoded = [] {
    std::array<float, 256> t{};
    for (int c = 0; c < 256; ++c) t[c] = e4m3fn_to_f32(uint8_t(c));
    return t;
  }();
  // Blocks of columns in parallel; per element the same operations.
  tbb::parallel_for(0, (k + 63) / 64, [&](int b) {
    for (int j = b * 64; j < std::min(k, b * 64 + 64); ++j)
      for (int r = 0; r < n; ++r) {
        const float scale = qw.scale(r, 0);
        const uint8_t code = f32_to_e4m3fn(w(r, j) / scale);
        qw.codes(r, j) = code;
        qw.q(r, j) = scale * decoded[code];
      }
  });
  return qw;
}

LayerResult quantize_decoder_layer(const LayerStream& stream, int l, model::TransformerLayer& L,
                                   Activations* act, const LayerRecipe& r, const StatsFn& stats,
                                   const FinalizeFn& finalize,
                                   const std::function<void(const QuantizedLinear&)>& on_linear) {
  const model::ModelConfig& c = stream.config();
  LayerResult res;
  if (r.needs_activations() && !act)
    throw std::logic_error("quantize_decoder_layer: calibration activations required");
  if (r.needs_stats() && !stats)
    throw std::logic_error("quantize_decoder_layer: calibration statistics required");

  std::map<LinearId, Eigen::MatrixXf> W;
  std::map<LinearId, std::vector<float>> B;
  // GPTQ reads each Linear's weights from L when it quantizes it: no
  // second fp32 copy of the layer.
  const bool keep_w = !(r.method == Method::kGptq && !r.smooth);
  for (LinearId id : kAllLinears) {
    if (keep_w) W[id] = linear_weight(L, id);
    B[id] = linear_bias(L, id);
    if (r.method != Method::kFp8 && !(r.skip && r.skip(l, id)))
      check_group(l, id, linear_slot(L, id)->in_features(), r.group_size);
  }

  if (r.smooth) {
    smooth_group(L.attn_norm, c.norm_plus_one, {&W[LinearId::kQ], &W[LinearId::kK], &W[LinearId::kV]},
                 stats(l, LinearId::kQ), r);
    smooth_group(L.ffn_norm, c.norm_plus_one, {&W[LinearId::kGate], &W[LinearId::kUp]},
                 stats(l, LinearId::kGate), r);
    for (LinearId id : {LinearId::kQ, LinearId::kK, LinearId::kV, LinearId::kGate, LinearId::kUp})
      set_linear(L, id, W[id], B[id]);
    res.norms_changed = true;
  }

  std::map<LinearId, QuantizedLinear> done;
  auto skipped = [&](LinearId id) { return r.skip && r.skip(l, id); };
  auto finish = [&](LinearId id, QuantizedLinear ql) {
    if (r.act == ActQuant::kFp8TensorStatic)
      ql.input_scale = stats(l, stats_source(id)).fp8_input_scale();
    if (finalize) finalize(&ql);
    set_linear(L, id, ql.weight.q, ql.bias);
    if (on_linear) {
      on_linear(ql);
      ql.weight.q.resize(0, 0);
      ql.weight.codes.resize(0, 0);
    }
    done.emplace(id, std::move(ql));
  };

  if (r.method == Method::kRtn || r.method == Method::kFp8) {
    for (LinearId id : kAllLinears)
      if (!skipped(id)) finish(id, quantize_plain(l, id, W[id], B[id], r, r.act));
  } else if (r.method == Method::kGptq) {
    for (auto& [id, w] : W) w.resize(0, 0);  // read back from L when quantized
    GptqConfig g = r.gptq;
    g.bits = r.bits;
    g.group_size = r.group_size;
    g.sym = r.sym;
    const std::vector<std::vector<LinearId>> groups =
        r.true_sequential
            ? std::vector<std::vector<LinearId>>{{LinearId::kK, LinearId::kV, LinearId::kQ},
                                                 {LinearId::kO},
                                                 {LinearId::kUp, LinearId::kGate},
                                                 {LinearId::kDown}}
            : std::vector<std::vector<LinearId>>{{LinearId::kK, LinearId::kV, LinearId::kQ,
                                                  LinearId::kO, LinearId::kUp, LinearId::kGate,
                                                  LinearId::kDown}};
    for (const auto& group : groups) {
      // One Hessian per distinct input (q/k/v share one, gate/up share one):
      // the same values AutoGPTQ computes once per Linear.
      GptqSolver& solver = r.gptq_solver ? *r.gptq_solver : cpu_gptq_solver();
      std::map<LinearId, std::unique_ptr<HessianSink>> H;
      for (LinearId id : group) {
        if (skipped(id)) continue;
        const LinearId src = stats_source(id);
        if (H.count(src)) continue;
        HessianSink* acc = H.emplace(src, solver.hessian(linear_slot(L, id)->in_features(), g)).first->second.get();
        hook_linear(L, src == id ? id : src, [acc](const float* x, int n, const int*, int n_seq) {
          acc->add_batch_rows(x, n, n_seq);
        });
      }
      stream.forward_discard(L, *act);
      unhook_all(L);
      for (size_t gi = 0; gi < group.size(); ++gi) {
        const LinearId id = group[gi];
        if (skipped(id)) continue;
        // The last Linear of the group reading this Hessian consumes it.
        bool last = true;
        for (size_t gj = gi + 1; gj < group.size(); ++gj)
          last = last && (skipped(group[gj]) || stats_source(group[gj]) != stats_source(id));
        Eigen::MatrixXf h = last ? H.at(stats_source(id))->take() : H.at(stats_source(id))->h();
        QuantizedWeight qw;
        std::string err;
        // The weights as L holds them now (== W[id], which is not kept: one
        // fp32 copy of the layer is enough). L's copy is dropped until
        // finish() puts the quantized weights back.
        Eigen::MatrixXf w = linear_weight(L, id);
        linear_slot(L, id).reset();
        const Eigen::Index hk = h.rows();
        Eigen::MatrixXf w0, h0;  // only to measure the output error
        if (r.gptq_record_error) {
          w0 = w;
          h0 = h;
        }
        if (!solver.quantize(w, h, g, &qw, &err)) {
          // llm-compressor: warn and fall back to round-to-nearest for this
          // module (an identity Hessian).
          res.notes.push_back(linear_prefix(l, id) + ": " + err +
                              "; fell back to round-to-nearest for this Linear (as llm-compressor "
                              "does); more calibration samples or a larger damp avoid it");
          const Eigen::MatrixXf eye = Eigen::MatrixXf::Identity(hk, hk);
          if (!gptq_quantize(w, eye, g, &qw, &err))
            throw std::runtime_error(linear_prefix(l, id) + ": " + err);
        }
        const bool perm_gidx = g.act_order && !g.static_groups && g.group_size != -1;
        finish(id, make_linear(l, id, std::move(qw), WeightType::kInt,
                               r.group_size == -1 ? WeightStrategy::kChannel : WeightStrategy::kGroup,
                               r.sym, perm_gidx, r.act, B[id]));
        if (r.gptq_record_error)  // L holds the stored (finalized) weights now
          res.gptq_errors[linear_prefix(l, id)] = output_error(linear_weight(L, id), w0, h0);
      }
    }
    stream.forward(L, *act);  // quantized-activation propagation
  } else {  // AWQ (SPECS.md A2.1-A2.4)
    if (r.sym)
      throw std::runtime_error("awq: only zero_point quantization (sym: false) is implemented, "
                               "as AutoAWQ uses it");
    const int bits = r.bits;
    // 1. Inputs of every Linear from the original fp layer; its output is
    //    the next layer's input (fp propagation).
    const int rows = act->rows();
    Capture x_qkv(c.n_embd, rows), x_o(int(W[LinearId::kO].cols()), rows), x_gate(c.n_embd, rows),
        x_down(int(W[LinearId::kDown].cols()), rows);
    hook_linear(L, LinearId::kQ, x_qkv.hook());
    hook_linear(L, LinearId::kO, x_o.hook());
    hook_linear(L, LinearId::kGate, x_gate.hook());
    hook_linear(L, LinearId::kDown, x_down.hook());
    Activations next = *act;
    stream.forward(L, next);
    unhook_all(L);
    Eigen::MatrixXf Xqkv = x_qkv.matrix(), Xo = x_o.matrix(), Xg = x_gate.matrix(),
                    Xd = x_down.matrix();
    x_o.data = {};  // only the column-major copies are used from here on
    x_down.data = {};
    // 2. Scale search of each mapping on the unmodified layer.
    const int gw = r.group_size;
    struct Mapping {
      std::vector<LinearId> layers;
      Eigen::VectorXf s;
    };
    std::vector<Mapping> maps;
    const std::string mp = "model.layers." + std::to_string(l) + ".";  // awq_ratios keys
    {  // input_layernorm -> q, k, v; module2inspect self_attn
      const auto block = stream.device().awq_block(LayerPart::kAttention, LayerStream::plan(L),
                                                   {LinearId::kQ, LinearId::kK, LinearId::kV},
                                                   stream.seq_batches(*act), x_qkv.data.data(), bits, gw);
      const auto sr = awq_search_scale_by(
          awq_x_mean(Xqkv), awq_w_mean({&W[LinearId::kQ], &W[LinearId::kK], &W[LinearId::kV]}, gw),
          r.awq_duo_scaling, r.awq_n_grid, [&](const Eigen::VectorXf& s) { return block->loss(s); });
      maps.push_back({{LinearId::kQ, LinearId::kK, LinearId::kV}, sr.best_scales});
      res.notes.push_back("layer " + std::to_string(l) + " qkv: ratio " + std::to_string(sr.best_ratio));
      res.awq_ratios[mp + "qkv"] = sr.best_ratio;
    }
    const bool v_o = W[LinearId::kV].rows() == W[LinearId::kO].rows() &&
                     W[LinearId::kV].cols() == W[LinearId::kO].cols();
    if (v_o) {  // v_proj -> o_proj; module2inspect o_proj
      const auto sr = r.awq_searcher ? r.awq_searcher->search_scale_linear(W[LinearId::kO], Xo, bits, gw,
                                                                           r.awq_duo_scaling, r.awq_n_grid)
                                     : awq_search_scale_linear(W[LinearId::kO], Xo, bits, gw, r.awq_duo_scaling,
                                                               r.awq_n_grid);
      maps.push_back({{LinearId::kO}, sr.best_scales});
      res.awq_ratios[mp + "o"] = sr.best_ratio;
    } else {
      res.notes.push_back("layer " + std::to_string(l) +
                          ": v_proj -> o_proj scaling skipped (grouped-query attention: v_proj "
                          "and o_proj shapes differ), as AutoAWQ does");
    }
    {  // post_attention_layernorm -> gate, up; module2inspect mlp
      std::vector<int> len;
      const auto block = stream.device().awq_block(LayerPart::kMlp, LayerStream::plan(L),
                                                   {LinearId::kGate, LinearId::kUp}, stream.row_batches(rows, &len),
                                                   x_gate.data.data(), bits, gw);
      const auto sr = awq_search_scale_by(awq_x_mean(Xg), awq_w_mean({&W[LinearId::kGate], &W[LinearId::kUp]}, gw),
                                          r.awq_duo_scaling, r.awq_n_grid,
                                          [&](const Eigen::VectorXf& s) { return block->loss(s); });
      maps.push_back({{LinearId::kGate, LinearId::kUp}, sr.best_scales});
      res.awq_ratios[mp + "gate_up"] = sr.best_ratio;
    }
    {  // up_proj -> down_proj; module2inspect down_proj
      const auto sr = r.awq_searcher ? r.awq_searcher->search_scale_linear(W[LinearId::kDown], Xd, bits, gw,
                                                                           r.awq_duo_scaling, r.awq_n_grid)
                                     : awq_search_scale_linear(W[LinearId::kDown], Xd, bits, gw,
                                                               r.awq_duo_scaling, r.awq_n_grid);
      maps.push_back({{LinearId::kDown}, sr.best_scales});
      res.awq_ratios[mp + "down"] = sr.best_ratio;
    }
    // 3. Apply: previous op / s, layers' input columns * s, their inputs / s.
    // AutoAWQ apply_scale: fc.weight.mul_(s), input_feat.div_(s) (a true
    // division, not a multiplication by 1/s: the two round differently).
    auto scale_cols = [](Eigen::MatrixXf& m, const Eigen::VectorXf& s, bool up) {
      tbb::parallel_for(0, int(m.cols()), [&](int j) {
        if (up)
          m.col(j) *= s(j);
        else
          m.col(j) /= s(j);
      });
    };
    auto scale_rows_down = [&](LinearId prev, const Eigen::VectorXf& s) {
      Eigen::MatrixXf& w = W[prev];
      const int off = int(w.rows() - s.size());
      for (int i = 0; i < s.size(); ++i) {
        w.row(off + i) /= s(i);
        if (!B[prev].empty()) B[prev][off + i] /= s(i);
      }
    };
    auto scale_norm = [&](std::vector<float>& norm, const Eigen::VectorXf& s) {
      for (size_t j = 0; j < norm.size(); ++j)
        norm[j] = c.norm_plus_one ? (1.0f + norm[j]) / s(j) - 1.0f : norm[j] / s(j);
    };
    for (const Mapping& m : maps) {
      const LinearId first = m.layers.front();
      if (first == LinearId::kQ) {
        scale_norm(L.attn_norm, m.s);
        scale_cols(Xqkv, m.s, false);
      } else if (first == LinearId::kO) {
        scale_rows_down(LinearId::kV, m.s);
        scale_cols(Xo, m.s, false);
      } else if (first == LinearId::kGate) {
        scale_norm(L.ffn_norm, m.s);
        scale_cols(Xg, m.s, false);
      } else {
        scale_rows_down(LinearId::kUp, m.s);
        scale_cols(Xd, m.s, false);
      }
      for (LinearId id : m.layers) scale_cols(W[id], m.s, true);
    }
    res.norms_changed = true;
    // 4. Clip search on every Linear but q and k; 5. zero-point quantization.
    for (LinearId id : kAllLinears) {
      if (skipped(id)) {
        set_linear(L, id, W[id], B[id]);
        continue;
      }
      const int k = int(W[id].cols());
      const int gsz = gw == -1 ? k : gw;
      if (r.awq_clip && id != LinearId::kQ && id != LinearId::kK) {
        const Eigen::MatrixXf& x = (id == LinearId::kV)     ? Xqkv
                                   : (id == LinearId::kO)   ? Xo
                                   : (id == LinearId::kDown) ? Xd
                                                             : Xg;
        const AwqClipResult cr =
            r.awq_searcher
                ? r.awq_searcher->best_clip(W[id], x, bits, gsz, r.awq_n_grid, r.awq_max_shrink,
                                                 r.awq_n_sample_token)
                : awq_compute_best_clip(W[id], x, bits, gsz, r.awq_n_grid, r.awq_max_shrink, r.awq_n_sample_token);
        awq_apply_clip(&W[id], cr.best_max, gsz);
      }
      finish(id, make_linear(l, id, awq_pseudo_quantize(W[id], bits, gw), WeightType::kInt,
                             gw == -1 ? WeightStrategy::kChannel : WeightStrategy::kGroup, false,
                             false, r.act, B[id]));
    }
    *act = std::move(next);
  }
  for (LinearId id : kAllLinears) {
    if (auto it = done.find(id); it != done.end())
      res.linears.push_back(std::move(it->second));
    else
      res.kept.push_back({linear_prefix(l, id), linear_weight(L, id), linear_bias(L, id)});
  }
  return res;
}

}  // namespace qsweep::quant
