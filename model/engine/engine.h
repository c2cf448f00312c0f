#pragma once
// The embedded CPU engine: fp32 compute (Eigen GEMMs, oneTBB parallelism) over
// a Transformer, with the operations the infer stage needs:
//   logits            all positions of one sequence (tests, debugging)
//   loglikelihood     lm-eval semantics: sum of log p(continuation | context)
//                     and whether every continuation token is the argmax;
//                     batched, with the context of requests that share one
//                     computed once (KV cache fork)
//   loglikelihood_rolling  perplexity over long text, lm-eval rolling windows
//   generate          greedy or sampled decoding with a KV cache
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

struct LoglikelihoodRequest {
  std::vector<int> context;       // non-empty (lm-eval puts BOS/EOT there for empty contexts)
  std::vector<int> continuation;  // non-empty
};

struct LoglikelihoodResult {
  double logprob = 0;      // sum of log-softmax of the continuation tokens
  bool is_greedy = false;  // every continuation token is the argmax at its position
};

/// log-softmax of `target` in logits [n] (fp32 logits, double arithmetic,
/// max-shifted), and whether target is the argmax: the one definition every
/// loglikelihood of the engine and of `qsweep serve` uses.
LoglikelihoodResult score_token(const float* logits, int n, int target);

struct RollingResult {
  double logprob = 0;  // sum over all tokens
  int n_tokens = 0;    // tokens scored (== ids.size())
  int n_windows = 0;
};

struct GenerateOptions {
  int max_tokens = 256;
  float temperature = 0;  // 0: greedy
  float top_p = 1;        // nucleus cut when < 1 (sampling only)
  uint64_t seed = 0;
  std::vector<int> stop_ids{};  // generation ends before appending any of these
  /// Called after each appended token with everything generated so far;
  /// returning true ends generation (stop strings are checked here).
  std::function<bool(const std::vector<int>&)> stop{};
};

class Engine {
 public:
  /// Loads the HF folder `dir` (config.json + safetensors).
  static std::unique_ptr<Engine> load(const std::filesystem::path& dir, EngineOptions opts = {});
  static std::unique_ptr<Engine> load(const Checkpoint& ckpt, EngineOptions opts = {});
  /// Wraps an already built model (benchmarks: random weights).
  Engine(std::unique_ptr<Transformer> model, EngineOptions opts);
  ~Engine();

  const ModelConfig& config() const;
  int max_length() const { return max_length_; }
  const Transformer& model() const { return *model_; }

  /// Logits [ids.size(), vocab] (row-major) of one sequence.
  std::vector<float> logits(const std::vector<int>& ids) const;
  /// Logits of several sequences in one forward pass (each its own KV
  /// cache): [sum of sizes, vocab], the sequences' rows one after another.
  /// Row i of a sequence is bitwise what logits() gives only when the pass
  /// holds that sequence alone (the batch changes fp32 summation order).
  std::vector<float> logits_batch(const std::vector<std::vector<int>>& seqs) const;
  /// log p(continuation | context); the whole is left-truncated to
  /// max_length + 1 tokens as lm-eval does.
  LoglikelihoodResult loglikelihood(const std::vector<int>& context,
                                    const std::vector<int>& continuation) const;
  /// Many requests; with `reuse_prefix`, requests with identical contexts run
  /// the context once and fork its KV cache for each continuation.
  std::vector<LoglikelihoodResult> loglikelihood_batch(
      const std::vector<LoglikelihoodRequest>& reqs, bool reuse_prefix = true) const;
  /// Sum of log p over all of ids with lm-eval rolling windows of max_length
  /// (default: engine max_length); prefix_token -1: bos_token_id (else eos).
  RollingResult loglikelihood_rolling(const std::vector<int>& ids, int max_length = 0,
                                      int prefix_token = -1) const;
  /// Generated ids (the prompt not included).
  std::vector<int> generate(const std::vector<int>& prompt, const GenerateOptions& opts) const;

 private:
  template <class F>
  auto in_arena(F&& f) const;
  void check_ids(const std::vector<int>& ids, const char* what) const;

  std::unique_ptr<Transformer> model_;
  EngineOptions opts_;
  std::unique_ptr<tbb::task_arena> own_arena_;
  tbb::task_arena* arena_ = nullptr;
  int max_length_ = 0;
};

}  // namespace qsweep::model
