#pragma once
// Per-sequence key/value cache: for each layer K and V [capacity, n_head_kv * head_dim],
// rows 0..len-1 valid (row = position). Grows on demand; fork() copies the
// valid rows so that several continuations can extend one shared prefix.

#include <vector>

#include "model/engine/workspace.h"

namespace qsweep::model {

class KvCache {
 public:
  KvCache() = default;
  KvCache(int n_layer, int kv_dim) : kv_dim_(kv_dim), k_(n_layer), v_(n_layer) {}

  int len() const { return len_; }
  int kv_dim() const { return kv_dim_; }
  int n_layer() const { return static_cast<int>(k_.size()); }
  /// Makes room for `n` positions (keeps the valid rows).
  void reserve(int n);
  /// Sets the number of valid positions (<= capacity).
  void set_len(int n);
  /// K / V rows of `layer` [capacity, kv_dim].
  float* k(int layer) { return k_[layer].data(); }
  float* v(int layer) { return v_[layer].data(); }
  const float* k(int layer) const { return k_[layer].data(); }
  const float* v(int layer) const { return v_[layer].data(); }
  /// A copy holding the first `len` positions (default: all), with room for `extra` more.
  KvCache fork(int extra = 0, int len = -1) const;

 private:
  int kv_dim_ = 0;
  int len_ = 0;
  int cap_ = 0;
  std::vector<AlignedVec> k_, v_;  // [n_layer][cap * kv_dim]
};

}  // namespace qsweep::model
