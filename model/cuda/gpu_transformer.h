#pragma once
// The decoder-only transformer (model/engine/transformer.h) on one NVIDIA GPU.
// Host-only header: no CUDA types; the implementation is gpu_transformer.cu.
//
// Weights live on the device in the engine dtype (fp32, bf16 or fp16): the
// fused q|k|v [qd + 2 kvd, d] and gate|up [2 ff, d] matrices, o [d, qd],
// down [d, ff], the embedding [vocab, d] and lm_head [vocab, d] (tied: the
// embedding). Norm weights, biases and RoPE inverse frequencies are fp32.
// Activation-quantized Linears (W8A8 int8, FP8) keep their int8 / E4M3
// codes and per-row scales and run as gpu_quant.cu describes.
// GEMMs are cuBLAS (inputs in the engine dtype, fp32 accumulation, fp32
// outputs — gate|up in the engine dtype for bf16/fp16, as transformers —;
// TF32 only with tf32); passes of <= 4 rows use a GEMV kernel. The residual
// stream, RMSNorm, RoPE, softmax and activations compute in fp32;
// activations entering a GEMM and the KV cache are stored in the engine
// dtype. With fp32 everything is fp32.
//
// Per pass: ids [n_rows] of segments (each appends to its own GpuKvCache);
// attention is fused (online softmax over key tiles, no [seq x seq]
// matrix): WMMA tensor cores for bf16/fp16 segments of >= 32 tokens, an
// fp32 kernel otherwise, a split-key kernel for decode steps. Outputs for the
// listed rows only: logits copied to the host, or log-softmax scores of
// target tokens (score_token semantics, computed on the device), or argmax
// ids. A pass with the shape and buffers of an earlier one replays a CUDA
// graph.
//
// Not thread-safe: one pass at a time (GpuEngine serializes).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/checkpoint/config.h"
#include "model/cuda/gpu_options.h"
#include "model/engine/attention.h"
#include "model/engine/linear.h"
#include "model/engine/token_engine.h"

namespace qsweep::model {
class Checkpoint;
}

namespace qsweep::model::cuda {

class GpuTransformer;

/// Whether a CUDA device can be used; *why says why not ("no CUDA device
/// visible", the driver's error).
bool cuda_device_available(std::string* why);

/// One sequence's keys and values on the device: per layer K then V, each
/// [capacity, kv_dim] in the engine dtype; rows 0..len-1 valid. Movable.
class GpuKvCache {
 public:
  GpuKvCache() = default;
  GpuKvCache(GpuKvCache&& o) noexcept { *this = std::move(o); }
  GpuKvCache& operator=(GpuKvCache&& o) noexcept;
  GpuKvCache(const GpuKvCache&) = delete;
  GpuKvCache& operator=(const GpuKvCache&) = delete;
  ~GpuKvCache();
  int len() const { return len_; }
  int capacity() const { return cap_; }

 private:
  friend class GpuTransformer;
  const GpuTransformer* owner_ = nullptr;
  void* data_ = nullptr;  // device memory, n_layer * 2 * cap * kv_dim elements
  int cap_ = 0, len_ = 0;
};

using GpuSegment = BasicSegment<GpuKvCache>;

class GpuTransformer {
 public:
  /// Loads the checkpoint's weights one decoder layer at a time (read as
  /// fp32 on the host by the CPU loader, converted on the device). Throws
  /// std::runtime_error (CUDA errors, out of device memory, naming the
  /// tensor or the size asked for).
  /// `loader` builds each Linear on the host and must return DenseLinear,
  /// WeightOnlyLinear or ActQuantizedLinear (default: load_dense_linear;
  /// quant/'s gpu_engine_linear_loader passes quantized layers as data). A
  /// fused q|k|v or gate|up matrix is all activation-quantized or none;
  /// lm_head is not activation-quantized.
  GpuTransformer(const Checkpoint& ckpt, const GpuEngineOptions& opts, const LinearLoader& loader = {});
  /// Random weights N(0, std^2) generated on the device (benchmarks), norm
  /// weights 1 (0 for Gemma); deterministic in `seed`.
  GpuTransformer(const ModelConfig& cfg, uint64_t seed, float std, const GpuEngineOptions& opts);
  ~GpuTransformer();

  const ModelConfig& config() const { return cfg_; }
  const GpuEngineOptions& options() const { return opts_; }
  /// "NVIDIA H100 80GB HBM3 (cuda:0), bfloat16".
  std::string describe() const;
  /// Bytes of weights read per decoded token (all layers + lm_head).
  size_t weight_bytes_per_token() const;

  GpuKvCache new_cache() const;
  /// A copy of the first c.len() positions with room for `extra` more.
  GpuKvCache fork(const GpuKvCache& c, int extra) const;
  /// Makes room for `n` positions (keeps the valid rows).
  void reserve(GpuKvCache& c, int n) const;

  /// One pass over ids [n_rows]; segments' caches grow as needed and their
  /// lengths advance. Exactly one output is written, for batch rows `rows`:
  void forward_logits(const std::vector<int>& ids, std::vector<GpuSegment>& segs,
                      const std::vector<int>& rows, float* host_logits /* [rows, vocab] */) const;
  void forward_scores(const std::vector<int>& ids, std::vector<GpuSegment>& segs,
                      const std::vector<int>& rows, const std::vector<int>& targets,
                      LoglikelihoodResult* out /* [rows] */) const;
  void forward_argmax(const std::vector<int>& ids, std::vector<GpuSegment>& segs,
                      const std::vector<int>& rows, int* out /* [rows] */) const;

  /// Waits for the device (benchmarks).
  void synchronize() const;

  struct Impl;

 private:
  friend class GpuKvCache;
  struct PassArgs;
  void run_pass(const PassArgs& a) const;
  void release(GpuKvCache& c) const;
  ModelConfig cfg_;
  GpuEngineOptions opts_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qsweep::model::cuda
