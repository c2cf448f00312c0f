#pragma once
// The embedded CPU engine: fp32 compute (Eigen GEMMs, oneTBB parallelism) over
// a Transformer, with the operations of every TokenEngine
// (model/engine/token_engine.h; the batching of loglikelihood requests is
// shared with the GPU engine: model/engine/ll_batching.h).
//
// Threads: every call runs inside a tbb::task_arena — the caller's
// (EngineOptions::arena) or one the engine makes with EngineOptions::threads.
// Eigen runs single-threaded inside tasks. Calls are const and may run
// concurrently (each has its own caches and buffers). Results are bitwise
// reproducible for a given thread count and batch composition (buffers are
// 64-byte aligned; GEMM tiling depends on both).
//
// Error policy: load and the request functions throw std::runtime_error /
// std::invalid_argument (bad token id, empty context, sequence longer than
// max_length) with a clear message; kernels abort on broken invariants.

#include <tbb/task_arena.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <vector>

#include "model/checkpoint/config.h"
#include "model/engine/linear.h"
#include "model/engine/token_engine.h"

namespace qsweep::model {

class Checkpoint;
class Transformer;

struct EngineOptions {
  int threads = 0;                   // 0: all cores; ignored when `arena` is set
  tbb::task_arena* arena = nullptr;  // the caller's arena (not owned)
  int max_length = 0;                // 0: config max_position_embeddings
  int max_batch_tokens = 4096;       // tokens per forward pass in batched scoring
  LinearLoader linear_loader{};      // empty: fp32 DenseLinear
};

class Engine final : public TokenEngine {
 public:
  /// Loads the HF folder `dir` (config.json + safetensors).
  static std::unique_ptr<Engine> load(const std::filesystem::path& dir, EngineOptions opts = {});
  static std::unique_ptr<Engine> load(const Checkpoint& ckpt, EngineOptions opts = {});
  /// Wraps an already built model (benchmarks: random weights).
  Engine(std::unique_ptr<Transformer> model, EngineOptions opts);
  ~Engine() override;

  const ModelConfig& config() const override;
  int max_length() const override { return max_length_; }
  std::string numerics() const override { return "dtype=fp32"; }
  std::string describe() const override { return "embedded CPU engine (fp32)"; }
  const Transformer& model() const { return *model_; }

  /// Row i of a sequence is bitwise what logits() gives only when the pass
  /// holds that sequence alone (the batch changes fp32 summation order).
  std::vector<float> logits_batch(const std::vector<std::vector<int>>& seqs) const override;
  std::vector<LoglikelihoodResult> loglikelihood_batch(const std::vector<LoglikelihoodRequest>& reqs,
                                                       bool reuse_prefix = true) const override;
  std::vector<int> generate(const std::vector<int>& prompt, const GenerateOptions& opts) const override;

 private:
  template <class F>
  auto in_arena(F&& f) const;

  std::unique_ptr<Transformer> model_;
  EngineOptions opts_;
  std::unique_ptr<tbb::task_arena> own_arena_;
  tbb::task_arena* arena_ = nullptr;
  int max_length_ = 0;
};

}  // namespace qsweep::model
