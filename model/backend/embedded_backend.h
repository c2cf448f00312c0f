#pragma once
// An embedded engine (the CPU Engine or the GPU engine) as a Backend, encoding requests as lm-eval v0.4.4's
// HFLM does (hflm_encoding.h; lm-eval's default add_bos_token is False):
//   - loglikelihood: HflmEncoder::encode_pair; context + continuation keep
//     their last max_length + 1 tokens (the engine truncates);
//   - loglikelihood_rolling: rolling windows of max_length over encode(text),
//     the first predicted from prefix_token;
//   - generate_until: the context keeps its last max_length - max_gen_toks
//     tokens (or, without reserve_generation_room, its last max_length - 1
//     and generation ends at the window); generation ends at EOS, after
//     max_gen_toks tokens, at the context window, or when the
//     decoded text contains a stop string; the text is cut before the first
//     occurrence of each stop string in turn (s.split(term)[0]).
// Requests of one call run batched: loglikelihoods through
// Engine::loglikelihood_batch (contexts shared by several requests are
// prefilled once when reuse_prefix), generations in parallel.

#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "model/backend/backend.h"
#include "model/backend/hflm_encoding.h"
#include "model/engine/token_engine.h"
#include "model/tokenizer/tokenizer.h"

namespace qsweep::model {

struct EmbeddedBackendOptions {
  bool add_bos_token = false;  // lm-eval model arg add_bos_token
  bool reuse_prefix = true;    // prefill a shared context once (answers equal to ~1e-5, faster)
  /// Each loglikelihood request in a forward pass of its own, no prefix
  /// reuse: answers independent of the batch (bitwise what a `qsweep serve
  /// --max-batch-tokens 0` returns); slower. Part of the fingerprint.
  bool batch_invariant = false;
};

class EmbeddedBackend : public Backend {
 public:
  /// `engine` and `tok` must outlive the backend.
  EmbeddedBackend(const TokenEngine& engine, const Tokenizer& tok, EmbeddedBackendOptions opts);

  std::string fingerprint() const override;
  std::string describe() const override;
  std::vector<LoglikelihoodAnswer> loglikelihood(std::span<const TextLoglikelihood> reqs) override;
  std::vector<RollingAnswer> loglikelihood_rolling(std::span<const std::string> texts) override;
  std::vector<std::string> generate_until(std::span<const TextGeneration> reqs) override;

  /// lm-eval's token ids of a loglikelihood request (context, continuation).
  std::pair<std::vector<int>, std::vector<int>> encode_pair(const std::string& context,
                                                            const std::string& continuation) const {
    return enc_.encode_pair(context, continuation);
  }
  /// BOS if the tokenizer has one, else EOS (lm-eval prefix_token_id).
  int prefix_token() const { return enc_.prefix_token(); }

 private:
  const TokenEngine& engine_;
  const Tokenizer& tok_;
  EmbeddedBackendOptions opts_;
  HflmEncoder enc_;
};

}  // namespace qsweep::model
