#pragma once
// Causal self-attention with grouped KV heads (GQA/MQA: n_head_kv divides
// n_head), head_dim independent of n_embd / n_head, optional q/k/v/o biases,
// optional sliding window (Mistral). Works on a batch of segments: each
// segment appends its tokens to its own KvCache.

#include <memory>
#include <vector>

#include "model/engine/kv_cache.h"
#include "model/engine/linear.h"
#include "model/engine/rope.h"
#include "model/engine/workspace.h"

namespace qsweep::model {

/// A run of new tokens of one sequence: rows [row0, row0 + n_tok) of the
/// batch, positions cache->len() .. cache->len() + n_tok - 1. `Cache` is the
/// engine's per-sequence KV cache (KvCache here; the GPU engine's own).
template <class Cache>
struct BasicSegment {
  Cache* cache = nullptr;
  int row0 = 0;
  int n_tok = 0;
};
using Segment = BasicSegment<KvCache>;

struct Attention {
  std::unique_ptr<Linear> q, k, v, o;  // [n_head*hd, d], [n_kv*hd, d] x2, [d, n_head*hd]
  int n_head = 0, n_head_kv = 0, head_dim = 0;
  int sliding_window = 0;  // 0: unlimited
  int layer = 0;           // index into each KvCache

  /// x [n_rows, d] (normed) -> y [n_rows, d]. pos [n_rows]: absolute positions.
  /// Writes the new keys/values into each segment's cache rows (len is not changed).
  void forward(const float* x, float* y, int n_rows, const std::vector<Segment>& segs,
               const int* pos, const Rope& rope, Workspace& ws) const;
};

}  // namespace qsweep::model
