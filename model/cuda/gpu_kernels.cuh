#pragma once
// The GPU engine's kernels (device code; included by the engine's translation
// units and by quant/cuda/layer_cuda.cu, the calibration passes, so
// non-template kernels are static).
// Shapes are row-major; "T" is the engine dtype (float, __nv_bfloat16,
// __half), arithmetic is fp32 unless said otherwise.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cfloat>
#include <climits>
#include <cstdint>

namespace qsweep::model::cuda::kernels {

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
template <class T>
__device__ __forceinline__ T from_f(float v);
template <>
__device__ __forceinline__ float from_f<float>(float v) { return v; }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <>
__device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }

struct AddOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return a + b; }
};
struct MaxOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

/// v combined with op over the warp (xor butterfly; every lane gets it).
template <class Op>
__device__ __forceinline__ float warp_reduce(float v, Op op) {
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) { return warp_reduce(v, AddOp{}); }
__device__ __forceinline__ float warp_max(float v) { return warp_reduce(v, MaxOp{}); }

/// v combined with op over the block (every thread gets it); `part` is
/// __shared__ float[32], reusable when this returns; `identity` is op's
/// neutral element. The order depends only on blockDim, so two kernels with
/// the same block size get the same bits.
template <class Op>
__device__ __forceinline__ float block_reduce(float v, float* part, float identity, Op op) {
  v = warp_reduce(v, op);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
  __syncthreads();
  if (threadIdx.x < 32) {
    float t = threadIdx.x < (blockDim.x >> 5) ? part[threadIdx.x] : identity;
    t = warp_reduce(t, op);
    if (threadIdx.x == 0) part[0] = t;
  }
  __syncthreads();
  const float r = part[0];
  __syncthreads();
  return r;
}
__device__ __forceinline__ float block_sum(float v, float* part) { return block_reduce(v, part, 0.0f, AddOp{}); }
__device__ __forceinline__ float block_max(float v, float* part) { return block_reduce(v, part, -INFINITY, MaxOp{}); }

// Programmatic dependent launch (Hopper): a kernel launched with the
// programmatic-serialization attribute may start while its predecessor
// finishes; it must call pdl_wait() before touching anything an earlier
// kernel wrote (or reads) — after it, every earlier kernel has completed and
// its writes are visible. pdl_launch_dependents() lets the next kernel be
// scheduled (it still waits in its own pdl_wait). No-ops before sm_90 and
// for kernels launched without the attribute.
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/// RMSNorm of one element (CPU norm.cpp's formula): inv = 1 / rms of the row.
__device__ __forceinline__ float norm_elt(float x, float inv, float w, bool plus_one) {
  return plus_one ? x * inv * (1.0f + w) : w * (x * inv);
}

/// Gated activation act(x) * u (mlp.cpp's formulas). act: 0 silu, 1 gelu
/// (tanh), 2 gelu (erf).
__device__ __forceinline__ float gated(float x, float u, int act) {
  if (act == 0) return x / (1.0f + expf(-x)) * u;
  if (act == 1) return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x))) * u;
  return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f)) * u;
}

/// A segment of a pass on the device: its cache (per layer K then V, each
/// [cap, kvd]), the cache length before the pass, its batch rows.
struct SegDesc {
  void* base;
  int cap, start, row0, n_tok;
};

/// log-softmax score of one row (score_token semantics) and its argmax.
struct ScoreOut {
  double logprob;
  int argmax;
  int pad;
};

// out[i] = T(in[i]).
template <class T>
__global__ void convert(const float* in, T* out, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    out[i] = from_f<T>(in[i]);
}

// out[i] = T(N(0, std^2)) from a counter-based hash of (seed, i) (Box-Muller).
template <class T>
__global__ void fill_normal(T* out, size_t n, uint64_t seed, float stdev) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + i * 0xD1B54A32D192ED03ull + 1;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const float u1 = (float(uint32_t(z >> 40)) + 1.0f) * (1.0f / 16777217.0f);  // (0, 1]
    const float u2 = float(uint32_t(z) & 0xFFFFFFu) * (1.0f / 16777216.0f);
    out[i] = from_f<T>(stdev * sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2));
  }
}

static __global__ void fill_const(float* out, size_t n, float v) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    out[i] = v;
}

// x [n_rows, d] = table[ids[r]] * scale. Grid: n_rows.
template <class T>
__global__ void embed(const T* table, const int* ids, int d, float scale, float* x) {
  pdl_wait();
  pdl_launch_dependents();
  const size_t r = blockIdx.x;
  const T* e = table + size_t(ids[r]) * d;
  for (int i = threadIdx.x; i < d; i += blockDim.x) x[r * d + i] = to_f(e[i]) * scale;
}

