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
constexpr int kMmaSLd = kMmaKTile + 4;  // fp32 S rows (padded: conflict-free row reads)
constexpr int kMmaPLd = kMmaKTile + 8;  // T P rows

/// Shared-memory row length of the Q/K/V tiles (T) for head_dim padded to
/// HDP: 16 bytes of padding stagger rows across banks.
constexpr int mma_ld(int hdp) { return hdp + 8; }

/// Dynamic shared memory of attention_mma with head_dim padded to HDP.
constexpr size_t attention_mma_smem(int hdp, int elt) {
  return size_t(elt) * (size_t(kMmaQTile) + 2 * size_t(kMmaKTile)) * mma_ld(hdp)  // Q, K, V tiles
         + size_t(kMmaWarps) * (16 * kMmaSLd * 4                                  // S per warp (fp32)
                                + 16 * kMmaPLd * elt                              // P per warp
                                + 16 * size_t(hdp + 4) * 4);                      // O per warp (fp32)
}

// The same attention on tensor cores (bf16/fp16 engine dtypes, head_dim a
// multiple of 16, HDP = 16 * NF): FlashAttention's tiling with WMMA
// 16x16x16 fragments. A block holds 64 queries of one segment and head (16
// per warp) and walks key tiles of 64: S = Q K^T (T inputs, fp32
// accumulation), the online softmax in fp32 (a row at a time, lanes over
// columns), P = exp(S - m) rounded to T, O = O * corr + P V with O kept in
// fp32 in shared memory. Grid: (tiles of 64 queries, n_head); block 128.
template <int NF, class T>
__global__ void __launch_bounds__(128) attention_mma(const float* qkv, int qkv_stride, const SegDesc* segs,
                                                     const int2* tiles, int layer, int group, int hd, int kvd,
                                                     float scale, int window, T* out, int out_stride) {
  using namespace nvcuda;
  constexpr int HDP = NF * 16, LD = mma_ld(HDP), OLD = HDP + 4, C8 = HDP / 8;
  extern __shared__ float4 smem4[];
  T* sQ = reinterpret_cast<T*>(smem4);  // [64][LD]
  T* sK = sQ + kMmaQTile * LD;          // [64][LD]
  T* sV = sK + kMmaKTile * LD;          // [64][LD]
  float* sS = reinterpret_cast<float*>(sV + kMmaKTile * LD);  // [warps][16][kMmaSLd]
  T* sP = reinterpret_cast<T*>(sS + kMmaWarps * 16 * kMmaSLd);  // [warps][16][kMmaPLd]
  float* sO = reinterpret_cast<float*>(sP + kMmaWarps * 16 * kMmaPLd);  // [warps][16][OLD]
  const int2 tile = tiles[blockIdx.x];
  const SegDesc sd = segs[tile.x];
  const int h = blockIdx.y, hk = h / group, i0 = tile.y;
  const int nq = min(kMmaQTile, sd.n_tok - i0);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  // Q tile: float4 loads (hd % 16 == 0 keeps rows 16-byte aligned).
  for (int idx = threadIdx.x; idx < kMmaQTile * (HDP / 4); idx += blockDim.x) {
    const int r = idx / (HDP / 4), c = (idx % (HDP / 4)) * 4;
    float4 v = make_float4(0, 0, 0, 0);
    if (r < nq && c < hd) v = *reinterpret_cast<const float4*>(qkv + size_t(sd.row0 + i0 + r) * qkv_stride + h * hd + c);
    T* q = sQ + r * LD + c;
    q[0] = from_f<T>(v.x);
    q[1] = from_f<T>(v.y);
    q[2] = from_f<T>(v.z);
    q[3] = from_f<T>(v.w);
  }
  float* wS = sS + warp * 16 * kMmaSLd;
  T* wP = sP + warp * 16 * kMmaPLd;
  float* wO = sO + warp * 16 * OLD;
  for (int idx = lane; idx < 16 * OLD; idx += 32) wO[idx] = 0.0f;
  const T* K = static_cast<const T*>(sd.base) + size_t(layer) * 2 * sd.cap * kvd + hk * hd;
  const T* V = K + size_t(sd.cap) * kvd;
  const int q0 = sd.start + i0;
  const int kend = q0 + nq;
  int kbeg = window > 0 ? max(0, q0 - window + 1) : 0;
  kbeg -= kbeg % kMmaKTile;
  float m[16], l[16];
#pragma unroll
  for (int rr = 0; rr < 16; ++rr) {
    m[rr] = -INFINITY;
    l[rr] = 0;
  }
  const bool warp_live = warp * 16 < nq;
  for (int kt = kbeg; kt < kend; kt += kMmaKTile) {
    __syncthreads();
    // K, V tiles: 16-byte loads of 8 elements.
    for (int idx = threadIdx.x; idx < kMmaKTile * C8; idx += blockDim.x) {
      const int j = idx / C8, c = (idx % C8) * 8, key = kt + j;
      uint4 kv = make_uint4(0, 0, 0, 0), vv = make_uint4(0, 0, 0, 0);
      if (key < kend && c < hd) {
        kv = *reinterpret_cast<const uint4*>(K + size_t(key) * kvd + c);
        vv = *reinterpret_cast<const uint4*>(V + size_t(key) * kvd + c);
      }
      *reinterpret_cast<uint4*>(sK + j * LD + c) = kv;
      *reinterpret_cast<uint4*>(sV + j * LD + c) = vv;
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
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> fb;
        wmma::load_matrix_sync(fa, sQ + warp * 16 * LD + f * 16, LD);
        wmma::load_matrix_sync(fb, sK + j * 16 * LD + f * 16, LD);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(wS + j * 16, acc, kMmaSLd, wmma::mem_row_major);
    }
    __syncwarp();
    // Online softmax, one row at a time; lane owns columns lane, lane + 32.
#pragma unroll
    for (int rr = 0; rr < 16; ++rr) {
      const int ri = warp * 16 + rr, qpos = q0 + ri;
      float v[2];
#pragma unroll
      for (int t = 0; t < 2; ++t) {
        const int col = lane + 32 * t, key = kt + col;
        const bool ok = ri < nq && key < kend && key <= qpos && (window <= 0 || key > qpos - window);
        v[t] = ok ? wS[rr * kMmaSLd + col] * scale : -INFINITY;
      }
      const float tmax = warp_max(fmaxf(v[0], v[1]));
      const float mnew = fmaxf(m[rr], tmax);
      const float corr = mnew == -INFINITY ? 1.0f : expf(m[rr] - mnew);
      float psum = 0;
#pragma unroll
      for (int t = 0; t < 2; ++t) {
        const T pt = from_f<T>(v[t] == -INFINITY ? 0.0f : expf(v[t] - mnew));
        psum += to_f(pt);  // the normalizer sums what P V multiplies
        wP[rr * kMmaPLd + lane + 32 * t] = pt;
      }
      l[rr] = l[rr] * corr + warp_sum(psum);
      m[rr] = mnew;
      for (int c = lane; c < HDP; c += 32) wO[rr * OLD + c] *= corr;
    }
    __syncwarp();
    // O [16, HDP] += P [16, 64] V_tile [64, HDP].
#pragma unroll
    for (int f = 0; f < NF; ++f) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::load_matrix_sync(acc, wO + f * 16, OLD, wmma::mem_row_major);
#pragma unroll
      for (int j = 0; j < kMmaKTile / 16; ++j) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> fb;
        wmma::load_matrix_sync(fa, wP + j * 16, kMmaPLd);
        wmma::load_matrix_sync(fb, sV + j * 16 * LD + f * 16, LD);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(wO + f * 16, acc, OLD, wmma::mem_row_major);
    }
    __syncwarp();
  }
  if (!warp_live) return;
