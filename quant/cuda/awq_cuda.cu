// AWQ's clip search on the GPU: see awq_cuda.h. Matrices are column-major
// (Eigen's and cuBLAS's order): W [N, K] has element (r, c) at r + c*N.
#include "quant/cuda/awq_cuda.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "quant/cuda/cuda_check.cuh"

namespace qsweep::quant::cuda {

namespace {

// Per (row r, group gi) of W [n, k] (groups of g columns): org_max = max |w|.
// Thread per (r, gi); consecutive threads take consecutive rows (coalesced).
__global__ void group_absmax(const float* w, int n, int n_groups, int g, float* org_max) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= size_t(n) * n_groups) return;
  const int r = int(i % n), gi = int(i / n);
  float m = 0.0f;  // the first |w| >= 0; fmaxf keeps the CPU's maxCoeff for finite weights
  for (int j = gi * g; j < (gi + 1) * g; ++j) m = fmaxf(m, fabsf(w[r + size_t(j) * n]));
  org_max[r + size_t(gi) * n] = m;
}

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

// q = awq_pseudo_quantize(clamp(w, -mx, mx)).q with mx = org_max * shrink per
// (row, group): the clip search's candidate.
__global__ void clip_quantize(const float* w, const float* org_max, int n, int n_groups, int g, float shrink,
                              float maxq, float* q) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= size_t(n) * n_groups) return;
  const int r = int(i % n), gi = int(i / n);
  const float mx = org_max[r + size_t(gi) * n] * shrink, mn = -mx;
  pseudo_quantize_group(
      gi * g, (gi + 1) * g, maxq, [&](int j) { return fminf(fmaxf(w[r + size_t(j) * n], mn), mx); },
      [&](int j, float v) { q[r + size_t(j) * n] = v; });
}

// q = awq_pseudo_quantize(W * s).q / s per (row, group), s [k] per input
// column: the scale search's candidate (quant/awq_search.cpp: w * s, then
// the quantized value / s).
__global__ void scaled_quantize(const float* w, const float* s, int n, int n_groups, int g, float maxq, float* q) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= size_t(n) * n_groups) return;
  const int r = int(i % n), gi = int(i / n);
  pseudo_quantize_group(
      gi * g, (gi + 1) * g, maxq, [&](int j) { return __fmul_rn(w[r + size_t(j) * n], s[j]); },
      [&](int j, float v) { q[r + size_t(j) * n] = __fdiv_rn(v, s[j]); });
}

// err = mean over tokens of (out - org)^2 per (row, group) (differences in
// float, squares and sum in double in token order, then float, as the CPU);
// strictly better than min_err: remember the step and its max. out/org:
// [n_groups][n, t] (ld n).
__global__ void clip_update(const float* out, const float* org, const float* org_max, int n, int n_groups, int t,
                            float shrink, int step, float* min_err, float* best_max, int* best_step) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= size_t(n) * n_groups) return;
  const int r = int(i % n), gi = int(i / n);
  const float* o = out + size_t(gi) * n * t;
  const float* g0 = org + size_t(gi) * n * t;
  double s = 0.0;
  for (int k = 0; k < t; ++k) {
    const float d = o[r + size_t(k) * n] - g0[r + size_t(k) * n];
    s += double(__fmul_rn(d, d));
  }
  const float err = float(s / t);
  if (err < min_err[i]) {
    min_err[i] = err;
    best_max[i] = org_max[i] * shrink;
    best_step[i] = step;
  }
}

// *sum += sum over i < n of double((a[i] - b[i])^2) (differences and squares
// in float). Grid: blocks of 256.
__global__ void sq_diff_sum(const float* a, const float* b, size_t n, double* sum) {
  __shared__ double part[256];
  double s = 0.0;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const float d = a[i] - b[i];
    s += double(__fmul_rn(d, d));
  }
  part[threadIdx.x] = s;
  __syncthreads();
  for (int o = 128; o > 0; o >>= 1) {
    if (threadIdx.x < o) part[threadIdx.x] += part[threadIdx.x + o];
    __syncthreads();
  }
  if (threadIdx.x == 0) atomicAdd(sum, part[0]);
}

int blocks(size_t n) { return int((n + 255) / 256); }

class GpuAwqSearcher final : public AwqSearcher {
 public:
  explicit GpuAwqSearcher(int device) : device_(device) {}

