#pragma once
// AWQ's device arithmetic shared by quant/cuda's searches (awq_cuda.cu: one
// Linear's clip and scale searches; layer_cuda.cu: the block scale searches):
// the group pseudo-quantization in quant/awq.cpp's order of fp32
// operations, the scale search's candidate Q(W * s) / s, and AutoAWQ's loss
// summed deterministically. Included inside quant/cuda's translation units.
#include <cuda_runtime.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "quant/cuda/cuda_check.cuh"

namespace qsweep::quant::cuda {
namespace {

int blocks(size_t n) { return int((n + 255) / 256); }

// awq_pseudo_quantize of one (row, group) whose values are v(j), j in [j0,
// j1): scale = max(max - min, 1e-5) / maxq, zero = clamp(-rne(min / scale),
// 0, maxq), c = clamp(rne(v / scale) + zero, 0, maxq), then
// out(j, (c - zero) * scale) — quant/awq.cpp's order of fp32 operations.
template <class V, class Out>
__device__ __forceinline__ void pseudo_quantize_group(int j0, int j1, float maxq, V v, Out out) {
  float hi = -INFINITY, lo = INFINITY;
  for (int j = j0; j < j1; ++j) {
    const float x = v(j);
    hi = fmaxf(hi, x);
    lo = fminf(lo, x);
  }
  const float scale = __fdiv_rn(fmaxf(hi - lo, 1e-5f), maxq);
  const float zero = fminf(fmaxf(-rintf(__fdiv_rn(lo, scale)), 0.0f), maxq);
  for (int j = j0; j < j1; ++j) {
    const float c = fminf(fmaxf(rintf(__fdiv_rn(v(j), scale)) + zero, 0.0f), maxq);
    out(j, __fmul_rn(c - zero, scale));
  }
}

// q = awq_pseudo_quantize(W * s).q / s per (row, group) of W [n, n_groups *
// g], s [k] per input column (quant/awq_search.cpp awq_scaled_candidate).
// Element (r, j) of W and q at r * rs + j * cs (column-major: rs 1, cs n;
// row-major: rs k, cs 1). Thread per (r, group).
__global__ void scaled_quantize(const float* w, const float* s, int n, int n_groups, int g, float maxq, size_t rs,
                                size_t cs, float* q) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= size_t(n) * n_groups) return;
  const int r = int(i % n), gi = int(i / n);
  pseudo_quantize_group(
      gi * g, (gi + 1) * g, maxq, [&](int j) { return __fmul_rn(w[r * rs + j * cs], s[j]); },
      [&](int j, float v) { q[r * rs + j * cs] = __fdiv_rn(v, s[j]); });
}

constexpr int kLossBlocks = 128;

// part[b] = sum over block b's elements i < n of double((a[i] - b[i])^2)
// (differences and squares in float, as awq_loss). Grid: kLossBlocks x 256.
__global__ void sq_diff_partials(const float* a, const float* b, size_t n, double* part) {
  __shared__ double p[256];
  double s = 0.0;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const float d = a[i] - b[i];
    s += double(__fmul_rn(d, d));
  }
  p[threadIdx.x] = s;
  __syncthreads();
  for (int o = 128; o > 0; o >>= 1) {
    if (threadIdx.x < o) p[threadIdx.x] += p[threadIdx.x + o];
    __syncthreads();
  }
  if (threadIdx.x == 0) part[blockIdx.x] = p[0];
}

/// Σ (a - b)^2 over several arrays, in a fixed order (no atomics: the same
/// inputs give the same bits on every run). begin(n) before up to n add()s.
struct LossSum {
  double* parts = nullptr;  // device [cap][kLossBlocks]
  size_t cap = 0, used = 0;
  LossSum() = default;
  LossSum(const LossSum&) = delete;
  LossSum& operator=(const LossSum&) = delete;
  ~LossSum() {
    if (parts) cudaFree(parts);
  }
  void begin(size_t n_arrays) {
    used = 0;
    if (n_arrays <= cap) return;
    if (parts) cudaFree(parts);
    parts = nullptr;
    cap = 0;
    CK(cudaMalloc(&parts, n_arrays * kLossBlocks * sizeof(double)));
    cap = n_arrays;
  }
  void add(const float* a, const float* b, size_t n, cudaStream_t s) {
    if (used == cap) throw std::logic_error("LossSum: more arrays than begin() reserved");
    sq_diff_partials<<<kLossBlocks, 256, 0, s>>>(a, b, n, parts + used++ * kLossBlocks);
  }
  double total(cudaStream_t s) const {
    std::vector<double> h(used * kLossBlocks);
    CK(cudaMemcpyAsync(h.data(), parts, h.size() * sizeof(double), cudaMemcpyDeviceToHost, s));
    CK(cudaStreamSynchronize(s));
    double t = 0.0;
    for (double v : h) t += v;
    return t;
  }
};

}  // namespace
}  // namespace qsweep::quant::cuda
