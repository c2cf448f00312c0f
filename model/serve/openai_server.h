#pragma once
// The OpenAI-compatible API over the embedded engine (what `qsweep serve`
// answers; pipeline/cli/cmd_serve.cpp binds it to HTTP). Protocol only: JSON
// request in, JSON response out, ApiError for a bad request. Semantics as
// vLLM's OpenAI server (v0.5/0.6) for the fields lm-eval and FastChat use:
//
// POST /v1/completions {model?, prompt, max_tokens = 16, echo = false,
//   logprobs = null (0..20), temperature = 0 (greedy; > 0 samples), top_p,
//   seed, stop (string or list), n = 1}
//   prompt: a string (encoded with the tokenizer's special tokens, as vLLM
//   does), a list of token ids (used as is), or a list of either (batch).
//   Generation ends at EOS, after max_tokens, or at a stop string (not
//   included; finish_reason "stop", else "length"). logprobs: per token
//   {tokens, token_logprobs, top_logprobs, text_offset} of the generated
//   tokens, preceded with echo by the prompt's (the first prompt token has
//   null). token_logprobs are log-softmax in double of the fp32 logits,
//   computed exactly as the engine's loglikelihood does. max_tokens 0 with
//   echo scores the prompt only.
// POST /v1/chat/completions {model?, messages [{role, content}], max_tokens,
//   temperature, top_p, seed, stop}: the model's chat template (or the one
//   given to the server), add_generation_prompt.
// GET /v1/models: {data: [{id, object: "model", owned_by: "qsweep",
//   max_model_len}]}. Errors: {"error": {message, type, param, code}}.

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "model/engine/token_engine.h"
#include "model/tokenizer/chat_template.h"
#include "model/tokenizer/tokenizer.h"

namespace qsweep::model {

/// A request the server refuses: HTTP status, OpenAI error type and message.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string type, const std::string& message, std::string param = {})
      : std::runtime_error(message), status_(status), type_(std::move(type)), param_(std::move(param)) {}
  int status() const { return status_; }
  nlohmann::json body() const;

 private:
  int status_;
  std::string type_, param_;
};

struct OpenAIServerOptions {
  std::string served_name{};  ///< the model id clients name
  int max_concurrent = 8;   ///< requests computed at once (more wait)
  /// Prompt scoring (echo + logprobs) of concurrent requests is batched:
  /// prompts arriving within batch_wait_ms share one forward pass of at most
  /// this many tokens. 0: each prompt in a pass of its own, which makes its
  /// logprobs bitwise those of the engine scoring that request alone.
  int max_batch_tokens = 4096;
  int batch_wait_ms = 2;
};

class OpenAIServer {
 public:
  /// engine, tok and chat (may be null: chat completions refused) must outlive it.
  OpenAIServer(const TokenEngine& engine, const Tokenizer& tok, const ChatTemplate* chat, OpenAIServerOptions opts);

  nlohmann::json models() const;
  nlohmann::json completions(const nlohmann::json& req);
  nlohmann::json chat_completions(const nlohmann::json& req);
  const std::string& served_name() const { return opts_.served_name; }

 private:
  struct Sampling {
    int max_tokens = 16;
    double temperature = 0, top_p = 1;
    uint64_t seed = 0;
    std::vector<std::string> stop;
    std::optional<int> logprobs;
  };
  struct Generated {
    std::vector<int> ids;
    std::string text;
    std::string finish_reason;
  };
  Sampling sampling(const nlohmann::json& req, int default_max_tokens) const;
  void check_model(const nlohmann::json& req) const;
  std::vector<int> prompt_ids(const nlohmann::json& p) const;
  Generated generate(const std::vector<int>& prompt, const Sampling& s) const;
  nlohmann::json logprobs_of(const std::vector<int>& ids, size_t first, int top_k, size_t text_base);
  /// Logits [ids.size() - 1, vocab] of ids[:-1], through the batcher.
  std::vector<float> prompt_logits(const std::vector<int>& ids);
  void batch_loop();

  class Slot {  // at most max_concurrent requests on the engine at once
   public:
    explicit Slot(OpenAIServer& s);
    ~Slot();

   private:
    OpenAIServer& s_;
  };

  const TokenEngine& engine_;
  const Tokenizer& tok_;
  const ChatTemplate* chat_;
  OpenAIServerOptions opts_;
  std::vector<int> eos_ids_;
  std::mutex mu_;
  std::condition_variable cv_;
  int running_ = 0;
  std::atomic<uint64_t> counter_{0};

  struct ScoreJob {
    std::vector<int> ids;
    std::vector<float> logits;
    std::exception_ptr error;
    bool done = false;
  };
  std::mutex bmu_;
  std::condition_variable bcv_, bdone_;
  std::vector<ScoreJob*> queue_;
  bool stop_ = false;
  std::thread batcher_;

 public:
  ~OpenAIServer();
  /// Forward passes run and prompts scored by the batcher so far (tests).
  std::atomic<uint64_t> passes{0}, scored{0};
};

}  // namespace qsweep::model
