#pragma once
// Scratch buffers of one forward pass, reused across layers so that large
// activations are allocated (and page-faulted) once per pass, not per layer.

#include <Eigen/Core>
#include <cstddef>
#include <vector>

namespace qsweep::model {

/// float storage aligned for the widest vector unit (EIGEN_MAX_ALIGN_BYTES):
/// Eigen's kernels then take the same code path on every call, so results are
/// bitwise reproducible whatever addresses the allocator returns.
using AlignedVec = std::vector<float, Eigen::aligned_allocator<float>>;

struct Workspace {
  AlignedVec q, k, v;   // attention q [n_rows, n_head*hd], k and v [n_rows, kv_dim]
  AlignedVec att;       // attention output [n_rows, n_head*hd]
  AlignedVec gate, up;  // mlp [n_rows, n_ff] each
  /// v's storage with room for n floats (grows, never shrinks; contents unspecified).
  static float* get(AlignedVec& v, size_t n) {
    if (v.size() < n) v.resize(n);
    return v.data();
  }
};

}  // namespace qsweep::model
