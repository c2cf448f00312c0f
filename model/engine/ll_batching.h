#pragma once
// The batching of loglikelihood requests into forward passes, written once
// for every engine (CPU Transformer, GPU transformer). `Model` provides
//   using Cache = ...;                              a sequence's KV cache (movable)
//   Cache new_cache() const;
//   Cache fork(const Cache& c, int extra) const;    a copy with room for `extra` more
//   void score(const std::vector<int>& ids, std::vector<BasicSegment<Cache>>& segs,
//              const std::vector<int>& rows, const std::vector<int>& targets,
//              LoglikelihoodResult* out) const;
//   void logits(const std::vector<int>& ids, std::vector<BasicSegment<Cache>>& segs,
//               const std::vector<int>& rows, float* out /* [rows, vocab] */) const;
// where score runs ids [n_rows] (segment s owns rows segs[s].row0 ..,
// appending to its cache) and writes out[i] = score_token(logits of batch row
// rows[i], targets[i]). `rows` is non-decreasing (a row repeats only
// consecutively: the members of a group scored from its last row).
//
// Without reuse_prefix each request is one segment of (context +
// continuation)[:-1] whose last |continuation| rows are scored. With it,
// requests with identical contexts form a group: pass 1 runs each group's
// context once and scores every member's first continuation token from its
// last row; pass 2 runs continuations [0, m-1) on forks of the group's cache
// (the last member extends the group's cache itself). Passes hold at most
// `budget` tokens (a longer request runs alone).

#include <cstdint>
#include <map>
#include <vector>

#include "model/engine/attention.h"
#include "model/engine/token_engine.h"

namespace qsweep::model {

namespace detail {
inline void accumulate(LoglikelihoodResult& acc, const LoglikelihoodResult& r) {
  acc.logprob += r.logprob;
  acc.is_greedy = acc.is_greedy && r.is_greedy;
}
}  // namespace detail

/// Logits [sum of sizes, vocab] of `seqs` (ids checked), each sequence a
/// segment with a fresh cache, all in one pass, into `out`.
template <class Model>
void batch_logits(const Model& model, const std::vector<std::vector<int>>& seqs, float* out) {
  using Cache = typename Model::Cache;
  std::vector<int> ids;
  std::vector<Cache> caches;
  caches.reserve(seqs.size());  // segments point into it
  std::vector<BasicSegment<Cache>> segs;
  for (const auto& s : seqs) {
    if (s.empty()) continue;
    caches.push_back(model.new_cache());
    segs.push_back({&caches.back(), int(ids.size()), int(s.size())});
    ids.insert(ids.end(), s.begin(), s.end());
  }
  if (ids.empty()) return;
  std::vector<int> rows(ids.size());
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = int(i);
  model.logits(ids, segs, rows, out);
}

/// out[i] for reqs[i] with contexts ctx[i] (already truncated).
template <class Model>
std::vector<LoglikelihoodResult> batch_loglikelihood(const Model& model,
                                                     const std::vector<LoglikelihoodRequest>& reqs,
                                                     const std::vector<std::vector<int>>& ctx,
                                                     bool reuse_prefix, int budget) {
  using Cache = typename Model::Cache;
  using Seg = BasicSegment<Cache>;
  const size_t n_req = reqs.size();
  std::vector<LoglikelihoodResult> out(n_req, {0.0, true});
  if (!reuse_prefix) {
    size_t i = 0;
    while (i < n_req) {
      std::vector<int> ids, rows, targets;
      std::vector<size_t> members;
      while (i < n_req && (members.empty() || int(ids.size() + ctx[i].size() +
                                                  reqs[i].continuation.size()) - 1 <= budget)) {
        members.push_back(i);
        ids.insert(ids.end(), ctx[i].begin(), ctx[i].end());
        ids.insert(ids.end(), reqs[i].continuation.begin(), reqs[i].continuation.end() - 1);
        ++i;
      }
      std::vector<Cache> caches;
      caches.reserve(members.size());  // segments point into it
      std::vector<Seg> segs;
      int row = 0;
      for (size_t m : members) {
        const auto& cont = reqs[m].continuation;
        const int n_in = int(ctx[m].size() + cont.size()) - 1;
        caches.push_back(model.new_cache());
        segs.push_back({&caches.back(), row, n_in});
        for (int k = 0; k < int(cont.size()); ++k) {
          rows.push_back(row + n_in - int(cont.size()) + k);
          targets.push_back(cont[k]);
        }
        row += n_in;
      }
      std::vector<LoglikelihoodResult> sc(rows.size());
      model.score(ids, segs, rows, targets, sc.data());
      size_t r = 0;
      for (size_t m : members)
        for (size_t k = 0; k < reqs[m].continuation.size(); ++k) detail::accumulate(out[m], sc[r++]);
    }
    return out;
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
    // Pass 1: contexts of a chunk of groups, one segment each; each member's
    // first continuation token scored from its group's last row.
    std::vector<size_t> chunk;
    std::vector<int> ids;
    while (g < groups.size() &&
           (chunk.empty() || int(ids.size() + ctx[groups[g][0]].size()) <= budget)) {
      const auto& c = ctx[groups[g][0]];
      ids.insert(ids.end(), c.begin(), c.end());
      chunk.push_back(g++);
    }
    std::vector<Cache> caches;
    caches.reserve(chunk.size());
    std::vector<Seg> segs;
    std::vector<int> rows, targets;
    std::vector<size_t> scored;  // request of each scored row
    int row = 0;
    for (size_t gi : chunk) {
      const int n = int(ctx[groups[gi][0]].size());
      caches.push_back(model.new_cache());
      segs.push_back({&caches.back(), row, n});
      row += n;
      for (size_t m : groups[gi]) {
        rows.push_back(row - 1);
        targets.push_back(reqs[m].continuation[0]);
        scored.push_back(m);
      }
    }
    std::vector<LoglikelihoodResult> sc(rows.size());
    model.score(ids, segs, rows, targets, sc.data());
    for (size_t k = 0; k < scored.size(); ++k) detail::accumulate(out[scored[k]], sc[k]);
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
      std::vector<int> ids2, rows2, targets2;
      std::vector<size_t> batch;
      while (j < jobs.size() &&
             (batch.empty() ||
              int(ids2.size() + reqs[jobs[j].req].continuation.size()) - 1 <= budget)) {
        const auto& c = reqs[jobs[j].req].continuation;
        ids2.insert(ids2.end(), c.begin(), c.end() - 1);
        batch.push_back(j++);
      }
      std::vector<Cache> forks;
      forks.reserve(batch.size());
      std::vector<Seg> segs2;
      int row2 = 0;
      for (size_t b : batch) {
        const auto& c = reqs[jobs[b].req].continuation;
        const int n = int(c.size()) - 1;
        Cache* cache = &caches[jobs[b].group_slot];
        if (last_job[jobs[b].group_slot] != b) {  // forks copy before the forward pass appends
          forks.push_back(model.fork(*cache, n));
          cache = &forks.back();
        }
        segs2.push_back({cache, row2, n});
        for (int k = 0; k < n; ++k) {
          rows2.push_back(row2 + k);
          targets2.push_back(c[k + 1]);
        }
        row2 += n;
      }
      std::vector<LoglikelihoodResult> sc2(rows2.size());
      model.score(ids2, segs2, rows2, targets2, sc2.data());
      size_t r = 0;
      for (size_t b : batch)
        for (size_t k = 1; k < reqs[jobs[b].req].continuation.size(); ++k)
          detail::accumulate(out[jobs[b].req], sc2[r++]);
    }
  }
  return out;
}

}  // namespace qsweep::model
