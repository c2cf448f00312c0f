#pragma once
// The GPU engine's kernels (device code; included by the engine's and the GPU
// Linear's translation units, so non-template kernels are static).
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

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
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
  const size_t r = blockIdx.x;
  const T* e = table + size_t(ids[r]) * d;
  for (int i = threadIdx.x; i < d; i += blockDim.x) x[r * d + i] = to_f(e[i]) * scale;
}

// out [rows, d] = rmsnorm(x[map ? map[r] : r]) (CPU norm.cpp's formula).
// Grid: rows; block 256.
template <class T>
__global__ void rms_norm(const float* x, const int* map, int d, const float* w, float eps,
                         bool plus_one, T* out) {
  const size_t r = blockIdx.x;
  const float* xr = x + size_t(map ? map[r] : r) * d;
  float ss = 0;
  for (int i = threadIdx.x; i < d; i += blockDim.x) ss += xr[i] * xr[i];
  __shared__ float part[32];
  ss = warp_sum(ss);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    float v = threadIdx.x < (blockDim.x >> 5) ? part[threadIdx.x] : 0.0f;
    v = warp_sum(v);
    if (threadIdx.x == 0) part[0] = v;
  }
  __syncthreads();
  const float inv = 1.0f / sqrtf(part[0] / float(d) + eps);
  T* o = out + r * d;
  for (int i = threadIdx.x; i < d; i += blockDim.x)
    o[i] = from_f<T>(plus_one ? xr[i] * inv * (1.0f + w[i]) : w[i] * (xr[i] * inv));
}

// y [n_rows, cols] += b. Grid: (column blocks, row blocks).
static __global__ void bias_add(float* y, const float* b, int n_rows, int cols) {
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

// y [n, out] (fp32 or T) = x [n, in] (T) W^T (T, [out, in]) + beta * y, for
// small n (decode steps): a warp per R output rows streams them with 16-byte
// loads (in % 8 == 0) and reduces; fp32 accumulation. Grid: out / (8 R)
// blocks; block 256.
template <class T, int N, class Y, int U = 4, int R = 1>
__global__ void __launch_bounds__(256) gemv(const T* __restrict__ W, const T* __restrict__ x, Y* y, int out,
                                            int in, float beta) {
  // Each warp owns R consecutive rows; each lane keeps U 16-byte loads of
  // every row in flight.
  const int row0 = (blockIdx.x * 8 + (threadIdx.x >> 5)) * R, lane = threadIdx.x & 31;
  if (row0 >= out) return;
  float acc[R][N];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int b = 0; b < N; ++b) acc[r][b] = 0;
  constexpr int E = 16 / sizeof(T);  // elements per 16-byte load
  const T* wr[R];
#pragma unroll
  for (int r = 0; r < R; ++r) wr[r] = W + size_t(min(row0 + r, out - 1)) * in;
  auto step = [&](int c, int u_count) {
    uint4 wv[R][U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      if (u < u_count) {
#pragma unroll
        for (int r = 0; r < R; ++r) wv[r][u] = __ldg(reinterpret_cast<const uint4*>(wr[r] + c + u * 32 * E));
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      if (u >= u_count) break;
#pragma unroll
      for (int b = 0; b < N; ++b) {
        const uint4 xv = __ldg(reinterpret_cast<const uint4*>(x + size_t(b) * in + c + u * 32 * E));
        const T* xe = reinterpret_cast<const T*>(&xv);
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const T* we = reinterpret_cast<const T*>(&wv[r][u]);
#pragma unroll
          for (int e = 0; e < E; ++e) acc[r][b] = fmaf(to_f(we[e]), to_f(xe[e]), acc[r][b]);
        }
      }
    }
  };
  int c = lane * E;
  for (; c + (U - 1) * 32 * E < in; c += U * 32 * E) step(c, U);
  for (; c < in; c += 32 * E) step(c, 1);
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int b = 0; b < N; ++b) {
      const float v = warp_sum(acc[r][b]);
      const int row = row0 + r;
      if (lane == 0 && row < out)
        y[size_t(b) * out + row] = from_f<Y>(beta == 0.0f ? v : v + beta * to_f(y[size_t(b) * out + row]));
    }
}

// out [n_rows, ff] = act(gate) * up from gu [n_rows, 2 ff] (gate | up; fp32,
// or T when the GEMM wrote the engine dtype as transformers does), the
// CPU engine's formulas (mlp.cpp). act: 0 silu, 1 gelu (tanh), 2 gelu (erf).
// Grid: (column blocks, row blocks).
template <class T, class G>
__global__ void gated_act(const G* gu, int n_rows, int ff, int act, T* out) {
  for (size_t r = blockIdx.y; r < size_t(n_rows); r += gridDim.y)
  for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < ff; c += gridDim.x * blockDim.x) {
    const G* g = gu + r * 2 * ff;
    const float x = to_f(g[c]), u = to_f(g[ff + c]);
    float y;
    if (act == 0)
      y = x / (1.0f + expf(-x)) * u;
    else if (act == 1)
      y = 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x))) * u;
    else
      y = 0.5f * x * (1.0f + erff(x * 0.7071067811865476f)) * u;
    out[r * ff + c] = from_f<T>(y);
  }
}

// For each logits row [V]: argmax (first maximum) and, with targets,
// log-softmax of the target: logit - max - log(sum exp(logit - max)), one
// pass with a running maximum (sums rescaled when it grows), partial sums
// in double. Grid: rows; block 1024.
static __global__ void score_rows(const float* logits, int V, const int* targets, ScoreOut* out) {
  const size_t r = blockIdx.x;
  const float* lg = logits + r * V;
  float best = -INFINITY;
  int bi = INT_MAX;
  double sum = 0;  // of exp(logit - best) over this thread's elements
  for (int i = threadIdx.x; i < V; i += blockDim.x) {
    const float v = lg[i];
    if (v > best) {
      sum = sum * double(expf(best - v)) + 1.0;
      best = v;
      bi = i;
    } else {
      sum += double(expf(v - best));
      if (v == best && i < bi) bi = i;
    }
  }
  __shared__ float sbest[32];
  __shared__ int sidx[32];
  __shared__ double ssum[32];
  const int w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  for (int o = 16; o > 0; o >>= 1) {
    const float ob = __shfl_xor_sync(0xffffffffu, best, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    const double os = __shfl_xor_sync(0xffffffffu, sum, o);
    const float mx = fmaxf(best, ob);
    sum = (best == -INFINITY ? 0.0 : sum * double(expf(best - mx))) + (ob == -INFINITY ? 0.0 : os * double(expf(ob - mx)));
    if (ob > best || (ob == best && oi < bi)) bi = oi;
    best = mx;
  }
  if ((threadIdx.x & 31) == 0) {
    sbest[w] = best;
    sidx[w] = bi;
    ssum[w] = sum;
  }
  __syncthreads();
  if (threadIdx.x != 0) return;
  float mx = sbest[0];
  int am = sidx[0];
  for (int k = 1; k < nw; ++k)
    if (sbest[k] > mx || (sbest[k] == mx && sidx[k] < am)) {
      mx = sbest[k];
      am = sidx[k];
    }
  double total = 0;
  for (int k = 0; k < nw; ++k)
    if (sbest[k] != -INFINITY) total += ssum[k] * double(expf(sbest[k] - mx));
  if (am == INT_MAX) am = 0;
  out[r] = {targets ? double(lg[targets[r]]) - double(mx) - log(total) : 0.0, am, 0};
}

}  // namespace qsweep::model::cuda::kernels
