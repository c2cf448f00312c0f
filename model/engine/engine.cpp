#include "model/engine/engine.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <thread>

#include "model/checkpoint/checkpoint.h"
#include "model/engine/rolling.h"
#include "model/engine/sampler.h"
#include "model/engine/transformer.h"

namespace qsweep::model {

LoglikelihoodResult score_token(const float* logits, int n, int target) {
  const int best = argmax(logits, n);
  const double mx = logits[best];
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += std::exp(double(logits[i]) - mx);
  return {double(logits[target]) - mx - std::log(sum), best == target};
}

namespace {

void add(LoglikelihoodResult& acc, const LoglikelihoodResult& r) {
  acc.logprob += r.logprob;
  acc.is_greedy = acc.is_greedy && r.is_greedy;
}

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

void Engine::check_ids(const std::vector<int>& ids, const char* what) const {
  const int v = config().vocab_size;
  for (int id : ids)
    if (id < 0 || id >= v)
      throw std::invalid_argument(std::string(what) + ": token id " + std::to_string(id) +
                                  " outside the vocabulary [0, " + std::to_string(v) + ")");
}

std::vector<float> Engine::logits_batch(const std::vector<std::vector<int>>& seqs) const {
  int n = 0;
  std::vector<int> ids;
  for (const auto& s : seqs) {
    check_ids(s, "logits");
    ids.insert(ids.end(), s.begin(), s.end());
    n += int(s.size());
  }
  std::vector<float> out(size_t(n) * config().vocab_size);
  if (n == 0) return out;
  in_arena([&] {
    std::vector<KvCache> caches;
    caches.reserve(seqs.size());
    std::vector<Segment> segs;
    int row = 0;
    for (const auto& s : seqs) {
      if (s.empty()) continue;
      caches.push_back(model_->new_cache());
      segs.push_back({&caches.back(), row, int(s.size())});
      row += int(s.size());
    }
    std::vector<int> rows(n);
    for (int i = 0; i < n; ++i) rows[i] = i;
    model_->forward(ids.data(), n, segs, rows, out.data());
  });
  return out;
}

std::vector<float> Engine::logits(const std::vector<int>& ids) const {
  check_ids(ids, "logits");
  const int n = static_cast<int>(ids.size());
  std::vector<float> out(size_t(n) * config().vocab_size);
  if (n == 0) return out;
  in_arena([&] {
    KvCache cache = model_->new_cache();
    std::vector<Segment> segs{{&cache, 0, n}};
    std::vector<int> rows(n);
    for (int i = 0; i < n; ++i) rows[i] = i;
    model_->forward(ids.data(), n, segs, rows, out.data());
  });
  return out;
}

LoglikelihoodResult Engine::loglikelihood(const std::vector<int>& context,
                                          const std::vector<int>& continuation) const {
  return loglikelihood_batch(std::vector<LoglikelihoodRequest>{{context, continuation}}, false)[0];
}

std::vector<LoglikelihoodResult> Engine::loglikelihood_batch(
    const std::vector<LoglikelihoodRequest>& reqs, bool reuse_prefix) const {
  const int V = config().vocab_size;
  const size_t n_req = reqs.size();
  // lm-eval truncation: keep the last max_length + 1 tokens of context + continuation.
  std::vector<std::vector<int>> ctx(n_req);
  for (size_t i = 0; i < n_req; ++i) {
    const auto& r = reqs[i];
    if (r.context.empty())
      throw std::invalid_argument("loglikelihood: request " + std::to_string(i) +
                                  " has an empty context");
    if (r.continuation.empty())
      throw std::invalid_argument("loglikelihood: request " + std::to_string(i) +
                                  " has an empty continuation");
    if (static_cast<int>(r.continuation.size()) > max_length_)
      throw std::invalid_argument("loglikelihood: request " + std::to_string(i) +
                                  " has a continuation of " +
                                  std::to_string(r.continuation.size()) +
                                  " tokens, more than max_length " + std::to_string(max_length_));
    check_ids(r.context, "loglikelihood context");
    check_ids(r.continuation, "loglikelihood continuation");
    const size_t whole = r.context.size() + r.continuation.size();
    const size_t limit = size_t(max_length_) + 1;
    const size_t drop = whole > limit ? whole - limit : 0;
    ctx[i].assign(r.context.begin() + drop, r.context.end());
  }
  std::vector<LoglikelihoodResult> out(n_req, {0.0, true});
  const int budget = opts_.max_batch_tokens;

  in_arena([&] {
    if (!reuse_prefix) {
      // Each request alone: input = (context + continuation)[:-1], score the last |cont| rows.
      size_t i = 0;
      while (i < n_req) {
        std::vector<int> ids;
        std::vector<KvCache> caches;
        std::vector<size_t> members;
        while (i < n_req &&
               (members.empty() ||
                int(ids.size() + ctx[i].size() + reqs[i].continuation.size()) - 1 <= budget)) {
          members.push_back(i);
          ids.insert(ids.end(), ctx[i].begin(), ctx[i].end());
          ids.insert(ids.end(), reqs[i].continuation.begin(), reqs[i].continuation.end() - 1);
          ++i;
        }
        caches.reserve(members.size());
        std::vector<Segment> segs;
        std::vector<int> rows;
        int row = 0;
        for (size_t m : members) {
          const int n_in = int(ctx[m].size() + reqs[m].continuation.size()) - 1;
          caches.push_back(model_->new_cache());
          segs.push_back({&caches.back(), row, n_in});
          for (int k = n_in - int(reqs[m].continuation.size()); k < n_in; ++k)
            rows.push_back(row + k);
          row += n_in;
        }
        std::vector<float> lg(rows.size() * size_t(V));
        model_->forward(ids.data(), row, segs, rows, lg.data());
        size_t r = 0;
        for (size_t m : members)
          for (int t : reqs[m].continuation) add(out[m], score_token(&lg[r++ * V], V, t));
      }
      return;
    }
    // Groups of requests with identical (truncated) contexts, in first-seen order.
    std::map<std::vector<int>, size_t> group_of;
    std::vector<std::vector<size_t>> groups;
    for (size_t i = 0; i < n_req; ++i) {
      auto [it, fresh] = group_of.emplace(ctx[i], groups.size());
      if (fresh) groups.emplace_back();
      groups[it->second].push_back(i);
    }
    size_t g = 0;
    while (g < groups.size()) {
      // Pass 1: contexts of a chunk of groups, one segment each; logits of each last row.
      std::vector<size_t> chunk;
      std::vector<int> ids;
      while (g < groups.size() &&
             (chunk.empty() || int(ids.size() + ctx[groups[g][0]].size()) <= budget)) {
        const auto& c = ctx[groups[g][0]];
        ids.insert(ids.end(), c.begin(), c.end());
        chunk.push_back(g++);
      }
      std::vector<KvCache> caches;
      caches.reserve(chunk.size());
      std::vector<Segment> segs;
      std::vector<int> rows;
      int row = 0;
      for (size_t gi : chunk) {
        const int n = int(ctx[groups[gi][0]].size());
        caches.push_back(model_->new_cache());
        segs.push_back({&caches.back(), row, n});
        row += n;
        rows.push_back(row - 1);
      }
      std::vector<float> lg(rows.size() * size_t(V));
      model_->forward(ids.data(), row, segs, rows, lg.data());
      for (size_t k = 0; k < chunk.size(); ++k)
        for (size_t m : groups[chunk[k]])
          add(out[m], score_token(&lg[k * V], V, reqs[m].continuation[0]));
      // Pass 2: continuations [0, m-1) on forks of their group's cache.
      struct Job {
        size_t req;
        size_t group_slot;
      };
      std::vector<Job> jobs;
      for (size_t k = 0; k < chunk.size(); ++k)
        for (size_t m : groups[chunk[k]])
          if (reqs[m].continuation.size() > 1) jobs.push_back({m, k});
      // The last job of each group extends the group's cache itself instead of a copy.
      std::vector<size_t> last_job(chunk.size(), SIZE_MAX);
      for (size_t k = 0; k < jobs.size(); ++k) last_job[jobs[k].group_slot] = k;
      size_t j = 0;
      while (j < jobs.size()) {
        std::vector<int> ids2;
        std::vector<KvCache> forks;
        std::vector<size_t> batch;
        while (j < jobs.size() &&
               (batch.empty() ||
                int(ids2.size() + reqs[jobs[j].req].continuation.size()) - 1 <= budget)) {
          const auto& c = reqs[jobs[j].req].continuation;
          ids2.insert(ids2.end(), c.begin(), c.end() - 1);
          batch.push_back(j++);
        }
        forks.reserve(batch.size());
        std::vector<Segment> segs2;
        std::vector<int> rows2;
        int row2 = 0;
        for (size_t b : batch) {
          const auto& c = reqs[jobs[b].req].continuation;
          const int n = int(c.size()) - 1;
          KvCache* cache = &caches[jobs[b].group_slot];
          if (last_job[jobs[b].group_slot] != b) {  // forks copy before the forward pass appends
            forks.push_back(cache->fork(n));
            cache = &forks.back();
          }
          segs2.push_back({cache, row2, n});
          for (int k = 0; k < n; ++k) rows2.push_back(row2 + k);
          row2 += n;
        }
        std::vector<float> lg2(rows2.size() * size_t(V));
        model_->forward(ids2.data(), row2, segs2, rows2, lg2.data());
        size_t r = 0;
        for (size_t b : batch) {
          const auto& c = reqs[jobs[b].req].continuation;
          for (size_t k = 1; k < c.size(); ++k)
            add(out[jobs[b].req], score_token(&lg2[r++ * V], V, c[k]));
        }
      }
    }
  });
  return out;
}

RollingResult Engine::loglikelihood_rolling(const std::vector<int>& ids, int max_length,
                                            int prefix_token) const {
  if (max_length <= 0) max_length = max_length_;
  if (prefix_token < 0) {
    prefix_token = config().bos_token_id >= 0       ? config().bos_token_id
                   : config().eos_token_ids.empty() ? 0
                                                    : config().eos_token_ids[0];
  }
  RollingResult res;
  std::vector<LoglikelihoodRequest> reqs;
  for (const RollingWindow& w : rolling_windows(ids, prefix_token, max_length)) {
    LoglikelihoodRequest r;
    disjoint_window(w, &r.context, &r.continuation);
    reqs.push_back(std::move(r));
  }
  res.n_windows = static_cast<int>(reqs.size());
  for (const LoglikelihoodResult& r : loglikelihood_batch(reqs, false)) res.logprob += r.logprob;
  res.n_tokens = static_cast<int>(ids.size());
  return res;
}

std::vector<int> Engine::generate(const std::vector<int>& prompt, const GenerateOptions& g) const {
  if (prompt.empty()) throw std::invalid_argument("generate: empty prompt");
  check_ids(prompt, "generate prompt");
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