// out [rows, d] = rmsnorm(x[map ? map[r] : r]) (CPU norm.cpp's formula).
// Grid: rows; block 256.
template <class T>
__global__ void rms_norm(const float* x, const int* map, int d, const float* w, float eps,
                         bool plus_one, T* out) {
  pdl_wait();
  pdl_launch_dependents();
  const size_t r = blockIdx.x;
  const float* xr = x + size_t(map ? map[r] : r) * d;
  float ss = 0;
  for (int i = threadIdx.x; i < d; i += blockDim.x) ss += xr[i] * xr[i];
  __shared__ float part[32];
  const float inv = 1.0f / sqrtf(block_sum(ss, part) / float(d) + eps);
  T* o = out + r * d;
  for (int i = threadIdx.x; i < d; i += blockDim.x) o[i] = from_f<T>(norm_elt(xr[i], inv, w[i], plus_one));
}

// y [n_rows, cols] += b. Grid: (column blocks, row blocks).
static __global__ void bias_add(float* y, const float* b, int n_rows, int cols) {
  pdl_wait();
  pdl_launch_dependents();
  for (size_t r = blockIdx.y; r < size_t(n_rows); r += gridDim.y)
    for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += gridDim.x * blockDim.x)
      y[r * cols + c] += b[c];
}

// RoPE (rotate_half) on the q and k parts of qkv [n_rows, qd + 2 kvd] in
// place, then the row's k and v into its segment's cache at its position.
// cos/sin of the fp32 angle pos * inv_freq are taken in double and rounded,
// as the CPU engine. Thread t handles frequency t % half of heads
// t / half, t / half + stride, ... Grid: n_rows; block 128.
template <class KV>
__global__ void rope_and_cache(float* qkv, const int* pos, const int* rowseg, const SegDesc* segs,
                               int layer, int n_head, int n_kv, int hd, const float* inv_freq) {
  pdl_wait();
  pdl_launch_dependents();
  const size_t r = blockIdx.x;
  const int qd = n_head * hd, kvd = n_kv * hd, half = hd / 2;
  float* row = qkv + r * size_t(qd + 2 * kvd);
  const int p = pos[r];
  const SegDesc sd = segs[rowseg[r]];
  KV* kc = static_cast<KV*>(sd.base) + (size_t(layer) * 2 * sd.cap + p) * kvd;
  KV* vc = kc + size_t(sd.cap) * kvd;
  const int lanes = max(1, int(blockDim.x) / half * half);  // threads in use: whole frequency sets
  if (int(threadIdx.x) < lanes) {
    const int i = threadIdx.x % half, h0 = threadIdx.x / half, hstep = lanes / half;
    const float angle = float(p) * inv_freq[i];
    const float cs = float(cos(double(angle))), sn = float(sin(double(angle)));
    for (int h = h0; h < n_head + n_kv; h += hstep) {
      float* v = row + h * hd;  // q heads, then k heads (contiguous)
      const float a = v[i], b = v[i + half];
      const float ra = a * cs - b * sn, rb = b * cs + a * sn;
      v[i] = ra;
      v[i + half] = rb;
      if (h >= n_head) {
        kc[(h - n_head) * hd + i] = from_f<KV>(ra);
        kc[(h - n_head) * hd + i + half] = from_f<KV>(rb);
      }
    }
  }
  const float* vr = row + qd + kvd;
  for (int j = threadIdx.x; j < kvd; j += blockDim.x) vc[j] = from_f<KV>(vr[j]);
}

// The end of a GEMV block: each thread holds partial sums acc[r][b] of rows
// r_base + r (r < R) for inputs b < N; the block (<= 8 warps) sums them per
// row and writes y[b * ldy + row0 + row] = sum (+ beta * y) (+ bias[row])
// for rows < out.
template <int R, int N, class Y>
__device__ __forceinline__ void gemv_store(float (&acc)[R][N], int r_base, int out, Y* y, int ldy, int row0,
                                           const float* bias, float beta) {
  __shared__ float red[8][R * N];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, n_warps = blockDim.x >> 5;
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int b = 0; b < N; ++b) {
      const float v = warp_sum(acc[r][b]);
      if (lane == 0) red[warp][r * N + b] = v;
    }
  __syncthreads();
  if (threadIdx.x < R * N) {
    const int r = threadIdx.x / N, b = threadIdx.x % N, row = r_base + r;
    float v = 0;
    for (int w = 0; w < n_warps; ++w) v += red[w][threadIdx.x];
    if (row < out) {
      Y* dst = y + size_t(b) * ldy + row0 + row;
      if (beta != 0.0f) v = v + beta * to_f(*dst);
      if (bias) v = v + bias[row];
      *dst = from_f<Y>(v);
    }
  }
}

