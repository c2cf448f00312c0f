// Activation-quantized Linears on the GPU (W8A8 int8, FP8 E4M3 weights and
// activations): upload of a model::ActQuantizedLinear and quant_gemm (see
// gpu_impl.h). Per part of a stacked matrix:
//   1. quantize_tokens: each token row of x (engine dtype) to int8 codes
//      with its per-token dynamic scale absmax / 127, or to E4M3 with
//      max(absmax / 448, 1 / (448 * 512)) or the static input_scale — the
//      CPU kernel's formulas (quant/formats/activation_quant.h), IEEE
//      division and round-half-even as there;
//   2. a tensor-core GEMM: int8 x int8 -> int32 (cublasGemmEx, exact: the
//      CPU kernel's integer sums) or E4M3 x E4M3 -> fp32 (cublasLtMatmul;
//      products exact, sums in another order than the CPU's);
//   3. dequant_epilogue: y = sx * (w_scale * acc) + bias (+ the residual),
//      the CPU kernel's order of operations.
// Operands are padded to multiples of 16 rows/columns with zero codes (the
// FP8 GEMM needs it; the int8 one takes it), so any shape runs.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <array>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "model/cuda/gpu_impl.h"
#include "model/cuda/gpu_kernels.cuh"
#include "model/cuda/gpu_util.cuh"

namespace qsweep::model::cuda {

namespace k = kernels;
using Act = ActQuantizedLinear::Act;

namespace kernels {

constexpr float kFp8Max = 448.0f;
constexpr float kFp8MinScale = 1.0f / (448.0f * 512.0f);

// xq [n_pad, in_pad] = codes of x [n, in] per token row, sx [n] its scale;
// rows >= n and columns >= in are zero. Grid: n_pad; block 256.
template <class T>
__global__ void quantize_tokens(const T* x, int n, int in, int in_pad, int act, float input_scale, uint8_t* xq,
                                float* sx) {
  pdl_wait();
  pdl_launch_dependents();
  __shared__ float part[32];
  const int t = blockIdx.x;
  uint8_t* q = xq + size_t(t) * in_pad;
  if (t >= n) {
    for (int i = threadIdx.x; i < in_pad; i += blockDim.x) q[i] = 0;
    return;
  }
  const T* xr = x + size_t(t) * in;
  float scale = input_scale;
  if (act != int(Act::kFp8Static)) {
    float m = 0.0f;
    for (int i = threadIdx.x; i < in; i += blockDim.x) m = fmaxf(m, fabsf(to_f(xr[i])));
    m = block_max(m, part);
    if (act == int(Act::kInt8Token)) {
      const float mult = m == 0.0f ? 0.0f : 127.0f / m;
      for (int i = threadIdx.x; i < in; i += blockDim.x) {
        const float r = rintf(to_f(xr[i]) * mult);  // round half to even
        q[i] = uint8_t(int8_t(r != r ? 0.0f : fminf(fmaxf(r, -128.0f), 127.0f)));
      }
      for (int i = in + threadIdx.x; i < in_pad; i += blockDim.x) q[i] = 0;
      if (threadIdx.x == 0) sx[t] = m / 127.0f;
      return;
    }
    scale = fmaxf(m / kFp8Max, kFp8MinScale);
  }
  for (int i = threadIdx.x; i < in; i += blockDim.x) {
    float v = to_f(xr[i]) / scale;
    v = v < -kFp8Max ? -kFp8Max : (kFp8Max < v ? kFp8Max : v);  // std::clamp (NaN stays NaN)
    q[i] = __nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3);
  }
  for (int i = in + threadIdx.x; i < in_pad; i += blockDim.x) q[i] = 0;
  if (threadIdx.x == 0) sx[t] = scale;
}

// y[t, row0 + r] (ld ldy) = sx[t] * (w_scale[r] * acc[t, r]) + bias[r]
// (+ y with beta 1) for t < n, r < out; acc [n_pad, out_pad] (int32 or fp32).
// Grid: (column blocks, rows); block 256.
template <class Acc, class Y>
__global__ void dequant_epilogue(const Acc* acc, int n, int out, int out_pad, const float* sx, const float* w_scale,
                                 const float* bias, Y* y, int ldy, int row0, float beta) {
  pdl_wait();
  pdl_launch_dependents();
  for (int t = blockIdx.y; t < n; t += gridDim.y)
    for (int r = blockIdx.x * blockDim.x + threadIdx.x; r < out; r += gridDim.x * blockDim.x) {
      float v = sx[t] * (w_scale[r] * float(acc[size_t(t) * out_pad + r]));
      if (bias) v = v + bias[r];
      Y* dst = y + size_t(t) * ldy + row0 + r;
      *dst = from_f<Y>(beta == 0.0f ? v : to_f(*dst) + v);
    }
}

}  // namespace kernels

