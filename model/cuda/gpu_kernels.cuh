#pragma once
// The GPU engine's kernels (device code, included by gpu_transformer.cu only).
// Shapes are row-major; "T" is the engine dtype (float, __nv_bfloat16,
// __half), arithmetic is fp32 unless said otherwise.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>

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

__global__ void fill_const(float* out, size_t n, float v) {
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
__global__ void bias_add(float* y, const float* b, int n_rows, int cols) {
  for (size_t r = blockIdx.y; r < size_t(n_rows); r += gridDim.y)
    for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += gridDim.x * blockDim.x)
      y[r * cols + c] += b[c];
}

// RoPE (rotate_half) on the q and k parts of qkv [n_rows, qd + 2 kvd] in
// place, then the row's k and v into its segment's cache at its position.
// cos/sin of the fp32 angle pos * inv_freq are taken in double and rounded,
// as the CPU engine. Grid: n_rows; block >= 32.
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
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    const float angle = float(p) * inv_freq[i];
    const float cs = float(cos(double(angle))), sn = float(sin(double(angle)));
    for (int h = 0; h < n_head + n_kv; ++h) {
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

constexpr int kAttWarps = 4, kAttRowsPerWarp = 4, kAttQTile = kAttWarps * kAttRowsPerWarp, kAttKTile = 32;

/// Dynamic shared memory of attention<NPL>: q tile, padded k tile, v tile.
constexpr size_t attention_smem(int hd) {
  return sizeof(float) * (size_t(kAttQTile) * hd + size_t(kAttKTile) * (hd + 4) + size_t(kAttKTile) * hd);
}

// Causal (optionally sliding-window) attention of one tile of up to 16
// queries of one segment and one head over the segment's cache, online
// softmax over key tiles of 32 (no score matrix). head_dim hd <= 32 * NPL
// (shared-memory rows padded with zeros to HD = 32 * NPL).
// Each warp owns 4 query rows; lane j scores key kt + j for all 4 rows
// (dot products in fp32, then * scale as the CPU engine), and owns output
// dims lane + 32 k. out [n_rows, n_head * hd] in the engine dtype.
// Grid: (tiles, n_head); block 128.
template <int NPL, class KV, class OUT>
__global__ void __launch_bounds__(128) attention(const float* qkv, int qkv_stride, const SegDesc* segs,
                                                 const int2* tiles, int layer, int group, int hd, int kvd,
                                                 float scale, int window, OUT* out, int out_stride) {
  constexpr int HD = NPL * 32;
  extern __shared__ float4 smem4[];
  float* sq = reinterpret_cast<float*>(smem4);  // [16][HD]
  float* sk = sq + kAttQTile * HD;              // [32][HD + 4]
  float* sv = sk + kAttKTile * (HD + 4);        // [32][HD]
  const int2 tile = tiles[blockIdx.x];
  const SegDesc sd = segs[tile.x];
  const int h = blockIdx.y, hk = h / group, i0 = tile.y;
  const int nq = min(kAttQTile, sd.n_tok - i0);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int idx = threadIdx.x; idx < kAttQTile * HD; idx += blockDim.x) {
    const int r = idx / HD, c = idx % HD;
    sq[idx] = r < nq && c < hd ? qkv[size_t(sd.row0 + i0 + r) * qkv_stride + h * hd + c] : 0.0f;
  }
  const KV* K = static_cast<const KV*>(sd.base) + size_t(layer) * 2 * sd.cap * kvd + hk * hd;
  const KV* V = K + size_t(sd.cap) * kvd;
  const int q0 = sd.start + i0;  // position of the tile's first query
  const int kend = q0 + nq;      // keys [kbeg, kend)
  int kbeg = window > 0 ? max(0, q0 - window + 1) : 0;
  kbeg -= kbeg % kAttKTile;
  float m[kAttRowsPerWarp], l[kAttRowsPerWarp], acc[kAttRowsPerWarp][NPL];
#pragma unroll
  for (int r = 0; r < kAttRowsPerWarp; ++r) {
    m[r] = -INFINITY;
    l[r] = 0;
#pragma unroll
    for (int k = 0; k < NPL; ++k) acc[r][k] = 0;
  }
  for (int kt = kbeg; kt < kend; kt += kAttKTile) {
    __syncthreads();  // the previous tile's readers are done (and sq is written)
    for (int idx = threadIdx.x; idx < kAttKTile * HD; idx += blockDim.x) {
      const int j = idx / HD, c = idx % HD, key = kt + j;
      float kv = 0, vv = 0;
      if (key < kend && c < hd) {
        kv = to_f(K[size_t(key) * kvd + c]);
        vv = to_f(V[size_t(key) * kvd + c]);
      }
      sk[j * (HD + 4) + c] = kv;
      sv[j * HD + c] = vv;
    }
    __syncthreads();
    const int key = kt + lane;
    float s[kAttRowsPerWarp] = {0, 0, 0, 0};
    {
      const float4* kr = reinterpret_cast<const float4*>(sk + lane * (HD + 4));
      const float4* qr = reinterpret_cast<const float4*>(sq + warp * kAttRowsPerWarp * HD);
#pragma unroll 4
      for (int c = 0; c < HD / 4; ++c) {
        const float4 kk = kr[c];
#pragma unroll
        for (int r = 0; r < kAttRowsPerWarp; ++r) {
          const float4 a = qr[r * (HD / 4) + c];
          s[r] = fmaf(a.x, kk.x, s[r]);
          s[r] = fmaf(a.y, kk.y, s[r]);
          s[r] = fmaf(a.z, kk.z, s[r]);
          s[r] = fmaf(a.w, kk.w, s[r]);
        }
      }
    }
    float p[kAttRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kAttRowsPerWarp; ++r) {
      p[r] = 0;
      const int ri = warp * kAttRowsPerWarp + r;
      if (ri >= nq) continue;  // warp-uniform
      const int qpos = q0 + ri;
      const bool ok = key < kend && key <= qpos && (window <= 0 || key > qpos - window);
      const float sc = ok ? s[r] * scale : -INFINITY;
      const float tmax = warp_max(sc);
      if (tmax == -INFINITY) continue;  // warp-uniform: no live key in this tile
      const float mnew = fmaxf(m[r], tmax);
      const float corr = expf(m[r] - mnew);
      p[r] = ok ? expf(sc - mnew) : 0.0f;
      l[r] = l[r] * corr + warp_sum(p[r]);
#pragma unroll
      for (int k = 0; k < NPL; ++k) acc[r][k] *= corr;
      m[r] = mnew;
    }
#pragma unroll 4
    for (int j = 0; j < kAttKTile; ++j) {
      float v[NPL];
#pragma unroll
      for (int k = 0; k < NPL; ++k) v[k] = sv[j * HD + lane + 32 * k];
#pragma unroll
      for (int r = 0; r < kAttRowsPerWarp; ++r) {
        const float pj = __shfl_sync(0xffffffffu, p[r], j);
#pragma unroll
        for (int k = 0; k < NPL; ++k) acc[r][k] = fmaf(pj, v[k], acc[r][k]);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kAttRowsPerWarp; ++r) {
    const int ri = warp * kAttRowsPerWarp + r;
    if (ri >= nq) continue;
    OUT* o = out + size_t(sd.row0 + i0 + ri) * out_stride + h * hd;
    const float inv = 1.0f / l[r];
#pragma unroll
    for (int k = 0; k < NPL; ++k)
      if (lane + 32 * k < hd) o[lane + 32 * k] = from_f<OUT>(acc[r][k] * inv);
  }
}

constexpr int kMmaWarps = 4, kMmaQTile = 16 * kMmaWarps, kMmaKTile = 64;

/// Dynamic shared memory of attention_mma with head_dim padded to HDP.
constexpr size_t attention_mma_smem(int hdp, int elt) {
  return size_t(elt) * (size_t(kMmaQTile) * hdp + 2 * size_t(kMmaKTile) * hdp)  // Q, K, V tiles
         + size_t(kMmaWarps) * (16 * kMmaKTile * 4                            // S per warp (fp32)
                                + 16 * kMmaKTile * elt                        // P per warp
                                + 16 * size_t(hdp) * 4);                      // O per warp (fp32)
}

// The same attention on tensor cores (bf16/fp16 engine dtypes, head_dim a
// multiple of 16, HDP = 16 * NF): FlashAttention's tiling with WMMA
// 16x16x16 fragments. A block holds 64 queries of one segment and head (16
// per warp) and walks key tiles of 64: S = Q K^T (T inputs, fp32
// accumulation), the online softmax in fp32 (a lane pair per query row),
// P = exp(S - m) rounded to T, O = O * corr + P V with O kept in fp32 in
// shared memory. Grid: (tiles of 64 queries, n_head); block 128.
template <int NF, class T>
__global__ void __launch_bounds__(128) attention_mma(const float* qkv, int qkv_stride, const SegDesc* segs,
                                                     const int2* tiles, int layer, int group, int hd, int kvd,
                                                     float scale, int window, T* out, int out_stride) {
  using namespace nvcuda;
  constexpr int HDP = NF * 16;
  extern __shared__ float4 smem4[];
  T* sQ = reinterpret_cast<T*>(smem4);  // [64][HDP]
  T* sK = sQ + kMmaQTile * HDP;         // [64][HDP]
  T* sV = sK + kMmaKTile * HDP;         // [64][HDP]
  float* sS = reinterpret_cast<float*>(sV + kMmaKTile * HDP);  // [warps][16][64]
  T* sP = reinterpret_cast<T*>(sS + kMmaWarps * 16 * kMmaKTile);  // [warps][16][64]
  float* sO = reinterpret_cast<float*>(sP + kMmaWarps * 16 * kMmaKTile);  // [warps][16][HDP]
  const int2 tile = tiles[blockIdx.x];
  const SegDesc sd = segs[tile.x];
  const int h = blockIdx.y, hk = h / group, i0 = tile.y;
  const int nq = min(kMmaQTile, sd.n_tok - i0);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int idx = threadIdx.x; idx < kMmaQTile * HDP; idx += blockDim.x) {
    const int r = idx / HDP, c = idx % HDP;
    sQ[idx] = from_f<T>(r < nq && c < hd ? qkv[size_t(sd.row0 + i0 + r) * qkv_stride + h * hd + c] : 0.0f);
  }
  float* wS = sS + warp * 16 * kMmaKTile;
  T* wP = sP + warp * 16 * kMmaKTile;
  float* wO = sO + warp * 16 * HDP;
  for (int idx = lane; idx < 16 * HDP; idx += 32) wO[idx] = 0.0f;
  const T* K = static_cast<const T*>(sd.base) + size_t(layer) * 2 * sd.cap * kvd + hk * hd;
  const T* V = K + size_t(sd.cap) * kvd;
  const int q0 = sd.start + i0;
  const int kend = q0 + nq;
  int kbeg = window > 0 ? max(0, q0 - window + 1) : 0;
  kbeg -= kbeg % kMmaKTile;
  const int r = lane >> 1, half = lane & 1;   // this lane's query row (of the warp's 16) and column half
  const int ri = warp * 16 + r;
  const int qpos = q0 + ri;
  const bool row_live = ri < nq;
  float m = -INFINITY, l = 0;
  const bool warp_live = warp * 16 < nq;
  for (int kt = kbeg; kt < kend; kt += kMmaKTile) {
    __syncthreads();
    for (int idx = threadIdx.x; idx < kMmaKTile * HDP; idx += blockDim.x) {
      const int j = idx / HDP, c = idx % HDP, key = kt + j;
      const bool ok = key < kend && c < hd;
      sK[idx] = ok ? K[size_t(key) * kvd + c] : from_f<T>(0.0f);
      sV[idx] = ok ? V[size_t(key) * kvd + c] : from_f<T>(0.0f);
    }
    __syncthreads();
    if (!warp_live) continue;
    // S [16, 64] = Q_w [16, HDP] K_tile^T.
#pragma unroll
    for (int j = 0; j < kMmaKTile / 16; ++j) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.0f);
#pragma unroll
      for (int f = 0; f < NF; ++f) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> b;
        wmma::load_matrix_sync(a, sQ + warp * 16 * HDP + f * 16, HDP);
        wmma::load_matrix_sync(b, sK + j * 16 * HDP + f * 16, HDP);
        wmma::mma_sync(acc, a, b, acc);
      }
      wmma::store_matrix_sync(wS + j * 16, acc, kMmaKTile, wmma::mem_row_major);
    }
    __syncwarp();
    // Online softmax of row r over this lane's 32 columns.
    float tmax = -INFINITY;
    float sc[32];
