#pragma once
// GpuTransformer's state, shared by gpu_transformer.cu (kernels, passes) and
// gpu_load.cpp (reading a checkpoint on the host). No CUDA types: device
// pointers are void* / float*, the stream and cuBLAS handle opaque.

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "model/cuda/gpu_transformer.h"

namespace qsweep::model::cuda {

/// Rows [row0, row0 + out) of a stacked matrix held as an activation-
/// quantized Linear (model::ActQuantizedLinear): codes [out_pad, in_pad]
/// row-major (int8 signed codes or E4M3 bits; padding zero, out_pad and
/// in_pad multiples of 16 for the tensor-core GEMMs), one fp32 weight scale
/// per row, the activation scheme.
struct QuantPart {
  int row0 = 0, out = 0, in = 0, out_pad = 0, in_pad = 0;
  int act = 0;  // ActQuantizedLinear::Act
  void* codes = nullptr;
  float* w_scale = nullptr;  // [out]
  float input_scale = 0;     // static FP8
};

/// Rows [row0, row0 + out) of a stacked matrix held as a weight-only
/// quantized Linear (model::WeightOnlyLinear; gpu_weight_only.cu): input
/// columns in the stored order (each group's columns contiguous: stored
/// column j is input column perm[j], perm null for the identity), codes
/// [out, in * bits / 8] row-major (int4: column 2i in the low nibble), per
/// (row, stored group j / group) the pair {scale, zero} fp32.
struct WeightOnlyPart {
  int row0 = 0, out = 0, in = 0;
  int bits = 4;      // 4 or 8
  bool fp8 = false;  // codes are E4M3 bits (bits 8, zero 0)
  int group = 0;     // stored columns per group, a multiple of 128 / bits
  int n_groups = 0;  // columns of the {scale, zero} rows
  uint8_t* codes = nullptr;
  float* sz = nullptr;  // [out, n_groups] x {scale, zero}
  int* perm = nullptr;  // [in] or null
  int* inv = nullptr;   // [in]: the stored column of input column k (perm's inverse), or null
};

/// A weight matrix [out, in] (several Linears stacked by rows): dense in the
/// engine dtype, activation-quantized parts or weight-only parts (then
/// `dense` is null); its bias [out] fp32 (stacked; zeros for a part
/// without), or null.
struct DeviceMatrix {
  void* dense = nullptr;
  std::vector<QuantPart> parts;
  std::vector<WeightOnlyPart> wparts;
  float* bias = nullptr;
  size_t bytes = 0;  // device bytes read per token (weights and scales)
  bool quantized() const { return !parts.empty(); }
  bool weight_only() const { return !wparts.empty(); }
};

/// How the GPU's weight-only kernels store a Linear: the stored column
/// order (each group's columns contiguous; empty: the identity) and the
/// group width.
struct WeightOnlyLayout {
  std::vector<int> perm;
  int group = 0;
};

/// The layout of `d`, or none when the kernels do not take it (4- or 8-bit
/// codes, `in` a multiple of 128 / bits, the columns sortable by g_idx into
/// groups of one width that is a multiple of 128 / bits, integer zeros).
/// gpu_weight_only.cu.
std::optional<WeightOnlyLayout> weight_only_layout(const WeightOnlyLinear::Data& d);

/// One decoder layer's device weights. Matrices row-major [out, in]
/// (PyTorch layout); vectors fp32.
struct DeviceLayer {
  DeviceMatrix wqkv;   // [qd + 2 kvd, d]: q rows, then k, then v
  DeviceMatrix wo;     // [d, qd]
  DeviceMatrix wgu;    // [2 ff, d]: gate rows, then up
  DeviceMatrix wdown;  // [d, ff]
  float* attn_norm = nullptr;  // [d]
  float* ffn_norm = nullptr;   // [d]
};

struct GpuTransformer::Impl {
  int device = 0;
  GpuDType dtype = GpuDType::kFloat32;
  void* stream = nullptr;  // cudaStream_t
  void* cublas = nullptr;  // cublasHandle_t
  void* cublaslt = nullptr;  // cublasLtHandle_t (FP8 GEMMs)
  void* workspace = nullptr;  // cuBLAS / cuBLASLt workspace (graph-capturable GEMMs)
  size_t workspace_bytes = 0;
  int cc_major = 0, cc_minor = 0;
  size_t elt = 4;          // bytes per element of the engine dtype
  std::string device_name;
  std::vector<void*> owned;  // every weight allocation (freed in the destructor)

