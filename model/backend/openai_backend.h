#pragma once
// An OpenAI-compatible inference server (vLLM, `qsweep serve`, a hosted API)
// as a Backend, behaving as lm-eval v0.4.4's local-completions model with
// tokenized requests:
//   - loglikelihood: the request is encoded on the client exactly as the
//     embedded backend encodes it (hflm_encoding.h, with the model folder's
//     tokenizer, which must be the server's), context + continuation keep
//     their last max_length tokens, and POST /v1/completions {prompt: ids,
//     max_tokens: 1, echo: true, logprobs: 1, temperature: 0}; the answer is
//     the sum of token_logprobs[ctxlen:-1], greedy when each of those tokens
//     is the top-1 of its top_logprobs (lm-eval's parse_logprobs). A
//     `qsweep serve` (its /version starts with "qsweep-") is asked for the
//     prompt's logprobs alone (max_tokens 0) over the embedded engine's
//     window (max_length + 1 tokens), so its answers equal the in-process ones;
//   - loglikelihood_rolling: lm-eval's rolling windows, each a loglikelihood;
//   - generate_until: the prompt ids of hflm_encoding.h (or, with `chat`,
//     the text as one user message to /v1/chat/completions), max_tokens,
//     temperature, seed and the stop strings; the text is cut at the stop
//     strings again on the client.
// Several endpoints share the requests of one call, each with at most
// `concurrency` in flight (least busy first). 429, 5xx, timeouts and
// dropped connections are retried with exponential backoff (possibly on
// another endpoint); other 4xx fail at once with the server's message. The
// API key is read from the environment variable named by api_key_env, sent
// only as a bearer token and never written anywhere (not in errors, the
// fingerprint or describe()).

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/backend/backend.h"
#include "model/backend/hflm_encoding.h"
#include "model/hub/http.h"

namespace qsweep::model {

struct OpenAIBackendOptions {
  std::vector<std::string> endpoints{};  ///< base URLs, e.g. "http://127.0.0.1:8000/v1"
  int concurrency = 4;                 ///< requests in flight per endpoint
  std::string model{};                 ///< served model id ("" = the first of GET /models)
  std::string api_key_env{};           ///< environment variable holding the key ("" = none)
  bool chat = false;                   ///< generation through /chat/completions (text)
  bool add_bos_token = false;          ///< lm-eval add_bos_token (client-side encoding)
  int max_length = 0;                  ///< 0 = the server's max_model_len (else 2048)
  int max_attempts = 5;                ///< per request, across endpoints
  double backoff_s = 1;                ///< first retry delay; doubles, at most 30 s
  double timeout_s = 600;              ///< per HTTP request
};

class OpenAIBackend : public Backend {
 public:
  /// tok: the served model's tokenizer (needed for loglikelihoods and
  /// token-id generation; null = text generation through `chat` only).
  /// Queries GET /models and GET /version (retrying as requests do); throws
  /// std::runtime_error naming the endpoint when the server cannot be used.
  OpenAIBackend(OpenAIBackendOptions opts, std::shared_ptr<HttpClient> http, const Tokenizer* tok);

  std::string fingerprint() const override;
  std::string describe() const override;
  std::vector<LoglikelihoodAnswer> loglikelihood(std::span<const TextLoglikelihood> reqs) override;
  std::vector<RollingAnswer> loglikelihood_rolling(std::span<const std::string> texts) override;
  std::vector<std::string> generate_until(std::span<const TextGeneration> reqs) override;

  const std::string& served_model() const { return model_; }
  const std::string& server_version() const { return version_; }
  int max_length() const { return max_length_; }
  /// HTTP requests sent and retried so far (tests, logs).
  int requests_sent() const { return sent_.load(); }
  int retries() const { return retried_.load(); }

  /// POST path (relative to the endpoint, e.g. "/completions") with retries.
  nlohmann::json post(const std::string& path, const nlohmann::json& body);
  /// Runs fn(i) for i in [0, n) on up to endpoints x concurrency threads;
  /// the first exception stops handing out work and is rethrown.
  void parallel(size_t n, const std::function<void(size_t)>& fn);

 private:
  struct TokenScores {
    std::vector<double> logprobs;  ///< token_logprobs of the prompt (index 0: none)
    std::vector<bool> greedy;      ///< token is the top-1 of its top_logprobs
  };
  TokenScores score_prompt(const std::vector<int>& ids);
  LoglikelihoodAnswer score_pair(std::vector<int> ctx, const std::vector<int>& cont);
  /// The server scores a prompt without generating (max_tokens 0 with echo):
  /// `qsweep serve` does; vLLM needs max_tokens >= 1.
  bool prompt_only() const;
  nlohmann::json get(const std::string& path);
  nlohmann::json request(const std::string& method, const std::string& path, const nlohmann::json* body);
  size_t acquire();
  void release(size_t e);
  const HflmEncoder& enc() const;

  OpenAIBackendOptions opts_;
  std::shared_ptr<HttpClient> http_;
  const Tokenizer* tok_;
  std::optional<HflmEncoder> enc_;
  std::string model_, version_;
  int max_length_ = 2048;
  bool unbatched_ = false;  ///< the server scores each prompt alone (qsweep serve --max-batch-tokens 0)
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int> in_flight_;
  size_t next_ = 0;
  std::atomic<int> sent_{0}, retried_{0};
};

}  // namespace qsweep::model
