#pragma once
// Options of the GPU engine (model/cuda/gpu_engine.h). Host-only, built
// with or without CUDA, so that stages validate them on any machine.

#include <string>

namespace qsweep::model::cuda {

enum class GpuDType { kFloat32, kBFloat16, kFloat16 };

/// "float32" | "bfloat16" | "float16" (also "fp32", "bf16", "fp16"); throws
/// std::invalid_argument naming the accepted values.
GpuDType parse_gpu_dtype(const std::string& s);
const char* gpu_dtype_name(GpuDType t);

struct GpuEngineOptions {
  int device = 0;                       // CUDA device ordinal
  GpuDType dtype = GpuDType::kFloat32;  // weights, GEMM inputs, KV cache
  bool tf32 = false;                    // fp32 GEMMs on TF32 tensor cores
  int max_length = 0;                   // 0: config max_position_embeddings
  int max_batch_tokens = 8192;          // tokens per forward pass in batched scoring
};

}  // namespace qsweep::model::cuda