#pragma unroll
  for (int rr = 0; rr < 16; ++rr) {
    const int ri = warp * 16 + rr;
    if (ri >= nq) break;
    T* o = out + size_t(sd.row0 + i0 + ri) * out_stride + h * hd;
    const float inv = 1.0f / l[rr];
    for (int c = lane; c < hd; c += 32) o[c] = from_f<T>(wO[rr * OLD + c] * inv);
  }
}

constexpr int kDecWarps = 8;

// Decode-step attention: every segment has one new token (its query is batch
// row sd.row0). A block per (segment, head); its 8 warps split the keys into
// contiguous chunks, each lane scores one key per step (fp32 dot product with
// the query from shared memory) and owns output dims lane + 32 k; the warps'
// (max, sum, output) are merged at the end. head_dim <= 32 * NPL.
// Grid: (segments, n_head); block 256.
template <int NPL, class KV, class OUT>
__global__ void __launch_bounds__(256) attention_decode(const float* qkv, int qkv_stride, const SegDesc* segs,
                                                        int layer, int group, int hd, int kvd, float scale, int window,
                                                        OUT* out, int out_stride) {
  constexpr int HD = NPL * 32;
  __shared__ float sq[HD];
  __shared__ float sm[kDecWarps], sl[kDecWarps];
  __shared__ float so[kDecWarps][HD];
  const SegDesc sd = segs[blockIdx.x];
  const int h = blockIdx.y, hk = h / group;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int c = threadIdx.x; c < HD; c += blockDim.x) sq[c] = c < hd ? qkv[size_t(sd.row0) * qkv_stride + h * hd + c] : 0.0f;
  __syncthreads();
  const KV* K = static_cast<const KV*>(sd.base) + size_t(layer) * 2 * sd.cap * kvd + hk * hd;
  const KV* V = K + size_t(sd.cap) * kvd;
  const int qpos = sd.start;  // the query's position; keys [kbeg, qpos]
  const int kbeg = window > 0 ? max(0, qpos - window + 1) : 0;
  const int n_keys = qpos + 1 - kbeg;
  const int per = (n_keys + kDecWarps - 1) / kDecWarps;
  const int k0 = kbeg + warp * per, k1 = min(qpos + 1, k0 + per);
  float m = -INFINITY, l = 0, acc[NPL];
