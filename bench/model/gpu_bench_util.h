#pragma once
// Timing helpers shared by the GPU engine benchmarks (gpu_engine_bench,
// gpu_quant_bench): wall-clock seconds, medians, one batched loglikelihood
// pass and batch-1 greedy decode on any TokenEngine.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "model/engine/token_engine.h"

namespace qsweep::model {

inline double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// Seconds of one batched loglikelihood of n_seq x seq_len scored tokens
/// (1 context token each; median of reps, after a warm-up).
inline double prefill(const TokenEngine& e, int n_seq, int seq_len, int reps) {
  std::vector<LoglikelihoodRequest> reqs(n_seq);
  for (int s = 0; s < n_seq; ++s) {
    reqs[s].context = {1 + s};
    for (int t = 0; t < seq_len; ++t) reqs[s].continuation.push_back((s * 7919 + t * 104729) % e.config().vocab_size);
  }
  e.loglikelihood_batch(reqs, false);  // warm-up (allocations, cuBLAS heuristics)
  std::vector<double> ts;
  for (int r = 0; r < reps; ++r) {
    const double t0 = now();
    e.loglikelihood_batch(reqs, false);
    ts.push_back(now() - t0);
  }
  return median(ts);
}

/// Seconds per generated token of greedy batch-1 decoding: (time of n_new
/// tokens - time of 1) / (n_new - 1), median of reps, after a warm-up.
inline double decode_seconds_per_token(const TokenEngine& e, const std::vector<int>& prompt, int n_new, int reps) {
  GenerateOptions one{.max_tokens = 1}, many{.max_tokens = n_new};
  e.generate(prompt, many);  // warm-up (graph capture)
  std::vector<double> per_tok;
  for (int r = 0; r < reps; ++r) {
    double t0 = now();
    e.generate(prompt, one);
    const double t_one = now() - t0;
    t0 = now();
    const std::vector<int> out = e.generate(prompt, many);
    const double t_many = now() - t0;
    if (int(out.size()) != n_new) std::fprintf(stderr, "decode: %zu tokens, expected %d\n", out.size(), n_new);
    per_tok.push_back((t_many - t_one) / (n_new - 1));
  }
  return median(per_tok);
}

}  // namespace qsweep::model
