#pragma once
// What the infer stage asks of an inference backend, in text: lm-eval's three
// request kinds (lm_eval/api/model.py LM). A backend owns tokenization (the
// embedded engine encodes like lm-eval's HFLM; a remote OpenAI-compatible
// server, issue #8, sends text or token ids), so requests and answers here are
// strings and numbers only.
//
// fingerprint(): every backend setting that can change an answer for the
// same model weights (backend kind and version, dtype, add_bos_token,
// max_length, ...). With the model artifact's key it names the request
// journal of an infer node: equal fingerprint + equal request = same answer.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace qsweep::model {

struct TextLoglikelihood {
  std::string context;       // "" = score the continuation after BOS (else EOS)
  std::string continuation;  // non-empty
};

struct LoglikelihoodAnswer {
  double logprob = 0;      // sum of log p(continuation tokens | ...), nats
  bool is_greedy = false;  // every continuation token was the argmax
  int context_tokens = 0;  // after truncation
  int continuation_tokens = 0;
};

struct TextGeneration {
  std::string context;
  std::vector<std::string> until;  // stop strings; the tokenizer's EOS text is added
  int max_gen_toks = 256;
  bool do_sample = false;
  double temperature = 0;  // 0 or !do_sample: greedy
  uint64_t seed = 0;
  /// true (lm-eval): the context keeps its last max_length - max_gen_toks
  /// tokens, so the whole generation fits. false (FastChat's
  /// gen_model_answer): the prompt is kept whole (its last max_length - 1
  /// tokens at most) and generation ends at the context window.
  bool reserve_generation_room = true;
};

struct RollingAnswer {
  double logprob = 0;  // sum over every token of the text
  int tokens = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  /// See the file comment. Deterministic, no secrets.
  virtual std::string fingerprint() const = 0;
  /// One line for logs and results.json's model_args.
  virtual std::string describe() const = 0;
  /// Answers in request order. Throw std::runtime_error (bad request, server
  /// error) naming the request.
  virtual std::vector<LoglikelihoodAnswer> loglikelihood(std::span<const TextLoglikelihood> reqs) = 0;
  virtual std::vector<RollingAnswer> loglikelihood_rolling(std::span<const std::string> texts) = 0;
  /// The generations, each cut at the first stop string (not included).
  virtual std::vector<std::string> generate_until(std::span<const TextGeneration> reqs) = 0;
};

}  // namespace qsweep::model