#pragma unroll
    for (int c = 0; c < 32; ++c) {
      const int col = half * 32 + c, key = kt + col;
      const bool ok = row_live && key < kend && key <= qpos && (window <= 0 || key > qpos - window);
      sc[c] = ok ? wS[r * kMmaKTile + col] * scale : -INFINITY;
      tmax = fmaxf(tmax, sc[c]);
    }
    tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
    const float mnew = fmaxf(m, tmax);
    const float corr = mnew == -INFINITY ? 1.0f : expf(m - mnew);
    float psum = 0;
#pragma unroll
    for (int c = 0; c < 32; ++c) {
      const float p = sc[c] == -INFINITY ? 0.0f : expf(sc[c] - mnew);
      const T pt = from_f<T>(p);
      psum += to_f(pt);  // the normalizer sums what P V multiplies
      wP[r * kMmaKTile + half * 32 + c] = pt;
    }
    psum += __shfl_xor_sync(0xffffffffu, psum, 1);
    l = l * corr + psum;
    m = mnew;
    for (int c = half * (HDP / 2); c < (half + 1) * (HDP / 2); ++c) wO[r * HDP + c] *= corr;
    __syncwarp();
    // O [16, HDP] += P [16, 64] V_tile [64, HDP].
#pragma unroll
    for (int f = 0; f < NF; ++f) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::load_matrix_sync(acc, wO + f * 16, HDP, wmma::mem_row_major);
