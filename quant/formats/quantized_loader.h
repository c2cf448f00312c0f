#pragma once
// The engine LinearLoader for checkpoints written in any of the formats of
// quant/formats/format.h. On first use per model folder it reads
// config.json's `quantization_config` (or, for AutoGPTQ folders without
// it, quantize_config.json); a layer stored quantized in that format
// (has_quantized_linear) is decoded (decode_linear) and run by a
// QuantizedLinearKernel; every other layer (unquantized checkpoints, ignored
// modules, lm_head) loads with model::load_dense_linear.
//
// Error policy: decode errors propagate as std::runtime_error naming the
// folder and tensor.

#include "model/engine/linear.h"
#include "quant/formats/quantized_linear_kernel.h"

namespace qsweep::quant {

/// `kind`: kFast for the engine; kReference for numerics checks.
model::LinearLoader quantized_linear_loader(KernelKind kind = KernelKind::kFast);

/// For the GPU engine (model/cuda/gpu_transformer.h): weight-only quantized
/// layers (GPTQ, AWQ, compressed-tensors W4A16/W8A16, FP8 weight-only) load
/// as model::WeightOnlyLinear — codes, group scales and zeros, g_idx, which
/// the GPU runs with its int4/int8/fp8 weight-only kernels —; layers that
/// quantize activations (W8A8 int8, FP8 activations) as
/// model::ActQuantizedLinear — their codes, scales and activation scheme,
/// which the GPU runs with integer / FP8 tensor-core GEMMs. forward() is the
/// CPU kernel in both cases.
model::LinearLoader gpu_engine_linear_loader();

}  // namespace qsweep::quant
