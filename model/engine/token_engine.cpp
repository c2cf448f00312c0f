#include "model/engine/token_engine.h"

#include <tbb/parallel_for.h>

#include <cmath>
#include <stdexcept>

#include "model/engine/rolling.h"
#include "model/engine/sampler.h"

namespace qsweep::model {

LoglikelihoodResult score_token(const float* logits, int n, int target) {
  const int best = argmax(logits, n);
  const double mx = logits[best];
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += std::exp(double(logits[i]) - mx);
  return {double(logits[target]) - mx - std::log(sum), best == target};
}

void TokenEngine::check_ids(const std::vector<int>& ids, const char* what) const {
  const int v = config().vocab_size;
  for (int id : ids)
    if (id < 0 || id >= v)
      throw std::invalid_argument(std::string(what) + ": token id " + std::to_string(id) +
                                  " outside the vocabulary [0, " + std::to_string(v) + ")");
}

std::vector<std::vector<int>> TokenEngine::truncated_contexts(
    const std::vector<LoglikelihoodRequest>& reqs) const {
  const int max_len = max_length();
  std::vector<std::vector<int>> ctx(reqs.size());
  for (size_t i = 0; i < reqs.size(); ++i) {
    const auto& r = reqs[i];
    if (r.context.empty())
      throw std::invalid_argument("loglikelihood: request " + std::to_string(i) +
                                  " has an empty context");
    if (r.continuation.empty())
      throw std::invalid_argument("loglikelihood: request " + std::to_string(i) +
                                  " has an empty continuation");
    if (static_cast<int>(r.continuation.size()) > max_len)
      throw std::invalid_argument("loglikelihood: request " + std::to_string(i) +
                                  " has a continuation of " +
                                  std::to_string(r.continuation.size()) +
                                  " tokens, more than max_length " + std::to_string(max_len));
    check_ids(r.context, "loglikelihood context");
    check_ids(r.continuation, "loglikelihood continuation");
    // lm-eval truncation: keep the last max_length + 1 tokens of context + continuation.
    const size_t whole = r.context.size() + r.continuation.size();
    const size_t limit = size_t(max_len) + 1;
    const size_t drop = whole > limit ? whole - limit : 0;
    ctx[i].assign(r.context.begin() + drop, r.context.end());
  }
  return ctx;
}

void TokenEngine::check_prompt(const std::vector<int>& prompt) const {
  if (prompt.empty()) throw std::invalid_argument("generate: empty prompt");
  check_ids(prompt, "generate prompt");
}

void TokenEngine::check_batch(size_t n_prompts, size_t n_opts) {
  if (n_opts != n_prompts)
    throw std::invalid_argument("generate_batch: " + std::to_string(n_prompts) + " prompts but " +
                                std::to_string(n_opts) + " option sets");
}

std::vector<std::vector<int>> TokenEngine::generate_batch(const std::vector<std::vector<int>>& prompts,
                                                         const std::vector<GenerateOptions>& opts) const {
  check_batch(prompts.size(), opts.size());
  std::vector<std::vector<int>> out(prompts.size());
  tbb::parallel_for(size_t(0), prompts.size(), [&](size_t i) { out[i] = generate(prompts[i], opts[i]); });
  return out;
}

LoglikelihoodResult TokenEngine::loglikelihood(const std::vector<int>& context,
                                               const std::vector<int>& continuation) const {
  return loglikelihood_batch(std::vector<LoglikelihoodRequest>{{context, continuation}}, false)[0];
}

RollingResult TokenEngine::loglikelihood_rolling(const std::vector<int>& ids, int max_len,
                                                 int prefix_token) const {
  if (max_len <= 0) max_len = max_length();
  if (prefix_token < 0) {
    prefix_token = config().bos_token_id >= 0       ? config().bos_token_id
                   : config().eos_token_ids.empty() ? 0
                                                    : config().eos_token_ids[0];
  }
  RollingResult res;
  std::vector<LoglikelihoodRequest> reqs;
  for (const RollingWindow& w : rolling_windows(ids, prefix_token, max_len)) {
    LoglikelihoodRequest r;
    disjoint_window(w, &r.context, &r.continuation);
    reqs.push_back(std::move(r));
  }
  res.n_windows = static_cast<int>(reqs.size());
  for (const LoglikelihoodResult& r : loglikelihood_batch(reqs, false)) res.logprob += r.logprob;
  res.n_tokens = static_cast<int>(ids.size());
  return res;
}

}  // namespace qsweep::model