  AwqClipResult best_clip(const Eigen::MatrixXf& w, const Eigen::MatrixXf& x_all, int bits, int group_size,
                          int n_grid, float max_shrink, int n_sample_token) override {
    const int n = int(w.rows()), k = int(w.cols());
    const int g = group_size > 0 ? group_size : k;
    if (k % g != 0)  // a partial last group: the CPU search
      return awq_compute_best_clip(w, x_all, bits, group_size, n_grid, max_shrink, n_sample_token);
    CK(cudaSetDevice(device_));
    const Eigen::MatrixXf x = awq_clip_tokens(x_all, n_sample_token);
    const int t = int(x.rows()), G = k / g;
    const size_t ng = size_t(n) * G;
    Dev<float> dw(size_t(n) * k), dq(size_t(n) * k), dx(size_t(t) * k), org(ng * t), out(ng * t);
    Dev<float> org_max(ng), min_err(ng), best_max(ng);
    Dev<int> best_step(ng);
    dw.upload(w.data(), dw.n);
    dx.upload(x.data(), dx.n);
    group_absmax<<<blocks(ng), 256>>>(dw.p, n, G, g, org_max.p);
    CK(cudaMemcpy(best_max.p, org_max.p, ng * 4, cudaMemcpyDeviceToDevice));
    CK(cudaMemset(best_step.p, 0, ng * 4));
    const std::vector<float> big(ng, 1e9f);
    min_err.upload(big.data(), ng);
    // Group gi's outputs [n, t] = W[:, group] [n, g] x[:, group]^T ([g, t]).
    cublasHandle_t h = thread_blas().h;
    const float one = 1.0f, zero = 0.0f;
    auto group_gemm = [&](const float* a, float* c) {
      CK(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_T, n, t, g, &one, a, n, (long long)g * n, dx.p, t,
                                   (long long)g * t, &zero, c, n, (long long)n * t, G));
    };
    group_gemm(dw.p, org.p);
    const int n_steps = int(float(n_grid) * max_shrink);
    const float maxq = float((1 << bits) - 1);
    for (int i_s = 0; i_s < n_steps; ++i_s) {
      const float shrink = float(1.0 - double(i_s) / double(n_grid));
      clip_quantize<<<blocks(ng), 256>>>(dw.p, org_max.p, n, G, g, shrink, maxq, dq.p);
      group_gemm(dq.p, out.p);
      clip_update<<<blocks(ng), 256>>>(out.p, org.p, org_max.p, n, G, t, shrink, i_s, min_err.p, best_max.p,
                                       best_step.p);
    }
    CK(cudaGetLastError());
    AwqClipResult res;
    res.tokens_used = t;
    res.best_max.resize(n, G);
    res.best_step.resize(n, G);
    best_max.download(res.best_max.data(), ng);  // [n, G] column-major, as the kernels index it
    best_step.download(res.best_step.data(), ng);
    return res;
  }

  AwqScaleResult search_scale_linear(const Eigen::MatrixXf& w, const Eigen::MatrixXf& x, int bits, int group_size,
                                     bool duo_scaling, int n_grid) override {
    const int n = int(w.rows()), k = int(w.cols()), t = int(x.rows());
    const int g = group_size > 0 ? group_size : k;
    if (k % g != 0)  // a partial last group: the CPU search
      return awq_search_scale_linear(w, x, bits, group_size, duo_scaling, n_grid);
    CK(cudaSetDevice(device_));
    Dev<float> dx(size_t(t) * k), dw(size_t(n) * k), dq(size_t(n) * k), ds(k), ref(size_t(t) * n), out(ref.n);
    Dev<double> sum(1);
    dx.upload(x.data(), dx.n);
    dw.upload(w.data(), dw.n);
    cublasHandle_t h = thread_blas().h;
    const float one = 1.0f, zero = 0.0f;
    auto apply = [&](const float* m, float* y) {  // y [t, n] = x m^T
      CK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, t, n, k, &one, dx.p, t, m, n, &zero, y, t));
    };
    apply(dw.p, ref.p);
    const size_t ng = size_t(n) * (k / g), total = size_t(t) * n;
    // Per ratio: the candidate Q(W * s) / s, its outputs, the loss.
    return awq_search_scale_by(awq_x_mean(x), awq_w_mean({&w}, group_size), duo_scaling, n_grid,
                               [&](const Eigen::VectorXf& s) {
                                 ds.upload(s.data(), size_t(k));
                                 scaled_quantize<<<blocks(ng), 256>>>(dw.p, ds.p, n, k / g, g,
                                                                      float((1 << bits) - 1), dq.p);
                                 apply(dq.p, out.p);
                                 CK(cudaMemset(sum.p, 0, sizeof(double)));
                                 sq_diff_sum<<<std::min(blocks(total), 1024), 256>>>(ref.p, out.p, total, sum.p);
                                 double loss = 0;
                                 sum.download(&loss, 1);
                                 return loss / double(total);
                               });
  }

 private:
  int device_;
};

}  // namespace

std::unique_ptr<AwqSearcher> make_awq_searcher(int device) {
  return std::make_unique<GpuAwqSearcher>(device);
}

}  // namespace qsweep::quant::cuda
