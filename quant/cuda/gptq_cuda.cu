// GPTQ on the GPU: see gptq_cuda.h. Matrices are column-major (Eigen's and
// cuBLAS's order): W [N, K] has element (r, c) at r + c*N.
#include "quant/cuda/gptq_cuda.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "model/cuda/gpu_transformer.h"
#include "quant/cuda/cuda_check.cuh"

namespace qsweep::quant::cuda {

namespace {

using Clock = std::chrono::steady_clock;

void ck(cusolverStatus_t s, const char* what) {
  if (s != CUSOLVER_STATUS_SUCCESS) throw CudaFailure(std::string(what) + ": cuSOLVER status " + std::to_string(int(s)));
}

struct Solver {
  cusolverDnHandle_t h = nullptr;
  Solver() { CK(cusolverDnCreate(&h)); }
  ~Solver() { cusolverDnDestroy(h); }
};

// cuSOLVER handles are expensive to create (~0.1 s each): one per thread,
// kept for the process's lifetime.
Solver& thread_solver() {
  thread_local Solver s;
  return s;
}

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// ---- kernels ------------------------------------------------------------------

constexpr int k_max_block = 128;  // GPTQ block size limit of the in-block kernel

// H -> H[perm][:, perm] (lower triangle is enough: potrf reads only it).
__global__ void permute_sym(const float* h, float* hp, const int* perm, int k) {
  const int q = blockIdx.x * blockDim.x + threadIdx.x, p = blockIdx.y;
  if (q >= k || p >= k) return;
  hp[q + size_t(p) * k] = h[perm[q] + size_t(perm[p]) * k];
}

__global__ void add_diag(float* h, int k, float v) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < k) h[i + size_t(i) * k] += v;
}

// Quantizer::find_params of row r over columns [c0, c0 + width) of w.
__device__ void find_params_row(const float* w, int ld, int r, int c0, int width, float maxq, bool sym,
                                float* scale, float* zero) {
  float mn = w[r + size_t(c0) * ld], mx = mn;
  for (int c = c0 + 1; c < c0 + width; ++c) {
    const float v = w[r + size_t(c) * ld];
    mn = fminf(mn, v);
    mx = fmaxf(mx, v);
  }
  float xmin = fminf(0.0f, mn), xmax = fmaxf(0.0f, mx);
  if (sym) {
    xmax = fmaxf(fabsf(xmin), xmax);
    if (xmin < 0) xmin = -xmax;
  }
  if (xmin == 0 && xmax == 0) {
    xmin = -1;
    xmax = 1;
  }
  const float s = __fdiv_rn(xmax - xmin, maxq);
  *scale = s;
  *zero = sym ? (maxq + 1) / 2 : rintf(__fdiv_rn(-xmin, s));
}

// One GPTQ block [i1, i1 + count) for row r: quantize each column, spread its
// error over the block's later columns (U's row), keep the errors for the
// lazy update. The recursion only couples columns of one row, so rows run
// in parallel. Group modes: dynamic (params from W at each group start,
// [QUIRK] W without this block's updates), static (precomputed per original
// group), per-channel (precomputed per row).
struct BlockArgs {
  float* w;             // [N, K] permuted, lazily updated
  const float* l2;      // [K, K] lower Cholesky factor of H^-1: U(i, j) = l2[j + i*K]
  int n, k, i1, count, g;
  bool dynamic_groups, static_groups;
  const int* perm;      // [K] permuted position -> original column
  const float* pscale;  // static: [N, n_groups]; per-channel: [N]
  const float* pzero;
  float* gscale;        // dynamic: [N, n_groups] in computed order
  float* gzero;
  float* out_q;         // [N, K] original column order
  int* out_codes;
  float* err1;          // [N, count]
  float maxq;
  bool sym;
};