namespace {

/// acc [n_pad, out_pad] fp32 = xq [n_pad, in_pad] (E4M3) codes^T, on FP8 tensor cores.
void fp8_gemm(GpuTransformer::Impl& m, const QuantPart& p, const void* xq, int n_pad, float* acc) {
  auto lt = static_cast<cublasLtHandle_t>(m.cublaslt);
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  struct Release {  // the descriptors, however this returns
    cublasLtMatmulDesc_t& op;
    cublasLtMatrixLayout_t &la, &lb, &lc;
    cublasLtMatmulPreference_t& pref;
    ~Release() {
      if (pref) cublasLtMatmulPreferenceDestroy(pref);
      if (lc) cublasLtMatrixLayoutDestroy(lc);
      if (lb) cublasLtMatrixLayoutDestroy(lb);
      if (la) cublasLtMatrixLayoutDestroy(la);
      if (op) cublasLtMatmulDescDestroy(op);
    }
  } release{op, la, lb, lc, pref};
  check_blas(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "matmul desc");
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  check_blas(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta), "transa");
  check_blas(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb), "transb");
  // Column-major views: codes [in_pad, out_pad] (op T), xq [in_pad, n_pad], acc [out_pad, n_pad].
  check_blas(cublasLtMatrixLayoutCreate(&la, CUDA_R_8F_E4M3, p.in_pad, p.out_pad, p.in_pad), "layout A");
  check_blas(cublasLtMatrixLayoutCreate(&lb, CUDA_R_8F_E4M3, p.in_pad, n_pad, p.in_pad), "layout B");
  check_blas(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, p.out_pad, n_pad, p.out_pad), "layout C");
  check_blas(cublasLtMatmulPreferenceCreate(&pref), "preference");
  check_blas(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &m.workspace_bytes,
                                                sizeof m.workspace_bytes),
           "workspace");
  // The heuristic's choice, once per shape.
  cublasLtMatmulAlgo_t algo;
  static_assert(sizeof algo == sizeof(uint64_t) * 8, "cublasLtMatmulAlgo_t layout");
  const std::array<int, 3> shape = {p.out_pad, p.in_pad, n_pad};
  auto it = m.fp8_algos.find(shape);
  if (it == m.fp8_algos.end()) {
    cublasLtMatmulHeuristicResult_t h{};
    int found = 0;
    check_blas(cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, 1, &h, &found), "FP8 heuristic");
    if (found == 0) throw std::runtime_error("cuBLASLt has no FP8 GEMM for this shape");
    std::array<uint64_t, 8> bytes;
    std::memcpy(bytes.data(), &h.algo, sizeof algo);
    it = m.fp8_algos.emplace(shape, bytes).first;
  }
  std::memcpy(&algo, it->second.data(), sizeof algo);
  const float one = 1.0f, zero = 0.0f;
  check_blas(cublasLtMatmul(lt, op, &one, p.codes, la, xq, lb, &zero, acc, lc, acc, lc, &algo, m.workspace,
                          m.workspace_bytes, static_cast<cudaStream_t>(m.stream)),
           "FP8 GEMM");
}

}  // namespace

