#pragma once
// On-disk checkpoint formats of quantized Linears that vLLM loads (SPECS.md
// A5): compressed-tensors (llm-compressor), AutoGPTQ v1 ("gptq") and AutoAWQ
// GEMM ("awq"). One QuantizedLinear (quant/quantized_linear.h) in, the
// tensors and config.json `quantization_config` out, and back.
//
// Tensors per Linear (K = in_features, N = out_features, G = group size,
// per = 32 / bits, n_groups = K / G or 1 for channel/tensor):
//   compressed-tensors "pack-quantized" (int4/int8 weight-only):
//     weight_packed      I32 [N, ceil(K/per)]  unsigned code (= signed code + 2^(b-1)) along K, LSB = lowest k
//     weight_scale       model dtype [N, n_groups]
//     weight_shape       I32 [2] = [N, K]
//     weight_zero_point  I32 [ceil(N/per), n_groups]  zero (= signed zp + 2^(b-1)) packed along N; asym only
//     weight_g_idx       I32 [K]                only with actorder "group" (g_idx not k / G)
//   compressed-tensors "int-quantized" (W8A8 int8, per-token dynamic int8 activations):
//     weight             I8 [N, K] signed code (code - 128)
//     weight_scale       model dtype [N, 1] (channel) or [1] (tensor)
//   compressed-tensors "float-quantized" (fp8 W + fp8 A) / "naive-quantized" (fp8 weight-only):
//     weight             F8_E4M3 [N, K]
//     weight_scale       model dtype [N, 1] (channel) or [1] (tensor)
//     input_scale        model dtype [1] (fp8 tensor-static activations only)
//   gptq (v1): qweight I32 [K/per, N], qzeros I32 [n_groups, N/per] (zero - 1),
//     scales F16 [n_groups, N], g_idx I32 [K]                    (quant/pack_gptq.h)
//   awq (GEMM, 4 bit): qweight I32 [K, N/8], qzeros I32 [K/G, N/8], scales F16 [K/G, N]
//     (AWQ_ORDER interleave along N, zeros as is; quant/awq.h)
//   every format: bias [N] (compressed-tensors: model dtype; gptq/awq: F16) when present.
//
// Bit-exactness contract: after finalize_for_format (scales, input_scale and
// bias rounded to their storage dtype, q recomputed from the codes),
// decode_linear(encode_linear(x)) gives the same codes, zeros, scales and
// q, bit for bit.
//
// Error policy: encode/finalize throw std::runtime_error naming the layer;
// decode throws naming the folder and tensor (hostile files never crash).

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "model/checkpoint/checkpoint.h"
#include "model/checkpoint/safetensors.h"
#include "model/dtype.h"
#include "quant/quantized_linear.h"

namespace qsweep::quant {

enum class CheckpointFormat { kCompressedTensors, kGptq, kAwq };

/// "compressed-tensors" | "gptq" | "awq"; throws naming the accepted values.
CheckpointFormat parse_checkpoint_format(const std::string& name);
const char* checkpoint_format_name(CheckpointFormat f);

/// The format of a checkpoint from config.json's quantization_config
/// (the object itself or the whole config.json): quant_method
/// "compressed-tensors" | "gptq" | "awq"; nullopt when absent or other.
std::optional<CheckpointFormat> detect_format(const nlohmann::json& config);

/// "" when `format` can store `ql`, else the reason (naming the layer).
std::string check_format_supports(CheckpointFormat format, const QuantizedLinear& ql);

/// Rounds the stored floats to their on-disk dtype (gptq/awq: fp16 scales and
/// bias; compressed-tensors: `model_dtype` for weight_scale, input_scale and
/// bias) and recomputes weight.q from the codes with the rounded scales.
/// Throws if a rounded scale is not finite (e.g. > 65504 in fp16).
void finalize_for_format(CheckpointFormat format, model::DType model_dtype, QuantizedLinear* ql);

/// The tensors of one Linear, named prefix + "." + tensor. Throws (with the
/// check_format_supports reason) if the format cannot store it.
/// `model_dtype` is the dtype of compressed-tensors' scales and bias (F32,
/// F16 or BF16); gptq/awq always store F16.
std::map<std::string, model::TensorData> encode_linear(CheckpointFormat format,
                                                       model::DType model_dtype,
                                                       const QuantizedLinear& ql);

/// config.json's `quantization_config` for a checkpoint whose quantized
/// Linears are all like `representative` (SPECS.md A5). `ignore`: modules
/// kept in full precision (compressed-tensors `ignore`, "lm_head" always
/// added; awq `modules_to_not_convert`; gptq a vLLM `dynamic` "-:" rule per
/// module other than lm_head). `tool_fields` are merged in last (overwrite).
nlohmann::json quantization_config(CheckpointFormat format, const QuantizedLinear& representative,
                                   const std::vector<std::string>& ignore,
                                   const nlohmann::json& tool_fields = nlohmann::json::object());

/// True when `ckpt` stores Linear `prefix` quantized in `format` (its
/// qweight / weight_packed / weight_scale tensor exists).
bool has_quantized_linear(CheckpointFormat format, const model::Checkpoint& ckpt,
                          const std::string& prefix);

/// Reads Linear `prefix` ([out, in]) stored in the format of
/// `quantization_config` and returns codes/scales/zeros/g_idx/q, the
/// activation scheme, input_scale and bias (empty when no <prefix>.bias).
QuantizedLinear decode_linear(const model::Checkpoint& ckpt, const std::string& prefix, int out,
                              int in, const nlohmann::json& quantization_config);

/// True when g_idx[k] == k / group_width for every k (no act-order).
bool natural_g_idx(const QuantizedWeight& w);

}  // namespace qsweep::quant
