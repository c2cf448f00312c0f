#include "model/engine/kv_cache.h"

#include <algorithm>
#include <cstring>

#include "model/engine/kernel_assert.h"

namespace qsweep::model {

void KvCache::reserve(int n) {
  if (n <= cap_) return;
  const int cap = std::max(n, cap_ + cap_ / 2);
  for (auto* vs : {&k_, &v_})
    for (auto& v : *vs) v.resize(size_t(cap) * kv_dim_);
  cap_ = cap;
}

void KvCache::set_len(int n) {
  QSWEEP_KASSERT(n >= 0 && n <= cap_);
  len_ = n;
}

KvCache KvCache::fork(int extra, int len) const {
  if (len < 0) len = len_;
  QSWEEP_KASSERT(len <= len_);
  KvCache c(n_layer(), kv_dim_);
  c.reserve(len + extra);
  const size_t n = size_t(len) * kv_dim_;
  for (int l = 0; l < n_layer(); ++l) {
    if (n) std::memcpy(c.k_[l].data(), k_[l].data(), n * sizeof(float));
    if (n) std::memcpy(c.v_[l].data(), v_[l].data(), n * sizeof(float));
  }
  c.len_ = len;
  return c;
}

}  // namespace qsweep::model
