#pragma once
// The GPU engine's attention: the kernels (fp32 tiles, WMMA tensor cores,
// split-key decode) and their launchers for a head size (template
// instantiations, shared-memory opt-in, which head sizes have a tensor-core
// variant). Included by gpu_transformer.cu and quant/cuda/layer_cuda.cu (the
// calibration passes, fp32 kernel).
#include <mma.h>

#include <mutex>
#include <set>
#include <type_traits>
#include <utility>

#include "model/cuda/gpu_kernels.cuh"
#include "model/cuda/gpu_util.cuh"

namespace qsweep::model::cuda {

namespace kernels {

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

constexpr int kDecWarps = 16;

// Decode-step attention: every segment has one new token (its query is batch
// row sd.row0). A block per (segment, head); its kDecWarps (16) warps split the keys into
// contiguous chunks, each lane scores one key per step (fp32 dot product with
// the query from shared memory) and owns output dims lane + 32 k; the warps'
// (max, sum, output) are merged at the end. head_dim <= 32 * NPL.
// Grid: (segments, n_head); block 512.
template <int NPL, class KV, class OUT>
__global__ void __launch_bounds__(kDecWarps * 32)
    attention_decode(const float* qkv, int qkv_stride, const SegDesc* segs, int layer, int group, int hd, int kvd,
                     float scale, int window, OUT* out, int out_stride) {
  constexpr int HD = NPL * 32;
  pdl_wait();
  pdl_launch_dependents();
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
#pragma unroll 8
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
#pragma unroll 8  // eight value rows requested together
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

}  // namespace kernels

namespace k = kernels;

/// Lets `kernel` use `smem` bytes of dynamic shared memory on the current
/// device, once per (kernel, device): the attribute is per device, and it is
/// set on a pass's first, uncaptured run (graphs are captured on the second).
template <class Kernel>
void allow_smem(Kernel* kernel, size_t smem) {
  static std::mutex mu;
  static std::set<std::pair<const void*, int>> done;
  int dev = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  std::lock_guard<std::mutex> lk(mu);
  const std::pair<const void*, int> key{reinterpret_cast<const void*>(kernel), dev};
  if (done.count(key)) return;
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)), "attention smem");
  done.insert(key);
}

/// pdl: launched as a programmatic dependent of the previous kernel.
template <class T>
void launch_attention_decode(int hd, dim3 grid, cudaStream_t s, bool pdl, const float* qkv, int stride,
                             const k::SegDesc* segs, int layer, int group, int kvd, float scale, int window, T* out,
                             int out_stride) {
  switch ((hd + 31) / 32) {
#define QS_DEC(N)                                                                                     \
  case N:                                                                                             \
    launch(pdl, k::attention_decode<N, T, T>, grid, k::kDecWarps * 32, 0, s, qkv, stride, segs, layer, \
           group, hd, kvd, scale, window, out, out_stride);                                           \
    break;
    QS_DEC(1) QS_DEC(2) QS_DEC(3) QS_DEC(4) QS_DEC(5) QS_DEC(6) QS_DEC(7) QS_DEC(8)
#undef QS_DEC
  }
}

template <int NPL, class KV, class OUT>
void launch_attention_t(dim3 grid, cudaStream_t s, const float* qkv, int stride, const k::SegDesc* segs,
                        const int2* tiles, int layer, int group, int hd, int kvd, float scale, int window,
                        OUT* out, int out_stride) {
  const size_t smem = k::attention_smem(NPL * 32);
  allow_smem(k::attention<NPL, KV, OUT>, smem);
  k::attention<NPL, KV, OUT><<<grid, 128, smem, s>>>(qkv, stride, segs, tiles, layer, group, hd, kvd, scale, window,
                                                      out, out_stride);
}

template <class T>
void launch_attention(int hd, dim3 grid, cudaStream_t s, const float* qkv, int stride, const k::SegDesc* segs,
                      const int2* tiles, int layer, int group, int kvd, float scale, int window, T* out,
                      int out_stride) {
  switch ((hd + 31) / 32) {
#define QS_ATT(N)                                                                                              \
  case N:                                                                                                      \
    launch_attention_t<N, T, T>(grid, s, qkv, stride, segs, tiles, layer, group, hd, kvd, scale, window, out, \
                                out_stride);                                                               \
    break;
    QS_ATT(1) QS_ATT(2) QS_ATT(3) QS_ATT(4) QS_ATT(5) QS_ATT(6) QS_ATT(7) QS_ATT(8)
#undef QS_ATT
  }
}

/// Head sizes with a tensor-core attention instantiation (16 * NF).
inline bool mma_head_dim(int hd) {
  if (hd % 16 != 0) return false;
  const int nf = hd / 16;
  return nf == 1 || nf == 2 || nf == 4 || nf == 5 || nf == 6 || nf == 8 || nf == 16;
}

template <int NF, class T>
void launch_attention_mma_t(dim3 grid, cudaStream_t s, const float* qkv, int stride, const k::SegDesc* segs,
                            const int2* tiles, int layer, int group, int hd, int kvd, float scale, int window, T* out,
                            int out_stride) {
  constexpr size_t smem = k::attention_mma_smem(NF * 16, int(sizeof(T)));
  allow_smem(k::attention_mma<NF, T>, smem);
  k::attention_mma<NF, T><<<grid, 128, smem, s>>>(qkv, stride, segs, tiles, layer, group, hd, kvd, scale, window,
                                                   out, out_stride);
}

template <class T>
void launch_attention_mma(int hd, dim3 grid, cudaStream_t s, const float* qkv, int stride, const k::SegDesc* segs,
                          const int2* tiles, int layer, int group, int kvd, float scale, int window, T* out,
                          int out_stride) {
  if constexpr (std::is_same_v<T, float>) {
    throw std::logic_error("attention_mma: no fp32 tensor-core path");
  } else {
    switch (hd / 16) {
#define QS_MMA(N)                                                                                                  \
  case N:                                                                                                          \
    launch_attention_mma_t<N, T>(grid, s, qkv, stride, segs, tiles, layer, group, hd, kvd, scale, window, out, \
                                 out_stride);                                                                    \
    break;
      QS_MMA(1) QS_MMA(2) QS_MMA(4) QS_MMA(5) QS_MMA(6) QS_MMA(8) QS_MMA(16)
#undef QS_MMA
    }
  }
}

}  // namespace qsweep::model::cuda
