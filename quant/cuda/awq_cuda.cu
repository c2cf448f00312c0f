// AWQ's clip search on the GPU: see awq_cuda.h. Matrices are column-major
// (Eigen's and cuBLAS's order): W [N, K] has element (r, c) at r + c*N.
#include "quant/cuda/awq_cuda.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "quant/cuda/awq_kernels.cuh"
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
    LossSum sum;
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
                                                                      float((1 << bits) - 1), 1, n, dq.p);
                                 apply(dq.p, out.p);
                                 sum.begin(1);
                                 sum.add(ref.p, out.p, total, nullptr);
                                 return sum.total(nullptr) / double(total);
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