  std::vector<DeviceLayer> layers;
  void* embed = nullptr;      // [vocab, d]
  DeviceMatrix lm_head;       // [vocab, d], dense (== embed when tied)
  float* final_norm = nullptr;
  float* inv_freq = nullptr;  // [head_dim / 2]

  /// Scratch of passes, grown on demand (device, stream-ordered).
  struct Buffer {
    void* p = nullptr;
    size_t bytes = 0;
  };
  Buffer meta, x, h, qkv, att, gu, act, hout, logits, scores, score_parts;  // score_parts: split scoring statistics
  Buffer qx, qsx, qacc;  // activation-quantized GEMMs: codes of x, its scales, accumulators
  Buffer wx, wdq;        // weight-only matrices: x in the stored column order, dequantized weights
  /// cuBLASLt's FP8 algorithm per (out_pad, in_pad, n_pad): cublasLtMatmulAlgo_t's bytes.
  std::map<std::array<int, 3>, std::array<uint64_t, 8>> fp8_algos;
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
  /// Makes `device` the calling thread's current CUDA device.
  void use_device() const;
  void* alloc_weight(size_t bytes, const char* what);
  /// Copies fp32 host values to a new device array in the engine dtype.
  void* upload_matrix(const float* host, size_t n, const std::string& what);
  /// The buffer's device memory, grown (stream-ordered, by >= 1.5x) to at
  /// least `bytes`; contents are lost when it grows.
  void* ensure(Buffer& b, size_t bytes, const char* what);
  /// Copies fp32 host values to a new fp32 device array (nullptr when n == 0).
  float* upload_f32(const float* host, size_t n, const std::string& what);
  /// An activation-quantized Linear's codes and scales on the device, as
  /// rows [row0, row0 + out) of a stacked matrix (bias set by the caller).
  QuantPart upload_quantized(const ActQuantizedLinear::Data& d, int row0, const std::string& what);
  /// Weight-only Linears' codes, scales and zeros on the device as one part:
  /// rows [row0, row0 + sum of outs) of a stacked matrix, `ds` stacked in
  /// order; they share bits, input width, groups and g_idx, whose layout is
  /// `layout` (weight_only_layout).
  WeightOnlyPart upload_weight_only(const std::vector<const WeightOnlyLinear::Data*>& ds,
                                    const WeightOnlyLayout& layout, int row0, const std::string& what);
};

/// y [n, out] (ld out) = the quantized matrix W applied to x [n, in] (engine
/// dtype) + beta * y, W's bias included: per part, x quantized per token
/// (int8 or E4M3, as the CPU kernel), an int8 (int32 accumulation) or FP8
/// (fp32 accumulation) tensor-core GEMM, then y = sx * (w_scale * acc) +
/// bias. y fp32, or the engine dtype with y_engine. gpu_quant.cu.
void quant_gemm(GpuTransformer::Impl& m, const DeviceMatrix& W, const void* x, void* y, int n, int out, int in,
                float beta, bool y_engine, bool pdl);

/// y [n, out] (ld out) = x [n, in] W^T (+ beta * y) + W's bias for a
/// weight-only matrix and 1 <= n <= 4 rows (decode steps), from its codes;
/// x, y as quant_gemm. gpu_weight_only.cu.
void weight_only_gemv(GpuTransformer::Impl& m, const DeviceMatrix& W, const void* x, void* y, int n, int out, int in,
                      float beta, bool y_engine, bool pdl);

/// W's weights [out, in] in the engine dtype (a scratch matrix valid until
/// the next call), for a dense GEMM. gpu_weight_only.cu.
const void* dequantize_weight_only(GpuTransformer::Impl& m, const DeviceMatrix& W, int out, int in, bool pdl);

}  // namespace qsweep::model::cuda
