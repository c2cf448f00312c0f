#pragma once
// AutoGPTQ v1 ("gptq") checkpoints: writing one from a Hugging Face folder
// with RTN weight-only quantization, and loading one into the embedded engine
// (SPECS.md A1.5, A5.1).
//
// Writer: every decoder-layer Linear (model.layers.{i}.self_attn.{q,k,v,o}_proj,
// model.layers.{i}.mlp.{gate,up,down}_proj) is converted to fp32, quantized
// with rtn_quantize and packed with pack_gptq into
//   <prefix>.qweight  I32 [K*b/32, N]
//   <prefix>.qzeros   I32 [n_groups, N*b/32]   (zero - 1, the v1 convention)
//   <prefix>.scales   F16 [n_groups, N]
//   <prefix>.g_idx    I32 [K]
//   <prefix>.bias     F16 [N]                   (when the source has one)
// Every other tensor (embeddings, norms, lm_head) is copied unchanged (same
// name, dtype, bytes). Output: model.safetensors (one file), config.json (the
// source's plus `quantization_config`), quantize_config.json (the same keys),
// and the source's tokenizer files and generation_config.json.
//
// Not streaming yet: the whole output is held in memory before it is written
// (fine for the small models of the tests; issue #4 wants layer streaming).
//
// Loader: gptq_linear_loader() forwards to quant::quantized_linear_loader()
// (quant/formats/quantized_loader.h): layers stored in this format run the
// quantized Linear kernel with the v1 decode W[n,k] = scales[g_idx[k], n] *
// (q[k,n] - (z + 1)); plain layers fall back to the dense loader.
//
// Error policy: throws std::runtime_error naming the folder / tensor.

#include <Eigen/Core>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/checkpoint/checkpoint.h"
#include "model/engine/linear.h"
#include "quant/pack_gptq.h"

namespace qsweep::quant {

struct RtnConfig {
  int bits = 4;          ///< 4 or 8
  int group_size = 128;  ///< -1 (per channel), 32, 64 or 128
  bool sym = true;
  /// A Linear whose shape cannot be packed (K or N not a multiple of 32/bits)
  /// is kept in full precision (and listed in GptqWriteResult::skipped)
  /// instead of failing. Such a checkpoint loads in the embedded engine but
  /// not in vLLM.
  bool skip_unpackable = false;
};

/// "" when valid, else a message naming the field.
std::string check_rtn_config(const RtnConfig& cfg);

/// The `quantization_config` object (also the content of quantize_config.json).
nlohmann::json gptq_quantization_config(const RtnConfig& cfg);

/// True for the names of the decoder-layer Linear weights that are quantized
/// ("model.layers.3.mlp.up_proj.weight"); sets *prefix to the name without
/// ".weight".
bool is_quantized_linear_weight(const std::string& tensor_name, std::string* prefix = nullptr);

struct GptqWriteResult {
  std::vector<std::string> quantized;  ///< layer prefixes, in order
  std::vector<std::string> skipped;    ///< layer prefixes kept in full precision
};

/// Called after each quantized (or skipped) layer: done of total, prefix.
using GptqProgress = std::function<void(int done, int total, const std::string& prefix)>;

/// Writes the checkpoint into `out_dir` (created if needed). `cancelled`
/// (optional) is polled between layers; when it returns true the function
/// throws before writing anything.
GptqWriteResult write_gptq_checkpoint(const model::Checkpoint& src, const RtnConfig& cfg,
                                      const std::filesystem::path& out_dir,
                                      const GptqProgress& progress = {},
                                      const std::function<bool()>& cancelled = {});

/// The v1 decode of packed tensors: W [N, K] (fp32) = scales[g_idx[k], n] *
/// (q[k, n] - (zeros_field[g_idx[k], n] + 1)).
Eigen::MatrixXf dequantize_gptq(const GptqPacked& p);

/// Reads <prefix>.{qweight,qzeros,scales,g_idx} of `ckpt` (bits inferred from
/// the qweight shape) and checks them against [out, in].
GptqPacked read_gptq_tensors(const model::Checkpoint& ckpt, const std::string& prefix, int out,
                             int in);

/// The engine LinearLoader for gptq checkpoints (dense fallback for layers
/// without .qweight); the same as quantized_linear_loader().
model::LinearLoader gptq_linear_loader();

}  // namespace qsweep::quant
