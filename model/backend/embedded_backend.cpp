#include "model/backend/embedded_backend.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <stdexcept>

#include "model/util/python_str.h"

namespace qsweep::model {

namespace {

// Version of the request encoding below; bump when answers can change.
constexpr int k_embedded_backend_version = 1;

}  // namespace

EmbeddedBackend::EmbeddedBackend(const Engine& engine, const Tokenizer& tok,
                                 EmbeddedBackendOptions opts)
    : engine_(engine), tok_(tok), opts_(opts) {}

std::string EmbeddedBackend::fingerprint() const {
  // Threads and batch composition change fp32 sums in their last bits only;
  // they are deliberately not part of the fingerprint.
  return "embedded/v" + std::to_string(k_embedded_backend_version) +
         " dtype=fp32 add_bos_token=" + (opts_.add_bos_token ? "1" : "0") +
         " max_length=" + std::to_string(engine_.max_length());
}

std::string EmbeddedBackend::describe() const {
  return "embedded CPU engine (fp32), add_bos_token=" +
         std::string(opts_.add_bos_token ? "True" : "False") +
         ", max_length=" + std::to_string(engine_.max_length());
}

int EmbeddedBackend::prefix_token() const {
  if (tok_.bos_id() >= 0) return tok_.bos_id();
  if (tok_.eos_id() >= 0) return tok_.eos_id();
  throw std::runtime_error("the tokenizer has neither a BOS nor an EOS token to start a request with");
}

std::vector<int> EmbeddedBackend::encode(const std::string& s) const {
  const auto ids = tok_.encode(s, opts_.add_bos_token);
  return {ids.begin(), ids.end()};
}

std::pair<std::vector<int>, std::vector<int>> EmbeddedBackend::encode_pair(
    const std::string& context, const std::string& continuation) const {
  return encode_pair(context, continuation, nullptr);
}

std::pair<std::vector<int>, std::vector<int>> EmbeddedBackend::encode_pair(
    const std::string& context, const std::string& continuation, ContextIds* memo) const {
  if (context.empty()) return {{prefix_token()}, encode(continuation)};
  const std::string_view kept = python_rstrip(context);
  std::vector<int> whole = encode(context + continuation);
  // A question's choices share their context: encode it once per call.
  std::vector<int> ctx;
  if (memo) {
    auto it = memo->find(context);
    if (it == memo->end()) it = memo->emplace(context, encode(std::string(kept))).first;
    ctx = it->second;
  } else {
    ctx = encode(std::string(kept));
  }
  // lm-eval slices whole[len(ctx):] without checking that ctx is a prefix of
  // whole; neither do we (a merge across the boundary changes the split).
  std::vector<int> cont(whole.begin() + std::min(ctx.size(), whole.size()), whole.end());
  return {std::move(ctx), std::move(cont)};
}

std::vector<LoglikelihoodAnswer> EmbeddedBackend::loglikelihood(
    std::span<const TextLoglikelihood> reqs) {
  std::vector<LoglikelihoodRequest> enc(reqs.size());
  std::vector<LoglikelihoodAnswer> out(reqs.size());
  ContextIds memo;
  for (size_t i = 0; i < reqs.size(); ++i) {
    auto [ctx, cont] = encode_pair(reqs[i].context, reqs[i].continuation, &memo);
    if (cont.empty())
      throw std::runtime_error("loglikelihood request " + std::to_string(i) +
                               ": the continuation encodes to no token (continuation \"" +
                               reqs[i].continuation + "\")");
    if (ctx.empty()) ctx.push_back(prefix_token());
    const int whole = int(ctx.size() + cont.size());
    const int keep = std::min(whole, engine_.max_length() + 1);
    out[i].continuation_tokens = int(cont.size());
    out[i].context_tokens = std::max(0, keep - int(cont.size()));
    enc[i] = {std::move(ctx), std::move(cont)};
  }
  const auto res = engine_.loglikelihood_batch(enc, opts_.reuse_prefix);
  for (size_t i = 0; i < res.size(); ++i) {
    out[i].logprob = res[i].logprob;
    out[i].is_greedy = res[i].is_greedy;
  }
  return out;
}

std::vector<RollingAnswer> EmbeddedBackend::loglikelihood_rolling(std::span<const std::string> texts) {
  std::vector<RollingAnswer> out(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::vector<int> ids = encode(texts[i]);
    if (ids.empty()) continue;  // nothing to score: 0 nats over 0 tokens
    const RollingResult r = engine_.loglikelihood_rolling(ids, engine_.max_length(), prefix_token());
    out[i] = {r.logprob, r.n_tokens};
  }
  return out;
}

std::vector<std::string> EmbeddedBackend::generate_until(std::span<const TextGeneration> reqs) {
  std::vector<std::string> out(reqs.size());
  std::vector<int> eos_ids = engine_.config().eos_token_ids;
  if (tok_.eos_id() >= 0 && std::find(eos_ids.begin(), eos_ids.end(), tok_.eos_id()) == eos_ids.end())
    eos_ids.push_back(tok_.eos_id());
  tbb::parallel_for(size_t(0), reqs.size(), [&](size_t i) {
    const TextGeneration& r = reqs[i];
    if (r.max_gen_toks <= 0)
      throw std::runtime_error("generate_until request " + std::to_string(i) +
                               ": max_gen_toks must be positive");
    std::vector<int> prompt = encode(r.context);
    const int max_ctx = r.reserve_generation_room ? std::max(1, engine_.max_length() - r.max_gen_toks)
                                                  : std::max(1, engine_.max_length() - 1);
    if (int(prompt.size()) > max_ctx) prompt.erase(prompt.begin(), prompt.end() - max_ctx);
    if (prompt.empty()) prompt.push_back(prefix_token());
    GenerateOptions g;
    g.max_tokens = r.max_gen_toks;
    g.temperature = r.do_sample ? float(r.temperature) : 0.0f;
    g.seed = r.seed;
    g.stop_ids = eos_ids;
    std::vector<std::string> stops;
    size_t longest = 0;
    for (const auto& s : r.until)
      if (!s.empty()) {
        stops.push_back(s);
        longest = std::max(longest, s.size());
      }
    // Every token decodes to at least one byte, so a stop string completed by
    // the newest token lies within the last `longest` tokens; decoding a
    // window a few tokens wider (the first token of a decoded window may lose
    // its leading space) finds it without decoding the whole generation at
    // every step (lm-eval's stopping criterion looks back the same way).
    const size_t window = longest + 8;
    g.stop = [&](const std::vector<int>& gen) {
      if (stops.empty()) return false;
      const size_t from = gen.size() > window ? gen.size() - window : 0;
      const std::string text = tok_.decode({gen.begin() + long(from), gen.end()}, false);
      for (const auto& s : stops)
        if (text.find(s) != std::string::npos) return true;
      return false;
    };
    const std::vector<int> gen = engine_.generate(prompt, g);
    std::string s = tok_.decode({gen.begin(), gen.end()}, true);
    for (const auto& term : stops) s = s.substr(0, s.find(term));
    out[i] = std::move(s);
  });
  return out;
}

}  // namespace qsweep::model
