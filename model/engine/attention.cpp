#include "model/engine/attention.h"

#include <tbb/parallel_for.h>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "model/engine/kernel_assert.h"

namespace qsweep::model {
namespace {
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Strided = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;
using StridedOut = Eigen::Map<RowMat, 0, Eigen::OuterStride<>>;
}  // namespace

void Attention::forward(const float* x, float* y, int n_rows, const std::vector<Segment>& segs,
                        const int* pos, const Rope& rope, Workspace& ws) const {
  const int qd = n_head * head_dim, kvd = n_head_kv * head_dim;
  float* qb = Workspace::get(ws.q, size_t(n_rows) * qd);   // [n_rows, n_head*hd]
  float* kb = Workspace::get(ws.k, size_t(n_rows) * kvd);  // [n_rows, kv_dim]
  float* vb = Workspace::get(ws.v, size_t(n_rows) * kvd);  // [n_rows, kv_dim]
  q->forward(x, qb, n_rows);
  k->forward(x, kb, n_rows);
  v->forward(x, vb, n_rows);
  rope.apply(qb, n_rows, n_head, pos);
  rope.apply(kb, n_rows, n_head_kv, pos);
  // New keys/values go to rows start.. of each segment's cache.
  for (const Segment& s : segs) {
    const int start = s.cache->len();
    QSWEEP_KASSERT(start + s.n_tok <= 0 || s.cache->kv_dim() == kvd);
    std::memcpy(s.cache->k(layer) + size_t(start) * kvd, kb + size_t(s.row0) * kvd,
                sizeof(float) * size_t(s.n_tok) * kvd);
    std::memcpy(s.cache->v(layer) + size_t(start) * kvd, vb + size_t(s.row0) * kvd,
                sizeof(float) * size_t(s.n_tok) * kvd);
  }
  float* att = Workspace::get(ws.att, size_t(n_rows) * qd);  // [n_rows, n_head*hd]
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const int group = n_head / n_head_kv;
  // Tasks: (segment, head, block of kBlock query rows). Block rows i0..i1 see
  // keys [0, start + i1): S = Q K^T * scale [nb, P], causal softmax, O = S V.
  constexpr int kBlock = 64;
  struct Task {
    int seg, head, i0;
  };
  std::vector<Task> tasks;
  for (int si = 0; si < static_cast<int>(segs.size()); ++si)
    for (int h = 0; h < n_head; ++h)
      for (int i0 = 0; i0 < segs[si].n_tok; i0 += kBlock) tasks.push_back({si, h, i0});
  tbb::parallel_for(0, static_cast<int>(tasks.size()), [&](int ti) {
    const Task& task = tasks[ti];
    const Segment& s = segs[task.seg];
    const int h = task.head, hk = h / group;
    const int start = s.cache->len();
    const int i0 = task.i0, nb = std::min(kBlock, s.n_tok - i0), P = start + i0 + nb;
    const Strided Q(qb + size_t(s.row0 + i0) * qd + h * head_dim, nb, head_dim,
                    Eigen::OuterStride<>(qd));
    const Strided K(s.cache->k(layer) + hk * head_dim, P, head_dim, Eigen::OuterStride<>(kvd));
    const Strided V(s.cache->v(layer) + hk * head_dim, P, head_dim, Eigen::OuterStride<>(kvd));
    RowMat S(nb, P);
    S.noalias() = (Q * K.transpose()) * scale;
    for (int i = 0; i < nb; ++i) {
      const int qpos = start + i0 + i;
      const int lo = sliding_window > 0 ? std::max(0, qpos - sliding_window + 1) : 0;
      auto row = S.row(i);
      auto live = row.segment(lo, qpos + 1 - lo).array();
      const float mx = live.maxCoeff();
      live = (live - mx).exp();
      live *= 1.0f / live.sum();
      if (lo > 0) row.head(lo).setZero();
      if (qpos + 1 < P) row.tail(P - qpos - 1).setZero();
    }
    StridedOut O(att + size_t(s.row0 + i0) * qd + h * head_dim, nb, head_dim,
                 Eigen::OuterStride<>(qd));
    O.noalias() = S * V;
  });
  o->forward(att, y, n_rows);
}

}  // namespace qsweep::model
