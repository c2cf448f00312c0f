#include "model/cuda/gpu_engine.h"

#include <algorithm>
#include <stdexcept>

#include "model/engine/ll_batching.h"
#include "model/engine/sampler.h"

namespace qsweep::model::cuda {

namespace {

// The GpuTransformer as ll_batching.h's Model.
struct GpuModel {
  using Cache = GpuKvCache;
  const GpuTransformer& t;
  Cache new_cache() const { return t.new_cache(); }
  Cache fork(const Cache& c, int extra) const { return t.fork(c, extra); }
  void score(const std::vector<int>& ids, std::vector<GpuSegment>& segs, const std::vector<int>& rows,
             const std::vector<int>& targets, LoglikelihoodResult* out) const {
    t.forward_scores(ids, segs, rows, targets, out);
  }
  void logits(const std::vector<int>& ids, std::vector<GpuSegment>& segs, const std::vector<int>& rows,
              float* out) const {
    t.forward_logits(ids, segs, rows, out);
  }
};

}  // namespace

std::unique_ptr<GpuEngine> GpuEngine::load(const Checkpoint& ckpt, const GpuEngineOptions& opts,
                                           const LinearLoader& loader) {
  return std::make_unique<GpuEngine>(std::make_unique<GpuTransformer>(ckpt, opts, loader));
}

GpuEngine::GpuEngine(std::unique_ptr<GpuTransformer> model) : model_(std::move(model)) {
  const GpuEngineOptions& o = model_->options();
  max_length_ = o.max_length > 0 ? o.max_length : model_->config().max_position_embeddings;
}

GpuEngine::~GpuEngine() = default;

std::string GpuEngine::numerics() const {
  const GpuEngineOptions& o = model_->options();
  return std::string("device=cuda dtype=") + gpu_dtype_name(o.dtype) +
         (o.tf32 && o.dtype == GpuDType::kFloat32 ? " tf32=1" : "");
}

std::string GpuEngine::describe() const { return "CUDA engine on " + model_->describe(); }

std::vector<float> GpuEngine::logits_batch(const std::vector<std::vector<int>>& seqs) const {
  size_t n = 0;
  for (const auto& s : seqs) {
    check_ids(s, "logits");
    n += s.size();
  }
  std::vector<float> out(n * size_t(config().vocab_size));
  std::lock_guard<std::mutex> lk(mu_);
  batch_logits(GpuModel{*model_}, seqs, out.data());
  return out;
}

std::vector<LoglikelihoodResult> GpuEngine::loglikelihood_batch(const std::vector<LoglikelihoodRequest>& reqs,
                                                                bool reuse_prefix) const {
  const std::vector<std::vector<int>> ctx = truncated_contexts(reqs);
  std::lock_guard<std::mutex> lk(mu_);
  return batch_loglikelihood(GpuModel{*model_}, reqs, ctx, reuse_prefix, model_->options().max_batch_tokens);
}

std::vector<int> GpuEngine::generate(const std::vector<int>& prompt, const GenerateOptions& g) const {
  return generate_batch({prompt}, {g})[0];
}

std::vector<std::vector<int>> GpuEngine::generate_batch(const std::vector<std::vector<int>>& prompts,
                                                        const std::vector<GenerateOptions>& opts) const {
  check_batch(prompts.size(), opts.size());
  for (const auto& p : prompts) check_prompt(p);
  const size_t n = prompts.size();
  const int V = config().vocab_size;
  std::vector<std::vector<int>> out(n);
  if (n == 0) return out;
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<GpuKvCache> caches(n);
  std::vector<Sampler> samplers;
  samplers.reserve(n);
  bool any_sampled = false;
  for (size_t i = 0; i < n; ++i) {
    caches[i] = model_->new_cache();
    const int want = std::min<long>(max_length_, long(prompts[i].size()) + std::max(0, opts[i].max_tokens));
    model_->reserve(caches[i], std::max<int>(want, int(prompts[i].size())));
    samplers.emplace_back(opts[i].temperature, opts[i].top_p, opts[i].seed);
    any_sampled = any_sampled || opts[i].temperature > 0;
  }
  std::vector<int> next(n, -1);  // the token chosen at each sequence's last position
  std::vector<float> lg;
  // One pass over `members` (segments of lens[k] tokens each from `ids`);
  // next[] of each member from its last row.
  auto step = [&](const std::vector<size_t>& members, const std::vector<int>& ids, const std::vector<int>& lens) {
    std::vector<GpuSegment> segs;
    std::vector<int> rows;
    int row = 0;
    for (size_t k = 0; k < members.size(); ++k) {
      segs.push_back({&caches[members[k]], row, lens[k]});
      row += lens[k];
      rows.push_back(row - 1);
    }
    if (any_sampled) {
      lg.resize(rows.size() * size_t(V));
      model_->forward_logits(ids, segs, rows, lg.data());
      for (size_t k = 0; k < members.size(); ++k) next[members[k]] = samplers[members[k]].sample(&lg[k * V], V);
    } else {
      std::vector<int> am(rows.size());
      model_->forward_argmax(ids, segs, rows, am.data());
      for (size_t k = 0; k < members.size(); ++k) next[members[k]] = am[k];
    }
  };
  // Prefill: prompts in passes of at most max_batch_tokens (a longer one alone).
  const int budget = model_->options().max_batch_tokens;
  for (size_t i = 0; i < n;) {
    std::vector<size_t> members;
    std::vector<int> ids, lens;
    while (i < n && (members.empty() || int(ids.size() + prompts[i].size()) <= budget)) {
      members.push_back(i);
      ids.insert(ids.end(), prompts[i].begin(), prompts[i].end());
      lens.push_back(int(prompts[i].size()));
      ++i;
    }
    step(members, ids, lens);
  }
  // Decode: every unfinished sequence appends its token, one pass per step
  // (the CPU engine's stopping rules: stop id, stop callback, max_tokens,
  // context window).
  std::vector<bool> live(n, true);
  for (;;) {
    std::vector<size_t> members;
    std::vector<int> ids, lens;
    for (size_t i = 0; i < n; ++i) {
      if (!live[i]) continue;
      const GenerateOptions& g = opts[i];
      const int t = next[i];
      if (int(out[i].size()) >= g.max_tokens ||
          std::find(g.stop_ids.begin(), g.stop_ids.end(), t) != g.stop_ids.end()) {
        live[i] = false;
        continue;
      }
      out[i].push_back(t);
      if ((g.stop && g.stop(out[i])) || int(out[i].size()) >= g.max_tokens || caches[i].len() >= max_length_) {
        live[i] = false;
        continue;
      }
      members.push_back(i);
      ids.push_back(t);
      lens.push_back(1);
    }
    if (members.empty()) break;
    step(members, ids, lens);
  }
  return out;
}

}  // namespace qsweep::model::cuda