__global__ void gptq_block(BlockArgs a) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= a.n) return;
  float w1[k_max_block];
  for (int i = 0; i < a.count; ++i) w1[i] = a.w[r + size_t(a.i1 + i) * a.n];
  float sc = 0, zr = 0;
  if (a.dynamic_groups && a.i1 % a.g != 0) {  // a group that began in an earlier block
    const int gi = a.i1 / a.g;
    sc = a.gscale[r + size_t(gi) * a.n];
    zr = a.gzero[r + size_t(gi) * a.n];
  } else if (!a.dynamic_groups && !a.static_groups) {
    sc = a.pscale[r];
    zr = a.pzero[r];
  }
  for (int i = 0; i < a.count; ++i) {
    const int col = a.i1 + i;
    if (a.dynamic_groups) {
      if (col % a.g == 0) {
        find_params_row(a.w, a.n, r, col, min(a.g, a.k - col), a.maxq, a.sym, &sc, &zr);
        const int gi = col / a.g;
        a.gscale[r + size_t(gi) * a.n] = sc;
        a.gzero[r + size_t(gi) * a.n] = zr;
      }
    } else if (a.static_groups) {
      const int gi = a.perm[col] / a.g;
      sc = a.pscale[r + size_t(gi) * a.n];
      zr = a.pzero[r + size_t(gi) * a.n];
    }
    const float d = a.l2[col + size_t(col) * a.k];
    const float c = fminf(fmaxf(rintf(__fdiv_rn(w1[i], sc)) + zr, 0.0f), a.maxq);
    const float q = sc * (c - zr);
    const int oc = a.perm[col];
    a.out_q[r + size_t(oc) * a.n] = q;
    a.out_codes[r + size_t(oc) * a.n] = int(c);
    const float e = __fdiv_rn(w1[i] - q, d);
    const float* urow = a.l2 + size_t(col) * a.k + a.i1;  // U(col, i1 + j) = l2[i1 + j + col*K]
    for (int j = i + 1; j < a.count; ++j) w1[j] -= e * __ldg(urow + j);
    a.err1[r + size_t(i) * a.n] = e;
  }
}

}  // namespace

bool available(std::string* why) { return model::cuda::cuda_device_available(why); }

std::string device_description() {
  int dev = 0;
  cudaDeviceProp p{};
  if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&p, dev) != cudaSuccess) return "?";
  char b[256];
  std::snprintf(b, sizeof b, "%s, %.1f GiB, sm_%d%d", p.name, double(p.totalGlobalMem) / (1 << 30), p.major, p.minor);
  return b;
}

// ---- Hessian ------------------------------------------------------------------

struct HessianAccumulatorCuda::State {
  Blas blas;
  Dev<float> h;
  std::unique_ptr<Dev<float>> x;  // staging for host batches
  explicit State(int k, bool tf32) : blas(tf32), h(size_t(k) * k) {}
};

HessianAccumulatorCuda::HessianAccumulatorCuda(int k, bool tf32) : s_(std::make_unique<State>(k, tf32)), k_(k) {
  CK(cudaMemset(s_->h.p, 0, sizeof(float) * size_t(k) * k));
}

HessianAccumulatorCuda::~HessianAccumulatorCuda() = default;

void HessianAccumulatorCuda::add_batch_rows(const float* x, int n_rows, int n_seq) {
  const size_t need = size_t(n_rows) * k_;
  if (!s_->x || s_->x->n < need) {
    s_->x.reset();
    s_->x = std::make_unique<Dev<float>>(need);
  }
  s_->x->upload(x, need);
  add_batch_rows_device(s_->x->p, n_rows, n_seq);
}

void HessianAccumulatorCuda::add_batch_rows_device(const float* x_dev, int n_rows, int n_seq) {
  // Same scalars as HessianAccumulator::add_batch_rows (doubles cast to float).
  const float f = static_cast<float>(double(nsamples_) / double(nsamples_ + n_seq));
  nsamples_ += n_seq;
  const float s = static_cast<float>(std::sqrt(2.0 / double(nsamples_)));
  const float alpha = s * s;
  // x rows [n_rows, K] row-major = x^T [K, n_rows] column-major: H = f H + alpha x^T x.
  CK(cublasSsyrk(s_->blas.h, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, k_, n_rows, &alpha, x_dev, k_, &f, s_->h.p, k_));
}

Eigen::MatrixXf HessianAccumulatorCuda::take() {
  Eigen::MatrixXf h(k_, k_);
  CK(cudaDeviceSynchronize());
  s_->h.download(h.data(), size_t(k_) * k_);
  h.triangularView<Eigen::StrictlyUpper>() = h.transpose();
  return h;
}

// ---- GPTQ -----------------------------------------------------------------------