QuantPart GpuTransformer::Impl::upload_quantized(const ActQuantizedLinear::Data& d, int row0, const std::string& what) {
  const bool fp8 = d.act != Act::kInt8Token;
  if (fp8 && !(cc_major > 8 || (cc_major == 8 && cc_minor >= 9)))
    throw std::runtime_error(what + ": FP8 activations need FP8 tensor cores (compute capability 8.9+: Ada, Hopper); " +
                             device_name + " has " + std::to_string(cc_major) + "." + std::to_string(cc_minor) +
                             " (run this checkpoint with device: cpu)");
  if (int(d.codes.size()) != d.out * d.in || int(d.w_scale.size()) != d.out)
    throw std::runtime_error(what + ": inconsistent quantized Linear data");
  QuantPart p;
  p.row0 = row0;
  p.out = d.out;
  p.in = d.in;
  p.out_pad = int(align16(d.out));
  p.in_pad = int(align16(d.in));
  p.act = int(d.act);
  p.input_scale = d.input_scale;
  std::vector<uint8_t> padded(size_t(p.out_pad) * p.in_pad, 0);
  for (int r = 0; r < d.out; ++r)
    std::copy(d.codes.begin() + size_t(r) * d.in, d.codes.begin() + size_t(r + 1) * d.in,
              padded.begin() + size_t(r) * p.in_pad);
  p.codes = alloc_weight(padded.size(), what.c_str());
  check(cudaMemcpy(p.codes, padded.data(), padded.size(), cudaMemcpyHostToDevice), "upload " + what);
  p.w_scale = upload_f32(d.w_scale.data(), d.w_scale.size(), what + " scales");
  return p;
}

void quant_gemm(GpuTransformer::Impl& m, const DeviceMatrix& W, const void* x, void* y, int n, int out, int in,
                float beta, bool y_engine, bool pdl) {
  auto s = static_cast<cudaStream_t>(m.stream);
  const int n_pad = int(align16(n));
  int max_in = 0;
  size_t max_acc = 0;
  for (const QuantPart& p : W.parts) {
    max_in = std::max(max_in, p.in_pad);
    max_acc = std::max(max_acc, size_t(n_pad) * p.out_pad * 4);
    if (p.in != in) throw std::runtime_error("quantized matrix: input width mismatch");
  }
  m.ensure(m.qx, size_t(n_pad) * max_in, "quantized activations");
  m.ensure(m.qsx, size_t(n_pad) * 4, "activation scales");
  m.ensure(m.qacc, max_acc, "quantized GEMM accumulators");
  auto* xq = static_cast<uint8_t*>(m.qx.p);
  auto* sx = static_cast<float*>(m.qsx.p);
  int have_act = -1;  // the scheme xq currently holds (static: with have_scale)
  float have_scale = 0;
  with_dtype(m.dtype, [&](auto tag) {
    using T = decltype(tag);
    for (const QuantPart& p : W.parts) {
      if (p.act != have_act || (p.act == int(Act::kFp8Static) && p.input_scale != have_scale)) {
        launch(pdl, k::quantize_tokens<T>, n_pad, 256, 0, s, static_cast<const T*>(x), n, in, p.in_pad, p.act,
               p.input_scale, xq, sx);
        have_act = p.act;
        have_scale = p.input_scale;
      }
      if (p.act == int(Act::kInt8Token)) {
        const int32_t one = 1, zero = 0;
        check_blas(cublasGemmEx(static_cast<cublasHandle_t>(m.cublas), CUBLAS_OP_T, CUBLAS_OP_N, p.out_pad, n_pad,
                                p.in_pad, &one, p.codes, CUDA_R_8I, p.in_pad, xq, CUDA_R_8I, p.in_pad, &zero, m.qacc.p,
                                CUDA_R_32I, p.out_pad, CUBLAS_COMPUTE_32I, CUBLAS_GEMM_DEFAULT),
                   "int8 GEMM");
      } else {
        fp8_gemm(m, p, xq, n_pad, static_cast<float*>(m.qacc.p));
      }
      auto epi = [&](auto* acc, auto* yy) {
        using A = std::remove_cv_t<std::remove_pointer_t<decltype(acc)>>;
        using YT = std::remove_pointer_t<decltype(yy)>;
        launch(pdl, k::dequant_epilogue<A, YT>, row_grid(n, p.out), 256, 0, s, acc, n, p.out, p.out_pad, sx,
               p.w_scale, W.bias ? W.bias + p.row0 : nullptr, yy, out, p.row0, beta);
      };
      auto with_y = [&](auto* acc) {
        if (y_engine)
          epi(acc, static_cast<T*>(y));
        else
          epi(acc, static_cast<float*>(y));
      };
      if (p.act == int(Act::kInt8Token))
        with_y(static_cast<const int32_t*>(m.qacc.p));
      else
        with_y(static_cast<const float*>(m.qacc.p));
    }
  });
  check(cudaGetLastError(), "quantized GEMM");
}

}  // namespace qsweep::model::cuda
