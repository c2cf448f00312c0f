#include "model/backend/embedded_backend.h"

#include <algorithm>
#include <stdexcept>

#include "model/util/python_str.h"

namespace qsweep::model {

namespace {

// Version of the request encoding below; bump when answers can change.
constexpr int k_embedded_backend_version = 1;

}  // namespace

EmbeddedBackend::EmbeddedBackend(const TokenEngine& engine, const Tokenizer& tok,
                                 EmbeddedBackendOptions opts)
    : engine_(engine), tok_(tok), opts_(opts), enc_(tok, opts.add_bos_token, engine.max_length()) {}

std::string EmbeddedBackend::fingerprint() const {
  // Threads and batch composition change fp32 sums in their last bits only;
  // they are deliberately not part of the fingerprint.
  return "embedded/v" + std::to_string(k_embedded_backend_version) +
         " " + engine_.numerics() + " add_bos_token=" + (opts_.add_bos_token ? "1" : "0") +
         " max_length=" + std::to_string(engine_.max_length()) + (opts_.batch_invariant ? " batch_invariant=1" : "");
}

std::string EmbeddedBackend::describe() const {
  return engine_.describe() + ", add_bos_token=" +
         std::string(opts_.add_bos_token ? "True" : "False") +
         ", max_length=" + std::to_string(engine_.max_length());
}

std::vector<LoglikelihoodAnswer> EmbeddedBackend::loglikelihood(
    std::span<const TextLoglikelihood> reqs) {
  std::vector<LoglikelihoodRequest> enc(reqs.size());
  std::vector<LoglikelihoodAnswer> out(reqs.size());
  HflmEncoder::ContextIds memo;
  for (size_t i = 0; i < reqs.size(); ++i) {
    auto [ctx, cont] = enc_.encode_pair(reqs[i].context, reqs[i].continuation, &memo);
    if (cont.empty())
      throw std::runtime_error("loglikelihood request " + std::to_string(i) +
                               ": the continuation encodes to no token (continuation \"" +
                               reqs[i].continuation + "\")");
    if (ctx.empty()) ctx.push_back(enc_.prefix_token());
    const int whole = int(ctx.size() + cont.size());
    const int keep = std::min(whole, engine_.max_length() + 1);
    out[i].continuation_tokens = int(cont.size());
    out[i].context_tokens = std::max(0, keep - int(cont.size()));
    enc[i] = {std::move(ctx), std::move(cont)};
  }
  std::vector<LoglikelihoodResult> res;
  if (opts_.batch_invariant) {  // one request per forward pass
    for (const auto& r : enc) res.push_back(engine_.loglikelihood(r.context, r.continuation));
  } else {
    res = engine_.loglikelihood_batch(enc, opts_.reuse_prefix);
  }
  for (size_t i = 0; i < res.size(); ++i) {
    out[i].logprob = res[i].logprob;
    out[i].is_greedy = res[i].is_greedy;
  }
  return out;
}

std::vector<RollingAnswer> EmbeddedBackend::loglikelihood_rolling(std::span<const std::string> texts) {
  std::vector<RollingAnswer> out(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::vector<int> ids = enc_.encode(texts[i]);
    if (ids.empty()) continue;  // nothing to score: 0 nats over 0 tokens
    const RollingResult r = engine_.loglikelihood_rolling(ids, engine_.max_length(), enc_.prefix_token());
    out[i] = {r.logprob, r.n_tokens};
  }
  return out;
}

std::vector<std::string> EmbeddedBackend::generate_until(std::span<const TextGeneration> reqs) {
  std::vector<std::string> out(reqs.size());
  std::vector<int> eos_ids = engine_.config().eos_token_ids;
  if (tok_.eos_id() >= 0 && std::find(eos_ids.begin(), eos_ids.end(), tok_.eos_id()) == eos_ids.end())
    eos_ids.push_back(tok_.eos_id());
  std::vector<std::vector<int>> prompts(reqs.size());
  std::vector<GenerateOptions> opts(reqs.size());
  std::vector<std::vector<std::string>> stops(reqs.size());
  for (size_t i = 0; i < reqs.size(); ++i) {
    const TextGeneration& r = reqs[i];
    if (r.max_gen_toks <= 0)
      throw std::runtime_error("generate_until request " + std::to_string(i) +
                               ": max_gen_toks must be positive");
    GenerateOptions& g = opts[i];
    g.max_tokens = r.max_gen_toks;
    g.temperature = r.do_sample ? float(r.temperature) : 0.0f;
    g.seed = r.seed;
    g.stop_ids = eos_ids;
    size_t longest = 0;
    stops[i] = HflmEncoder::stop_strings(r.until, &longest);
    g.stop = HflmEncoder::stop_check(tok_, stops[i], longest);
    prompts[i] = enc_.generation_prompt(r);
  }
  const std::vector<std::vector<int>> gen = engine_.generate_batch(prompts, opts);
  for (size_t i = 0; i < reqs.size(); ++i)
    out[i] = HflmEncoder::cut_at_stops(tok_.decode({gen[i].begin(), gen[i].end()}, true), stops[i]);
  return out;
}

}  // namespace qsweep::model