#pragma unroll
      for (int j = 0; j < kMmaKTile / 16; ++j) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> b;
        wmma::load_matrix_sync(a, wP + j * 16, kMmaKTile);
        wmma::load_matrix_sync(b, sV + j * 16 * HDP + f * 16, HDP);
        wmma::mma_sync(acc, a, b, acc);
      }
      wmma::store_matrix_sync(wO + f * 16, acc, HDP, wmma::mem_row_major);
    }
    __syncwarp();
  }
  if (!row_live) return;
  T* o = out + size_t(sd.row0 + i0 + ri) * out_stride + h * hd;
  const float inv = 1.0f / l;
  for (int c = half; c < hd; c += 2) o[c] = from_f<T>(wO[r * HDP + c] * inv);
}

// out [n_rows, ff] = act(gate) * up from gu [n_rows, 2 ff] (gate | up), the
// CPU engine's formulas (mlp.cpp). act: 0 silu, 1 gelu (tanh), 2 gelu (erf).
// Grid: (column blocks, row blocks).
template <class T>
__global__ void gated_act(const float* gu, int n_rows, int ff, int act, T* out) {
  for (size_t r = blockIdx.y; r < size_t(n_rows); r += gridDim.y)
  for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < ff; c += gridDim.x * blockDim.x) {
    const float* g = gu + r * 2 * ff;
    const float x = g[c], u = g[ff + c];
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
// log-softmax of the target: logit - max - log(sum exp(logit - max)), the
// sum in double. Grid: rows; block 1024.
__global__ void score_rows(const float* logits, int V, const int* targets, ScoreOut* out) {
  const size_t r = blockIdx.x;
  const float* lg = logits + r * V;
  float best = -INFINITY;
  int bi = INT_MAX;
  for (int i = threadIdx.x; i < V; i += blockDim.x) {
    const float v = lg[i];
    if (v > best || (v == best && i < bi)) {
      best = v;
      bi = i;
    }
  }
  __shared__ float sbest[32];
  __shared__ int sidx[32];
  __shared__ double ssum[32];
  for (int o = 16; o > 0; o >>= 1) {
    const float ob = __shfl_xor_sync(0xffffffffu, best, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (ob > best || (ob == best && oi < bi)) {
      best = ob;
      bi = oi;
    }
  }
  const int w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  if ((threadIdx.x & 31) == 0) {
    sbest[w] = best;
    sidx[w] = bi;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int k = 1; k < nw; ++k)
      if (sbest[k] > sbest[0] || (sbest[k] == sbest[0] && sidx[k] < sidx[0])) {
        sbest[0] = sbest[k];
        sidx[0] = sidx[k];
      }
  }
  __syncthreads();
  const int am = sidx[0] == INT_MAX ? 0 : sidx[0];
  if (!targets) {
    if (threadIdx.x == 0) out[r] = {0.0, am, 0};
    return;
  }
  const float mx = lg[am];
  double sum = 0;
  for (int i = threadIdx.x; i < V; i += blockDim.x) sum += double(expf(lg[i] - mx));
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  if ((threadIdx.x & 31) == 0) ssum[w] = sum;
  __syncthreads();
  if (threadIdx.x == 0) {
    double s = 0;
    for (int k = 0; k < nw; ++k) s += ssum[k];
    out[r] = {double(lg[targets[r]]) - double(mx) - log(s), am, 0};
  }
}

}  // namespace qsweep::model::cuda::kernels