// y [N, out] (fp32 or T) = x [N, in] (T) W^T (T, [out, in]) + beta * y for
// decode steps (N <= 4): a block of 256 threads per R consecutive rows;
// thread t takes the 16-byte chunks t, t + 256, ... of each of them, with
// U x R loads issued together (8 rows x 4096 bf16 in one trip: 64 KiB per
// block in flight), fp32 accumulation, then the block sums each row. The
// first trip's weights are requested before pdl_wait (weights never depend
// on earlier kernels). in % 8 == 0. Grid: ceil(out / R); block 256.
// R x U chosen on the H100 (1B bf16 decode, ms/token, each pair measured
// in one run): 8 x 2 1.23 vs 4 x 4 1.31 and 2 x 8 1.58; later 8 x 2 1.20
// vs 16 x 1 1.23 and 8 x 4 1.41 (bench/RESULTS.md).
template <class T, int N, class Y, int R = 8, int U = 2>
__global__ void __launch_bounds__(256) gemv(const T* __restrict__ W, const T* __restrict__ x, Y* y, int out,
                                            int in, float beta) {
  constexpr int E = 16 / sizeof(T);  // elements per 16-byte chunk
  const int row0 = blockIdx.x * R, n_ch = in / E;
  const uint4* wr[R];
#pragma unroll
  for (int r = 0; r < R; ++r) wr[r] = reinterpret_cast<const uint4*>(W + size_t(min(row0 + r, out - 1)) * in);
  float acc[R][N];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int b = 0; b < N; ++b) acc[r][b] = 0;
  uint4 wv[U][R];
  auto load = [&](int ch) {
#pragma unroll
    for (int u = 0; u < U; ++u)
      if (ch + u * 256 < n_ch) {
#pragma unroll
        for (int r = 0; r < R; ++r) wv[u][r] = __ldg(wr[r] + ch + u * 256);
      }
  };
  int ch = threadIdx.x;
  load(ch);
  pdl_wait();
  pdl_launch_dependents();
  for (;;) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int c = ch + u * 256;
      if (c >= n_ch) break;
#pragma unroll
      for (int b = 0; b < N; ++b) {
        const uint4 xv = __ldg(reinterpret_cast<const uint4*>(x + size_t(b) * in) + c);
        const T* xe = reinterpret_cast<const T*>(&xv);
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const T* we = reinterpret_cast<const T*>(&wv[u][r]);
#pragma unroll
          for (int e = 0; e < E; ++e) acc[r][b] = fmaf(to_f(we[e]), to_f(xe[e]), acc[r][b]);
        }
      }
    }
    ch += U * 256;
    if (ch >= n_ch) break;
    load(ch);
  }
  gemv_store<R, N>(acc, row0, out, y, out, 0, nullptr, beta);
}

// out [n_rows, ff] = act(gate) * up from gu [n_rows, 2 ff] (gate | up; fp32,
// or T when the GEMM wrote the engine dtype as transformers does), the
// CPU engine's formulas (mlp.cpp). act: 0 silu, 1 gelu (tanh), 2 gelu (erf).
// Grid: (column blocks, row blocks).
template <class T, class G>
__global__ void gated_act(const G* gu, int n_rows, int ff, int act, T* out) {
  pdl_wait();
  pdl_launch_dependents();
  for (size_t r = blockIdx.y; r < size_t(n_rows); r += gridDim.y)
  for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < ff; c += gridDim.x * blockDim.x) {
    const G* g = gu + r * 2 * ff;
    out[r * ff + c] = from_f<T>(gated(to_f(g[c]), to_f(g[ff + c]), act));
  }
}

/// Running log-sum-exp statistics of a stretch of logits: the maximum, the
/// first index holding it, sum of exp(logit - max) (double).
struct SoftmaxStats {
  float max;
  int argmax;
  double sum;
};