bool gptq_quantize_cuda(const Eigen::MatrixXf& w_in, const Eigen::MatrixXf& h_in, const GptqConfig& cfg,
                        QuantizedWeight* out, std::string* err, GptqCudaTimes* times) {
  GptqCudaTimes t;
  try {
    const int n = int(w_in.rows()), k = int(w_in.cols());
    if (h_in.rows() != k || h_in.cols() != k) {
      *err = "gptq: H must be [K, K] with K = W.cols()";
      return false;
    }
    if (cfg.blocksize < 1 || cfg.blocksize > k_max_block) {
      *err = "gptq (cuda): blocksize must be 1.." + std::to_string(k_max_block);
      return false;
    }
    auto t0 = Clock::now();
    const bool grouped = cfg.group_size != -1;
    const int g = grouped ? cfg.group_size : k;
    const float maxq = float((1 << cfg.bits) - 1);

    // Host side, O(N K): the same steps and order as quant/gptq.cpp.
    Quantizer whole(cfg.bits, cfg.sym);
    whole.find_params(w_in);  // per-channel params, before the dead-column fix
    Eigen::MatrixXf h = h_in;
    Eigen::MatrixXf w = w_in;
    std::vector<int> dead;
    const std::vector<int> perm = gptq_dead_and_order(h, cfg, &dead);
    // mean(diag(H[perm][:, perm])) summed in order, as Eigen sums a diagonal.
    Eigen::VectorXf pdiag(k);
    for (int p = 0; p < k; ++p) pdiag[p] = h(perm[p], perm[p]);
    const float damp =
        cfg.percdamp * Eigen::Map<const Eigen::VectorXf, 0, Eigen::InnerStride<>>(pdiag.data(), k, Eigen::InnerStride<>(1)).mean();
    // (the device factorization runs on its own copies: W may be prepared now)
    const std::vector<Quantizer> groups = gptq_prepare_w(w, cfg, dead, perm);
    const int n_groups = (k + g - 1) / g;
    Eigen::MatrixXf pscale, pzero;  // static groups or per-channel
    if (grouped && cfg.static_groups) {
      pscale.resize(n, n_groups);
      pzero.resize(n, n_groups);
      for (int gi = 0; gi < n_groups; ++gi) {
        pscale.col(gi) = groups[gi].scale();
        pzero.col(gi) = groups[gi].zero();
      }
    } else {
      pscale = whole.scale();
      pzero = whole.zero();
    }

    t.prep = since(t0);
    t0 = Clock::now();
    Blas& blas = thread_blas();
    CK(cublasSetMathMode(blas.h, cfg.tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH));
    Solver& solver = thread_solver();
    Dev<float> hd(size_t(k) * k), hp(size_t(k) * k), wd(size_t(n) * k);
    Dev<int> permd(k);
    Dev<float> psd(size_t(pscale.size())), pzd(size_t(pzero.size()));
    hd.upload(h.data(), size_t(k) * k);
    permd.upload(perm.data(), k);
    wd.upload(w.data(), size_t(n) * k);
    psd.upload(pscale.data(), pscale.size());
    pzd.upload(pzero.data(), pzero.size());
    CK(cudaDeviceSynchronize());
    t.upload = since(t0);

    // H[perm][:, perm] + damp I; L L^T = H; H^-1 from L (potri); L2 L2^T = H^-1, U = L2^T.
    t0 = Clock::now();
    permute_sym<<<dim3((k + 255) / 256, k), 256>>>(hd.p, hp.p, permd.p, k);
    add_diag<<<(k + 255) / 256, 256>>>(hp.p, k, damp);
    CK(cudaGetLastError());
    int lwork = 0, lwork2 = 0;
    CK(cusolverDnSpotrf_bufferSize(solver.h, CUBLAS_FILL_MODE_LOWER, k, hp.p, k, &lwork));
    CK(cusolverDnSpotri_bufferSize(solver.h, CUBLAS_FILL_MODE_LOWER, k, hp.p, k, &lwork2));
    Dev<float> work(size_t(std::max(lwork, lwork2)));
    Dev<int> info(1);
    int hinfo = 0;
    CK(cusolverDnSpotrf(solver.h, CUBLAS_FILL_MODE_LOWER, k, hp.p, k, work.p, lwork, info.p));
    info.download(&hinfo, 1);
    if (hinfo != 0) {
      *err = "gptq: Cholesky of the damped Hessian failed (not positive definite)";
      return false;
    }
    CK(cusolverDnSpotri(solver.h, CUBLAS_FILL_MODE_LOWER, k, hp.p, k, work.p, lwork2, info.p));
    info.download(&hinfo, 1);
    if (hinfo != 0) {
      *err = "gptq: inverting the damped Hessian failed (singular factor)";
      return false;
    }
    CK(cusolverDnSpotrf(solver.h, CUBLAS_FILL_MODE_LOWER, k, hp.p, k, work.p, lwork, info.p));
    info.download(&hinfo, 1);
    if (hinfo != 0) {
      *err = "gptq: Cholesky of H^{-1} failed";
      return false;
    }
    CK(cudaDeviceSynchronize());
    t.factorize = since(t0);

    t0 = Clock::now();
    Dev<float> qd(size_t(n) * k), err1(size_t(n) * cfg.blocksize);
    Dev<int> cd(size_t(n) * k);
    Dev<float> gs(grouped && !cfg.static_groups ? size_t(n) * n_groups : 0);
    Dev<float> gz(grouped && !cfg.static_groups ? size_t(n) * n_groups : 0);
    BlockArgs a{};
    a.w = wd.p;
    a.l2 = hp.p;
    a.n = n;
    a.k = k;
    a.g = g;
    a.dynamic_groups = grouped && !cfg.static_groups;
    a.static_groups = grouped && cfg.static_groups;
    a.perm = permd.p;
    a.pscale = psd.p;
    a.pzero = pzd.p;
    a.gscale = gs.p;
    a.gzero = gz.p;
    a.out_q = qd.p;
    a.out_codes = cd.p;
    a.err1 = err1.p;
    a.maxq = maxq;
    a.sym = cfg.sym;
    const float minus_one = -1.0f, one = 1.0f;
    for (int i1 = 0; i1 < k; i1 += cfg.blocksize) {
      const int i2 = std::min(i1 + cfg.blocksize, k), count = i2 - i1;
      a.i1 = i1;
      a.count = count;
      gptq_block<<<(n + 63) / 64, 64>>>(a);
      CK(cudaGetLastError());
      if (i2 < k)
        // W[:, i2:] -= Err1 (N x count) * U[i1:i2, i2:]  with U[i1:i2, i2:] = (L2[i2:, i1:i2])^T
        CK(cublasSgemm(blas.h, CUBLAS_OP_N, CUBLAS_OP_T, n, k - i2, count, &minus_one, err1.p, n,
                       hp.p + i2 + size_t(i1) * k, k, &one, wd.p + size_t(i2) * n, n));
    }
    CK(cudaDeviceSynchronize());
    t.quantize = since(t0);

    t0 = Clock::now();
    out->bits = cfg.bits;
    out->group_size = cfg.group_size;
    out->q.resize(n, k);
    out->codes.resize(n, k);
    qd.download(out->q.data(), size_t(n) * k);
    cd.download(out->codes.data(), size_t(n) * k);
    if (!grouped) {
      out->scale = whole.scale();
      out->zero = whole.zero();
    } else if (cfg.static_groups) {
      out->scale = pscale;
      out->zero = pzero;
    } else {
      out->scale.resize(n, n_groups);
      out->zero.resize(n, n_groups);
      gs.download(out->scale.data(), size_t(n) * n_groups);
      gz.download(out->zero.data(), size_t(n) * n_groups);
    }
    out->g_idx = gptq_g_idx(cfg, perm);
    t.download = since(t0);
  } catch (const CudaFailure& e) {
    *err = std::string("gptq (cuda): ") + e.what();
    return false;
  }
  if (times) *times = t;
  return true;
}

