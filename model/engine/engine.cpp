#include "model/engine/engine.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <thread>

#include "model/checkpoint/checkpoint.h"
#include "model/engine/ll_batching.h"
#include "model/engine/sampler.h"
#include "model/engine/transformer.h"

namespace qsweep::model {

namespace {

// The Transformer as ll_batching.h's Model: KvCache, scores from host logits
// (each distinct row's logits computed once; batch_loglikelihood lists a
// row several times only consecutively).
struct CpuModel {
  using Cache = KvCache;
  const Transformer& t;
  Cache new_cache() const { return t.new_cache(); }
  Cache fork(const Cache& c, int extra) const { return c.fork(extra); }
  void score(const std::vector<int>& ids, std::vector<Segment>& segs, const std::vector<int>& rows,
             const std::vector<int>& targets, LoglikelihoodResult* out) const {
    const int V = t.config().vocab_size;
    std::vector<int> uniq;  // distinct rows, in order
    std::vector<size_t> slot(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) {
      if (i == 0 || rows[i] != rows[i - 1]) uniq.push_back(rows[i]);
      slot[i] = uniq.size() - 1;
    }
    std::vector<float> lg(uniq.size() * size_t(V));
    t.forward(ids.data(), int(ids.size()), segs, uniq, lg.data());
    for (size_t i = 0; i < rows.size(); ++i) out[i] = score_token(&lg[slot[i] * V], V, targets[i]);
  }
  void logits(const std::vector<int>& ids, std::vector<Segment>& segs, const std::vector<int>& rows,
              float* out) const {
    t.forward(ids.data(), int(ids.size()), segs, rows, out);
  }
};

}  // namespace

std::unique_ptr<Engine> Engine::load(const std::filesystem::path& dir, EngineOptions opts) {
  const Checkpoint ckpt(dir);
  return load(ckpt, std::move(opts));
}

std::unique_ptr<Engine> Engine::load(const Checkpoint& ckpt, EngineOptions opts) {
  const LinearLoader loader =
      opts.linear_loader ? opts.linear_loader : LinearLoader(load_dense_linear);
  // Loading converts weights on the engine's threads too.
  std::unique_ptr<Transformer> model = std::make_unique<Transformer>(ckpt, loader);
  return std::make_unique<Engine>(std::move(model), std::move(opts));
}

Engine::Engine(std::unique_ptr<Transformer> model, EngineOptions opts)
    : model_(std::move(model)), opts_(std::move(opts)) {
  Eigen::setNbThreads(1);
  if (opts_.arena) {
    arena_ = opts_.arena;
  } else {
    const int n = opts_.threads > 0
                      ? opts_.threads
                      : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    own_arena_ = std::make_unique<tbb::task_arena>(n);
    arena_ = own_arena_.get();
  }
  max_length_ = opts_.max_length > 0 ? opts_.max_length : model_->config().max_position_embeddings;
  if (opts_.max_batch_tokens < 1) opts_.max_batch_tokens = 1;
}

Engine::~Engine() = default;

const ModelConfig& Engine::config() const { return model_->config(); }

template <class F>
auto Engine::in_arena(F&& f) const {
  return arena_->execute(std::forward<F>(f));
}

std::vector<float> Engine::logits_batch(const std::vector<std::vector<int>>& seqs) const {
  size_t n = 0;
  for (const auto& s : seqs) {
    check_ids(s, "logits");
    n += s.size();
  }
  std::vector<float> out(n * config().vocab_size);
  if (n > 0) in_arena([&] { batch_logits(CpuModel{*model_}, seqs, out.data()); });
  return out;
}

std::vector<LoglikelihoodResult> Engine::loglikelihood_batch(
    const std::vector<LoglikelihoodRequest>& reqs, bool reuse_prefix) const {
  const std::vector<std::vector<int>> ctx = truncated_contexts(reqs);
  return in_arena([&] {
    return batch_loglikelihood(CpuModel{*model_}, reqs, ctx, reuse_prefix, opts_.max_batch_tokens);
  });
}

std::vector<int> Engine::generate(const std::vector<int>& prompt, const GenerateOptions& g) const {
  check_prompt(prompt);
  const int V = config().vocab_size;
  std::vector<int> out;
  in_arena([&] {
    Sampler sampler(g.temperature, g.top_p, g.seed);
    KvCache cache = model_->new_cache();
    std::vector<float> lg(V);
    const int n = static_cast<int>(prompt.size());
    {
      std::vector<Segment> segs{{&cache, 0, n}};
      model_->forward(prompt.data(), n, segs, {n - 1}, lg.data());
    }
    while (static_cast<int>(out.size()) < g.max_tokens) {
      const int next = sampler.sample(lg.data(), V);
      if (std::find(g.stop_ids.begin(), g.stop_ids.end(), next) != g.stop_ids.end()) break;
      out.push_back(next);
      if (g.stop && g.stop(out)) break;
      if (static_cast<int>(out.size()) >= g.max_tokens || cache.len() >= max_length_) break;
      std::vector<Segment> segs{{&cache, 0, 1}};
      model_->forward(&next, 1, segs, {0}, lg.data());
    }
  });
  return out;
}

}  // namespace qsweep::model
