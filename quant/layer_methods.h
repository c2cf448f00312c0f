#pragma once
// Quantizing one decoder layer with a recipe (SPECS.md part A): optional
// SmoothQuant smoothing first, then the weight quantizer of every Linear —
// RTN, GPTQ (true-sequential sub-groups, Hessians from this layer's
// calibration inputs), AWQ (scale search per layer mapping, clip search,
// zero-point quantization) or FP8 — and the activation scheme.
//
// Calibration activations (GPTQ, AWQ) enter as `act` (the hidden states
// entering the layer, [tokens, d]) and leave as the next layer's input: GPTQ
// propagates the outputs of the quantized layer, AWQ those of the original
// fp layer (SPECS.md A1.1 vs A2.1). RTN, FP8 and SmoothQuant use no
// activations beyond the calibrate stage's statistics (`stats`).

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "quant/act_stats.h"
#include "quant/awq_search.h"
#include "quant/gptq.h"
#include "quant/gptq_solver.h"
#include "quant/layer_stream.h"
#include "quant/quantized_linear.h"

namespace qsweep::quant {

struct LayerRecipe {
  enum class Method { kRtn, kGptq, kAwq, kFp8 };
  Method method = Method::kRtn;
  // Integer weights (rtn, gptq, awq).
  int bits = 4;
  int group_size = 128;  ///< -1: per output channel
  bool sym = true;
  /// 8-bit per-channel symmetric RTN with the SmoothQuant repository's scale
  /// amax/127 (codes within +-127) instead of GPTQ's / compressed-tensors'
  /// amax/127.5 (codes -128..127).
  bool int8_absmax127 = false;
  GptqConfig gptq;  ///< bits / group_size / sym are taken from above
  bool true_sequential = true;
  /// Record each Linear's GPTQ output error tr(dW H dW^T) in
  /// LayerResult::gptq_errors (keeps a copy of W and H while it quantizes).
  bool gptq_record_error = false;
  /// Where GPTQ's Hessians and solves run (not owned); null = the CPU.
  GptqSolver* gptq_solver = nullptr;
  // AWQ (AutoAWQ defaults).
  bool awq_duo_scaling = true;
  int awq_n_grid = 20;
  bool awq_clip = true;
  float awq_max_shrink = 0.5f;
  int awq_n_sample_token = 512;
  /// Where AWQ's clip search and single-Linear scale searches (o, down) run
  /// (not owned); null = the CPU.
  AwqSearcher* awq_searcher = nullptr;
  // FP8 weights: tensor or channel scales.
  WeightStrategy fp8_weights = WeightStrategy::kTensor;
  /// Activations of every quantized Linear at run time.
  ActQuant act = ActQuant::kNone;
  // SmoothQuant before the weights are quantized (norm -> q/k/v, norm -> gate/up).
  bool smooth = false;
  float smooth_alpha = 0.5f;
  bool smooth_llmcompressor = false;  ///< (max - min) and 2 * max|W| (A3.2) instead of A3.1

  /// Linears kept in full precision (e.g. shapes the target format cannot
  /// store); empty: none. They still take part in AWQ/SmoothQuant scaling.
  std::function<bool(int layer, LinearId id)> skip;

  /// GPTQ and AWQ need the layer's calibration activations.
  bool needs_activations() const { return method == Method::kGptq || method == Method::kAwq; }
  /// SmoothQuant and static FP8 input scales need the calibrate statistics.
  bool needs_stats() const { return smooth || act == ActQuant::kFp8TensorStatic; }
};

/// Statistics of the input of Linear `id` of layer `layer` (q/k/v share kQ's,
/// gate/up share kGate's).
using StatsFn = std::function<ActStats(int layer, LinearId id)>;
/// Rounds what the target format stores (scales) and recomputes q from the
/// codes, so that propagation uses exactly the weights the file will hold.
using FinalizeFn = std::function<void(QuantizedLinear*)>;

struct KeptLinear {
  std::string prefix;
  Eigen::MatrixXf w;        ///< [out, in] fp32 (rescaled when AWQ/SmoothQuant applied)
  std::vector<float> bias;  ///< [out] or empty
};

struct LayerResult {
  std::vector<QuantizedLinear> linears;  ///< the quantized ones, in kAllLinears order
  std::vector<KeptLinear> kept;          ///< the ones recipe.skip kept in full precision
  bool norms_changed = false;            ///< L.attn_norm / L.ffn_norm were rescaled
  std::vector<std::string> notes;        ///< fallbacks and choices worth logging
  /// AWQ: best grid ratio of each scaled mapping, keyed "model.layers.<l>.qkv",
  /// ".o" (v_proj -> o_proj, absent when skipped), ".gate_up", ".down".
  std::map<std::string, float> awq_ratios;
  /// GPTQ: output error tr(dW H dW^T) of each Linear (dW = stored q - W, H
  /// the Hessian of its calibration input, undamped), keyed by prefix; only
  /// with LayerRecipe::gptq_record_error.
  std::map<std::string, double> gptq_errors;
};

/// Quantizes layer `l` (loaded as L, fp32 dense) in place: L's Linears end up
/// holding the dequantized weights. `act` must be non-null when
/// r.needs_activations(); `stats` must be set when r.needs_stats().
/// Throws std::runtime_error naming the Linear on impossible combinations.
/// `on_linear` (optional) sees every finished QuantizedLinear at once (after
/// `finalize`), e.g. to encode it; the copies in LayerResult::linears then
/// have their q and codes released, so that a layer's quantized Linears are
/// not all held in fp32 + int32 at the same time.
LayerResult quantize_decoder_layer(
    const LayerStream& stream, int l, model::TransformerLayer& L, Activations* act,
    const LayerRecipe& r, const StatsFn& stats, const FinalizeFn& finalize,
    const std::function<void(const QuantizedLinear&)>& on_linear = {});

/// The Linear whose input statistics serve `id` (q/k/v -> q, gate/up -> gate).
LinearId stats_source(LinearId id);

/// FP8 E4M3 weight quantization (compressed-tensors, SPECS.md A4.2): scale =
/// amax / 448 per tensor or per row (at least float eps), codes =
/// e4m3(clamp(w / scale, +-448)), q = scale * value(code).
QuantizedWeight fp8_quantize(const Eigen::MatrixXf& w, WeightStrategy strategy);

}  // namespace qsweep::quant
