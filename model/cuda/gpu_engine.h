#pragma once
// The GPU engine: a TokenEngine (model/engine/token_engine.h) over a
// GpuTransformer. Loglikelihoods use the CPU engine's batching
// (model/engine/ll_batching.h) with scores computed on the device; generate
// decodes with the KV cache on the device (greedy: argmax on the device;
// sampled: the CPU engine's Sampler on the logits row); generate_batch steps
// every unfinished sequence in one pass per token.
//
// Calls are serialized (one mutex): concurrent callers (the backend's
// parallel generations) take turns on the device.

#include <memory>
#include <mutex>

#include "model/cuda/gpu_transformer.h"
#include "model/engine/token_engine.h"

namespace qsweep::model::cuda {

class GpuEngine final : public TokenEngine {
 public:
  /// `loader`: see GpuTransformer's constructor.
  static std::unique_ptr<GpuEngine> load(const Checkpoint& ckpt, const GpuEngineOptions& opts,
                                         const LinearLoader& loader = {});
  explicit GpuEngine(std::unique_ptr<GpuTransformer> model);
  ~GpuEngine() override;

  const ModelConfig& config() const override { return model_->config(); }
  int max_length() const override { return max_length_; }
  std::string numerics() const override;
  std::string describe() const override;
  const GpuTransformer& model() const { return *model_; }

  std::vector<float> logits_batch(const std::vector<std::vector<int>>& seqs) const override;
  std::vector<LoglikelihoodResult> loglikelihood_batch(const std::vector<LoglikelihoodRequest>& reqs,
                                                       bool reuse_prefix = true) const override;
  std::vector<int> generate(const std::vector<int>& prompt, const GenerateOptions& opts) const override;
  std::vector<std::vector<int>> generate_batch(const std::vector<std::vector<int>>& prompts,
                                               const std::vector<GenerateOptions>& opts) const override;

 private:
  std::unique_ptr<GpuTransformer> model_;
  int max_length_ = 0;
  mutable std::mutex mu_;
};

}  // namespace qsweep::model::cuda