/// Merges b into a (first maximum wins ties).
__device__ __forceinline__ SoftmaxStats merge_stats(SoftmaxStats a, SoftmaxStats b) {
  const float mx = fmaxf(a.max, b.max);
  SoftmaxStats o;
  o.sum = (a.max == -INFINITY ? 0.0 : a.sum * double(expf(a.max - mx))) +
          (b.max == -INFINITY ? 0.0 : b.sum * double(expf(b.max - mx)));
  o.argmax = (b.max > a.max || (b.max == a.max && b.argmax < a.argmax)) ? b.argmax : a.argmax;
  o.max = mx;
  return o;
}

/// The statistics merged over the warp (every lane gets them).
__device__ __forceinline__ SoftmaxStats warp_merge_stats(SoftmaxStats st) {
  for (int o = 16; o > 0; o >>= 1) {
    SoftmaxStats other;
    other.max = __shfl_xor_sync(0xffffffffu, st.max, o);
    other.argmax = __shfl_xor_sync(0xffffffffu, st.argmax, o);
    other.sum = __shfl_xor_sync(0xffffffffu, st.sum, o);
    st = merge_stats(st, other);
  }
  return st;
}

/// Statistics of lg[i0, i1) over the block (thread 0 gets them): one pass
/// per thread with a running maximum (its sum rescaled when it grows).
static __device__ SoftmaxStats block_softmax_stats(const float* lg, int i0, int i1) {
  SoftmaxStats st{-INFINITY, INT_MAX, 0.0};
  for (int i = i0 + threadIdx.x; i < i1; i += blockDim.x) {
    const float v = lg[i];
    if (v > st.max) {
      st.sum = st.sum * double(expf(st.max - v)) + 1.0;
      st.max = v;
      st.argmax = i;
    } else {
      st.sum += double(expf(v - st.max));
      if (v == st.max && i < st.argmax) st.argmax = i;
    }
  }
  st = warp_merge_stats(st);
  __shared__ SoftmaxStats warps[32];
  if ((threadIdx.x & 31) == 0) warps[threadIdx.x >> 5] = st;
  __syncthreads();
  if (threadIdx.x == 0)
    for (int w = 1; w < int(blockDim.x >> 5); ++w) st = merge_stats(st, warps[w]);
  return st;
}

/// The score of a row from its statistics (score_token semantics).
__device__ __forceinline__ ScoreOut finish_score(const float* lg, const int* target, SoftmaxStats st) {
  const int am = st.argmax == INT_MAX ? 0 : st.argmax;
  return {target ? double(lg[*target]) - double(st.max) - log(st.sum) : 0.0, am, 0};
}

// For each logits row [V]: argmax (first maximum) and, with targets,
// log-softmax of the target: logit - max - log(sum exp(logit - max)).
// Grid: rows; block 1024.
static __global__ void score_rows(const float* logits, int V, const int* targets, ScoreOut* out) {
  pdl_wait();
  pdl_launch_dependents();
  const size_t r = blockIdx.x;
  const SoftmaxStats st = block_softmax_stats(logits + r * V, 0, V);
  if (threadIdx.x == 0) out[r] = finish_score(logits + r * V, targets ? targets + r : nullptr, st);
}

// A few rows (decode steps): the statistics of stretch blockIdx.y of `chunk`
// logits of row blockIdx.x into parts [rows, gridDim.y]. Grid: (rows,
// stretches); block 256.
static __global__ void score_parts(const float* logits, int V, int chunk, SoftmaxStats* parts) {
  pdl_wait();
  pdl_launch_dependents();
  const size_t r = blockIdx.x;
  const int i0 = blockIdx.y * chunk;
  const SoftmaxStats st = block_softmax_stats(logits + r * V, i0, min(V, i0 + chunk));
  if (threadIdx.x == 0) parts[r * gridDim.y + blockIdx.y] = st;
}

// Merges a row's n_parts statistics (lane l takes parts l, l + 32, ...,
// then the warp combines them) and scores it. Grid: rows; block 32.
static __global__ void score_merge(const float* logits, int V, const SoftmaxStats* parts, int n_parts,
                                   const int* targets, ScoreOut* out) {
  pdl_wait();
  pdl_launch_dependents();
  const size_t r = blockIdx.x;
  SoftmaxStats st{-INFINITY, INT_MAX, 0.0};
  for (int k = threadIdx.x; k < n_parts; k += 32) st = merge_stats(st, parts[r * n_parts + k]);
  st = warp_merge_stats(st);
  if (threadIdx.x == 0) out[r] = finish_score(logits + r * V, targets ? targets + r : nullptr, st);
}

}  // namespace qsweep::model::cuda::kernels
