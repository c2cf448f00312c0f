#pragma once
// GpuTransformer's state, shared by gpu_transformer.cu (kernels, passes) and
// gpu_load.cpp (reading a checkpoint on the host). No CUDA types: device
// pointers are void* / float*, the stream and cuBLAS handle opaque.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "model/cuda/gpu_transformer.h"

namespace qsweep::model::cuda {

/// One decoder layer's device weights. Matrices in the engine dtype,
/// row-major [out, in] (PyTorch layout); vectors fp32; absent biases null.
struct DeviceLayer {
  void* wqkv = nullptr;   // [qd + 2 kvd, d]: q rows, then k, then v
  void* wo = nullptr;     // [d, qd]
  void* wgu = nullptr;    // [2 ff, d]: gate rows, then up
  void* wdown = nullptr;  // [d, ff]
  float* attn_norm = nullptr;  // [d]
  float* ffn_norm = nullptr;   // [d]
  float* bqkv = nullptr;       // [qd + 2 kvd]
  float* bo = nullptr;         // [d]
  float* bgu = nullptr;        // [2 ff]
  float* bdown = nullptr;      // [d]
};

struct GpuTransformer::Impl {
  int device = 0;
  GpuDType dtype = GpuDType::kFloat32;
  void* stream = nullptr;  // cudaStream_t
  void* cublas = nullptr;  // cublasHandle_t
  size_t elt = 4;          // bytes per element of the engine dtype
  std::string device_name;
  std::vector<void*> owned;  // every weight allocation (freed in the destructor)

  std::vector<DeviceLayer> layers;
  void* embed = nullptr;      // [vocab, d]
  void* lm_head = nullptr;    // [vocab, d] (== embed when tied)
  float* final_norm = nullptr;
  float* inv_freq = nullptr;  // [head_dim / 2]

  /// Scratch of passes, grown on demand (device, stream-ordered).
  struct Buffer {
    void* p = nullptr;
    size_t bytes = 0;
  };
  Buffer meta, x, h, qkv, att, gu, act, hout, logits, scores, parts;
  void* host_meta = nullptr;  // pinned staging for the pass metadata
  size_t host_meta_bytes = 0;
  void* host_out = nullptr;   // pinned staging for results
  size_t host_out_bytes = 0;

  struct Graph {
    std::vector<uintptr_t> key;  // pass shape and buffer addresses
    void* exec = nullptr;        // cudaGraphExec_t; null until seen twice
  };
  std::vector<Graph> graphs;
  bool simple_attention = false;  // $QSWEEP_GPU_ATTENTION=simple: never the tensor-core kernel (tests)
  /// Programmatic dependent launches on passes of <= 4 rows (decode steps;
  /// sm_90+; $QSWEEP_GPU_PDL=0 turns them off for comparisons).
  bool pdl = false;
  struct Profiler* profiler = nullptr;  // owned; see gpu_transformer.cu

  // Implemented in gpu_transformer.cu; throw std::runtime_error naming `what`.
  Impl(const ModelConfig& c, const GpuEngineOptions& o);
  ~Impl();
  void* alloc_weight(size_t bytes, const char* what);
  /// Copies fp32 host values to a new device array in the engine dtype.
  void* upload_matrix(const float* host, size_t n, const std::string& what);
  /// Copies fp32 host values to a new fp32 device array (nullptr when n == 0).
  float* upload_f32(const float* host, size_t n, const std::string& what);
};

}  // namespace qsweep::model::cuda