#pragma unroll
  for (int k = 0; k < NPL; ++k) acc[k] = 0;
  for (int kt = k0; kt < k1; kt += 32) {
    const int key = kt + lane;
    float sc = -INFINITY;
    if (key < k1) {
      const KV* kr = K + size_t(key) * kvd;
      float dot = 0;
      constexpr int E = 16 / sizeof(KV);
      if (hd % E == 0) {  // 16-byte loads (rows are 16-byte aligned then)
        for (int c = 0; c < hd; c += E) {
          const uint4 kv = *reinterpret_cast<const uint4*>(kr + c);
          const KV* ke = reinterpret_cast<const KV*>(&kv);
#pragma unroll
          for (int e = 0; e < E; ++e) dot = fmaf(sq[c + e], to_f(ke[e]), dot);
        }
      } else {
        for (int c = 0; c < hd; ++c) dot = fmaf(sq[c], to_f(kr[c]), dot);
      }
      sc = dot * scale;
    }
    const float tmax = warp_max(sc);
    const float mnew = fmaxf(m, tmax);
    const float corr = expf(m - mnew);
    const float p = key < k1 ? expf(sc - mnew) : 0.0f;
    l = l * corr + warp_sum(p);
#pragma unroll
    for (int k = 0; k < NPL; ++k) acc[k] *= corr;
    const int nk = min(32, k1 - kt);
    for (int j = 0; j < nk; ++j) {
      const float pj = __shfl_sync(0xffffffffu, p, j);
      const KV* vr = V + size_t(kt + j) * kvd;
#pragma unroll
      for (int k = 0; k < NPL; ++k)
        if (lane + 32 * k < hd) acc[k] = fmaf(pj, to_f(vr[lane + 32 * k]), acc[k]);
    }
    m = mnew;
  }
  if (lane == 0) {
    sm[warp] = m;
    sl[warp] = l;
  }
#pragma unroll
  for (int k = 0; k < NPL; ++k) so[warp][lane + 32 * k] = acc[k];
  __syncthreads();
  if (warp != 0) return;
  float mt = -INFINITY;
  for (int w = 0; w < kDecWarps; ++w) mt = fmaxf(mt, sm[w]);
  float lt = 0, o[NPL];
#pragma unroll
  for (int k = 0; k < NPL; ++k) o[k] = 0;
  for (int w = 0; w < kDecWarps; ++w) {
    if (sm[w] == -INFINITY) continue;  // an empty chunk
    const float f = expf(sm[w] - mt);
    lt += sl[w] * f;
#pragma unroll
    for (int k = 0; k < NPL; ++k) o[k] += so[w][lane + 32 * k] * f;
  }
  OUT* dst = out + size_t(sd.row0) * out_stride + h * hd;
#pragma unroll
  for (int k = 0; k < NPL; ++k)
    if (lane + 32 * k < hd) dst[lane + 32 * k] = from_f<OUT>(o[k] / lt);
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
__global__ void score_rows(const float* logits, int V, const int* targets, ScoreOut* out) {
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
