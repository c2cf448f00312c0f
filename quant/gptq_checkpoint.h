#pragma once
// AutoGPTQ v1 ("gptq") tensors (SPECS.md A1.5, A5.1): reading the packed
//   <prefix>.qweight  I32 [K*b/32, N]
//   <prefix>.qzeros   I32 [n_groups, N*b/32]   (zero - 1, the v1 convention)
//   <prefix>.scales   F16 [n_groups, N]
//   <prefix>.g_idx    I32 [K]
// of one Linear and decoding them. Writing: quant/formats/format.h
// (encode_linear) through quant/quantize_model.h.
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

/// True for the names of the decoder-layer Linear weights that are quantized
/// ("model.layers.3.mlp.up_proj.weight"); sets *prefix to the name without
/// ".weight".
bool is_quantized_linear_weight(const std::string& tensor_name, std::string* prefix = nullptr);

/// The v1 decode of packed tensors: W [N, K] (fp32) = scales[g_idx[k], n] *
/// (q[k, n] - (zeros_field[g_idx[k], n] + 1)).
Eigen::MatrixXf dequantize_gptq(const GptqPacked& p);

/// Reads <prefix>.{qweight,qzeros,scales,g_idx} of `ckpt` (bits inferred from
/// the qweight shape) and checks them against [out, in].
GptqPacked read_gptq_tensors(const model::Checkpoint& ckpt, const std::string& prefix, int out,
                             int in);

}  // namespace qsweep::quant