// ---- the layer pipeline's solver ----------------------------------------------

namespace {

class CudaHessian : public HessianSink {
 public:
  CudaHessian(int device, int k, bool tf32) : device_(device) {
    CK(cudaSetDevice(device_));
    acc_ = std::make_unique<HessianAccumulatorCuda>(k, tf32);
  }
  void add_batch_rows(const float* x, int n_rows, int n_seq) override {
    CK(cudaSetDevice(device_));
    acc_->add_batch_rows(x, n_rows, n_seq);
  }
  Eigen::MatrixXf h() override {
    CK(cudaSetDevice(device_));
    return acc_->take();
  }
  Eigen::MatrixXf take() override {
    CK(cudaSetDevice(device_));
    Eigen::MatrixXf h = acc_->take();
    acc_.reset();  // frees the device copy
    return h;
  }

 private:
  int device_;
  std::unique_ptr<HessianAccumulatorCuda> acc_;
};

class CudaSolver : public GptqSolver {
 public:
  explicit CudaSolver(int device) : device_(device) {}
  std::string device() const override { return "cuda:" + std::to_string(device_); }
  std::unique_ptr<HessianSink> hessian(int k, const GptqConfig& cfg) override {
    return std::make_unique<CudaHessian>(device_, k, cfg.tf32);
  }
  bool quantize(Eigen::MatrixXf& w, Eigen::MatrixXf& h, const GptqConfig& cfg, QuantizedWeight* out,
                std::string* err) override {
    if (cudaSetDevice(device_) != cudaSuccess) {
      *err = "gptq (cuda): cannot select device " + std::to_string(device_);
      return false;
    }
    return gptq_quantize_cuda(w, h, cfg, out, err);
  }

 private:
  int device_;
};

}  // namespace

std::unique_ptr<GptqSolver> make_gptq_solver(int device) { return std::make_unique<CudaSolver>(device); }

}  // namespace qsweep::quant::cuda
