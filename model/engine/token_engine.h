#pragma once
// What every token-level inference engine offers (the CPU Engine,
// model/engine/engine.h, and the GPU engine, model/cuda/gpu_engine.h), so
// that backends, `qsweep serve` and the quality checks run on either:
//   logits_batch          all positions of several sequences
//   loglikelihood_batch   lm-eval semantics: sum of log p(continuation |
//                         context) and whether every continuation token is
//                         the argmax; contexts shared by several requests
//                         computed once (KV cache fork) with reuse_prefix
//   loglikelihood_rolling perplexity over long text, lm-eval rolling windows
//   generate              greedy or sampled decoding with a KV cache
// Error policy: std::invalid_argument (bad token id, empty context,
// continuation longer than max_length) naming the request.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/checkpoint/config.h"

namespace qsweep::model {

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
/// loglikelihood of the CPU engine and of `qsweep serve` uses (the GPU
/// engine's kernel follows it: model/cuda/gpu_kernels.cuh score_rows).
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

class TokenEngine {
 public:
  virtual ~TokenEngine() = default;

  virtual const ModelConfig& config() const = 0;
  virtual int max_length() const = 0;
  /// Every engine setting that can change an answer beyond fp32 summation
  /// order ("dtype=fp32"; the GPU engine adds its device and dtype): part of
  /// the backend fingerprint (model/backend/backend.h).
  virtual std::string numerics() const = 0;
  /// One line for logs ("embedded CPU engine (fp32)", "CUDA engine on ...").
  virtual std::string describe() const = 0;

  /// Logits of several sequences in one forward pass (each its own KV
  /// cache): [sum of sizes, vocab], the sequences' rows one after another.
  virtual std::vector<float> logits_batch(const std::vector<std::vector<int>>& seqs) const = 0;
  /// Many requests; each context + continuation is left-truncated to
  /// max_length + 1 tokens as lm-eval does. With `reuse_prefix`, requests with
  /// identical contexts run the context once and fork its KV cache.
  virtual std::vector<LoglikelihoodResult> loglikelihood_batch(
      const std::vector<LoglikelihoodRequest>& reqs, bool reuse_prefix = true) const = 0;
  /// Generated ids (the prompt not included).
  virtual std::vector<int> generate(const std::vector<int>& prompt,
                                    const GenerateOptions& opts) const = 0;
  /// generate() of each prompt with its options (opts.size() == prompts.size()).
  /// Default: the prompts in parallel (oneTBB) through generate(); the GPU
  /// engine decodes them together, one pass per token.
  virtual std::vector<std::vector<int>> generate_batch(const std::vector<std::vector<int>>& prompts,
                                                       const std::vector<GenerateOptions>& opts) const;

  /// Logits [ids.size(), vocab] (row-major) of one sequence.
  std::vector<float> logits(const std::vector<int>& ids) const { return logits_batch({ids}); }
  /// log p(continuation | context) of one request in a pass of its own.
  LoglikelihoodResult loglikelihood(const std::vector<int>& context,
                                    const std::vector<int>& continuation) const;
  /// Sum of log p over all of ids with lm-eval rolling windows of max_length
  /// (default: engine max_length); prefix_token -1: bos_token_id (else eos).
  RollingResult loglikelihood_rolling(const std::vector<int>& ids, int max_length = 0,
                                      int prefix_token = -1) const;

 protected:
  /// Throws std::invalid_argument when an id is outside the vocabulary.
  void check_ids(const std::vector<int>& ids, const char* what) const;
  /// Throws std::invalid_argument on an empty prompt or a bad id.
  void check_prompt(const std::vector<int>& prompt) const;
  /// Throws std::invalid_argument unless there is one option set per prompt.
  static void check_batch(size_t n_prompts, size_t n_opts);
  /// Validates requests and returns each context left-truncated so that
  /// context + continuation keep their last max_length() + 1 tokens.
  std::vector<std::vector<int>> truncated_contexts(const std::vector<LoglikelihoodRequest>& reqs) const;
};

}  // namespace qsweep::model
