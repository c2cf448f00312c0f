// Weight-only quantized Linears on the GPU (GPTQ, AWQ, W4A16/W8A16, FP8
// weights with unquantized activations): upload of a model::WeightOnlyLinear
// and its two kernels (see gpu_impl.h).
//
// Device layout of a part: the input columns reordered so that each group's
// columns are contiguous (GPTQ act-order's g_idx; the identity otherwise,
// then no permutation is stored), codes row-major in that order — int4 two
// per byte (column 2i in the low nibble), int8 / E4M3 one per byte —, and per
// (row, group) the pair {scale, zero} in fp32. The weight is
//   w[r, k] = scale[r, g] * (v(code) - zero[r, g])   (fp32, in this order),
// bit for bit quant/quantized_linear.h's dequantized value.
//
//   - decode steps (<= 4 rows): gemv_wo reads the codes (0.5 or 1 byte per
//     weight) and accumulates sum_g scale_g * sum_{k in g} (v - zero) x_k in
//     fp32 (x gathered into the stored column order first when the part has
//     a permutation);
//   - longer passes: dequantize_wo writes the weights in the engine dtype
//     (input column order: codes gathered through the inverse permutation)
//     into a scratch matrix and the dense GEMM runs
//     on it — the values (and so the results) of the dense upload of the
//     dequantized weights.
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <string>

#include "model/cuda/gpu_impl.h"
#include "model/cuda/gpu_kernels.cuh"
#include "model/cuda/gpu_util.cuh"

namespace qsweep::model::cuda {

namespace k = kernels;

namespace kernels {

// v(c) - zero for a code c: for integers (c + 2^23 as a float's bits) - (2^23
// + zero), exact for c, zero < 2^22 (zb = 2^23 + zero); for E4M3 bits the
// exact value (zero is 0).
template <bool FP8>
__device__ __forceinline__ float code_minus_zero(uint32_t c, float zb) {
  if constexpr (FP8) {
    return __half2float(__half(__nv_cvt_fp8_to_halfraw(__nv_fp8_storage_t(c), __NV_E4M3)));
  } else {
    return __uint_as_float(0x4B000000u | c) - zb;
  }
}

// Code e (0..7) of the 8 columns held by words[0] (4 bits) or words[0..1] (8 bits).
template <int BITS>
__device__ __forceinline__ uint32_t code_at(const uint32_t* words, int e) {
  if constexpr (BITS == 4)
    return (words[0] >> (4 * e)) & 0xFu;
  else
    return (words[e >> 2] >> (8 * (e & 3))) & 0xFFu;
}

// y[b, row0 + r] (ld ldy) = sum_j w[r, j] x[b, j] (+ beta y) (+ bias[r]) for
// b < N, r < out, with x in the stored column order (in columns, T) and w
// from the codes: each thread takes the 16-byte chunks (C = 128 / BITS
// columns, all in one group) t, t + blockDim, ... of R consecutive rows, all
// R loads and the rows' {scale, zero} issued together (the first before
// pdl_wait: weights never depend on earlier kernels; each next trip's while
// this one computes), per chunk sum (v - zero) x in
// fp32 then scale times that into the row's sum; the block sums each row.
// Grid: ceil(out / R); block: up to 256 threads (a multiple of 32).
template <class T, int BITS, bool FP8, int N, class Y, int R>
__global__ void __launch_bounds__(256)
    gemv_wo(const uint8_t* __restrict__ codes, const float2* __restrict__ sz, int n_groups, int group,
            const T* __restrict__ x, int out, int in, Y* y, int ldy, int row0, const float* __restrict__ bias,
            float beta) {
  constexpr int C = 128 / BITS;  // columns per 16-byte chunk
  const int r_base = blockIdx.x * R, n_ch = in / C;
  const size_t row_bytes = size_t(in) * BITS / 8;
  const uint4* wr[R];
  const float2* sr[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int rr = min(r_base + r, out - 1);
    wr[r] = reinterpret_cast<const uint4*>(codes + size_t(rr) * row_bytes);
    sr[r] = sz + size_t(rr) * n_groups;
  }
  float acc[R][N];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int b = 0; b < N; ++b) acc[r][b] = 0;
  uint4 wv[R], wn[R];  // this trip's chunks, the next trip's (in flight during this one's arithmetic)
  float2 sv[R], sn[R];
  auto load = [&](int ch, uint4* w, float2* sc) {
    const int g = ch * C / group;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      w[r] = __ldg(wr[r] + ch);
      sc[r] = __ldg(sr[r] + g);
    }
  };
  int ch = threadIdx.x;
  if (ch < n_ch) load(ch, wv, sv);
  pdl_wait();
  pdl_launch_dependents();
  while (ch < n_ch) {
    const int next = ch + blockDim.x;
    if (next < n_ch) load(next, wn, sn);
    float part[R][N];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int b = 0; b < N; ++b) part[r][b] = 0;
#pragma unroll
    for (int p = 0; p < C / 8; ++p) {  // 8 columns at a time
      float xf[N][8];
#pragma unroll
      for (int b = 0; b < N; ++b) {
        const T* xp = x + size_t(b) * in + size_t(ch) * C + p * 8;
#pragma unroll
        for (int h = 0; h < int(8 * sizeof(T) / 16); ++h) {
          const uint4 xv = __ldg(reinterpret_cast<const uint4*>(xp) + h);
          const T* xe = reinterpret_cast<const T*>(&xv);
#pragma unroll
          for (int e = 0; e < int(16 / sizeof(T)); ++e) xf[b][h * (16 / sizeof(T)) + e] = to_f(xe[e]);
        }
      }
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const uint32_t* words = reinterpret_cast<const uint32_t*>(&wv[r]) + p * BITS / 4;
        const float zb = 8388608.0f + sv[r].y;
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          const float v = code_minus_zero<FP8>(code_at<BITS>(words, e), zb);
#pragma unroll
          for (int b = 0; b < N; ++b) part[r][b] = fmaf(v, xf[b][e], part[r][b]);
        }
      }
    }
#pragma unroll
    for (int r = 0; r < R; ++r) {
#pragma unroll
      for (int b = 0; b < N; ++b) acc[r][b] = fmaf(sv[r].x, part[r][b], acc[r][b]);
      wv[r] = wn[r];
      sv[r] = sn[r];
    }
    ch = next;
  }
  gemv_store<R, N>(acc, r_base, out, y, ldy, row0, bias, beta);
}

// W[row0 + r, k] (ld in, engine dtype) = scale * (v(code) - zero) of input
// column k (stored column inv[k], or k without a permutation) for r < out,
// k < in: a thread per 8 columns of a row (one 4- or 8-byte code load and
// one {scale, zero} without a permutation; gathered codes with one), one
// 16-byte store per 8 values of 2 bytes. Grid: 1-D over out * in / 8.
template <class T, int BITS, bool FP8>
__global__ void dequantize_wo(const uint8_t* __restrict__ codes, const float2* __restrict__ sz, int n_groups,
                              int group, const int* __restrict__ inv, int out, int in, T* W, int row0) {
  pdl_wait();
  pdl_launch_dependents();
  const int n8 = in / 8;
  const size_t row_bytes = size_t(in) * BITS / 8;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < size_t(out) * n8;
       i += size_t(gridDim.x) * blockDim.x) {
    const int r = int(i / n8), k0 = int(i % n8) * 8;
    const uint8_t* cr = codes + size_t(r) * row_bytes;
    const float2* sr = sz + size_t(r) * n_groups;
    alignas(16) T v[8];
    if (!inv) {
      uint32_t words[2];
      if constexpr (BITS == 4) {
        words[0] = *reinterpret_cast<const uint32_t*>(cr + k0 / 2);
      } else {
        const uint2 w2 = *reinterpret_cast<const uint2*>(cr + k0);
        words[0] = w2.x;
        words[1] = w2.y;
      }
      const float2 sc = sr[k0 / group];  // 8 columns never straddle a group (group % 32 == 0)
#pragma unroll
      for (int e = 0; e < 8; ++e)
        v[e] = from_f<T>(sc.x * code_minus_zero<FP8>(code_at<BITS>(words, e), 8388608.0f + sc.y));
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const int j = inv[k0 + e];
        const uint32_t byte = cr[BITS == 4 ? j / 2 : j];
        const uint32_t c = BITS == 4 ? (byte >> (4 * (j & 1))) & 0xFu : byte;
        const float2 sc = sr[j / group];
        v[e] = from_f<T>(sc.x * code_minus_zero<FP8>(c, 8388608.0f + sc.y));
      }
    }
    uint4* dst = reinterpret_cast<uint4*>(W + size_t(row0 + r) * in + k0);
#pragma unroll
    for (int h = 0; h < int(8 * sizeof(T) / 16); ++h) dst[h] = reinterpret_cast<const uint4*>(v)[h];
  }
}

// xp[b, j] = x[b, perm[j]] for b < n, j < in. Grid: (column blocks, rows).
template <class T>
__global__ void gather_columns(const T* __restrict__ x, const int* __restrict__ perm, int n, int in, T* xp) {
  pdl_wait();
  pdl_launch_dependents();
  for (int b = blockIdx.y; b < n; b += gridDim.y)
    for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < in; j += gridDim.x * blockDim.x)
      xp[size_t(b) * in + j] = x[size_t(b) * in + perm[j]];
}

}  // namespace kernels

std::optional<WeightOnlyLayout> weight_only_layout(const WeightOnlyLinear::Data& d) {
  const int C = d.bits == 4 ? 32 : 16;  // columns per 16-byte chunk
  if ((d.bits != 4 && d.bits != 8) || (d.fp8 && d.bits != 8) || d.in % C != 0 || int(d.g_idx.size()) != d.in)
    return std::nullopt;
  std::vector<int> p(d.in);
  std::iota(p.begin(), p.end(), 0);
  std::stable_sort(p.begin(), p.end(), [&](int a, int b) { return d.g_idx[a] < d.g_idx[b]; });
  // Stored column j must belong to stored group j / G (G: the first group's
  // width, a whole number of chunks).
  int G = 0;
  while (G < d.in && d.g_idx[p[G]] == d.g_idx[p[0]]) ++G;
  if (G % C != 0 || d.g_idx[p[0]] != 0) return std::nullopt;
  for (int j = 0; j < d.in; ++j)
    if (d.g_idx[p[j]] != j / G || d.g_idx[p[j]] >= d.n_groups) return std::nullopt;
  for (float z : d.zero)  // 2^23 + zero must be exact (code_minus_zero)
    if (z != std::nearbyint(z) || std::fabs(z) >= 4194304.0f) return std::nullopt;
  bool identity = true;
  for (int j = 0; j < d.in && identity; ++j) identity = p[j] == j;
  WeightOnlyLayout L;
  if (!identity) L.perm = std::move(p);
  L.group = G;
  return L;
}

WeightOnlyPart GpuTransformer::Impl::upload_weight_only(const std::vector<const WeightOnlyLinear::Data*>& ds,
                                                         const WeightOnlyLayout& layout, int row0,
                                                         const std::string& what) {
  const WeightOnlyLinear::Data& d0 = *ds.at(0);
  WeightOnlyPart p;
  p.row0 = row0;
  p.in = d0.in;
  p.bits = d0.bits;
  p.fp8 = d0.fp8;
  p.group = layout.group;
  p.n_groups = d0.n_groups;
  for (const WeightOnlyLinear::Data* d : ds) {
    if (d->bits != p.bits || d->fp8 != p.fp8 || d->in != p.in || d->n_groups != p.n_groups ||
        int(d->codes.size()) != d->out * d->in || int(d->scale.size()) != d->out * d->n_groups ||
        int(d->zero.size()) != d->out * d->n_groups)
      throw std::runtime_error(what + ": inconsistent weight-only Linear data");
    p.out += d->out;
  }
  // Codes in the stored column order, packed; {scale, zero} interleaved.
  const std::vector<int>& perm = layout.perm;
  const size_t row_bytes = size_t(p.in) * p.bits / 8;
  std::vector<uint8_t> packed(row_bytes * p.out, 0);
  std::vector<float> sz;
  sz.reserve(size_t(p.out) * p.n_groups * 2);
  int r0 = 0;
  for (const WeightOnlyLinear::Data* d : ds) {
    for (int r = 0; r < d->out; ++r) {
      const uint8_t* src = d->codes.data() + size_t(r) * d->in;
      uint8_t* dst = packed.data() + size_t(r0 + r) * row_bytes;
      for (int j = 0; j < p.in; ++j) {
        const uint8_t c = src[perm.empty() ? j : perm[j]];
        if (p.bits == 4)
          dst[j / 2] |= uint8_t((c & 0xF) << (4 * (j & 1)));
        else
          dst[j] = c;
      }
    }
    for (size_t i = 0; i < d->scale.size(); ++i) {
      sz.push_back(d->scale[i]);
      sz.push_back(d->zero[i]);
    }
    r0 += d->out;
  }
  p.codes = static_cast<uint8_t*>(alloc_weight(packed.size(), what.c_str()));
  check(cudaMemcpy(p.codes, packed.data(), packed.size(), cudaMemcpyHostToDevice), "upload " + what);
  p.sz = upload_f32(sz.data(), sz.size(), what + " scales");
  if (!perm.empty()) {
    std::vector<int> inv(perm.size());
    for (size_t j = 0; j < perm.size(); ++j) inv[perm[j]] = int(j);
    p.perm = static_cast<int*>(alloc_weight(perm.size() * 4, what.c_str()));
    p.inv = static_cast<int*>(alloc_weight(inv.size() * 4, what.c_str()));
    check(cudaMemcpy(p.perm, perm.data(), perm.size() * 4, cudaMemcpyHostToDevice), "upload " + what);
    check(cudaMemcpy(p.inv, inv.data(), inv.size() * 4, cudaMemcpyHostToDevice), "upload " + what);
  }
  return p;
}

namespace {

/// Calls f(bits_tag, fp8_tag) with the part's code kind as template constants.
template <class F>
void with_codes(const WeightOnlyPart& p, F&& f) {
  if (p.bits == 4)
    f(std::integral_constant<int, 4>{}, std::false_type{});
  else if (p.fp8)
    f(std::integral_constant<int, 8>{}, std::true_type{});
  else
    f(std::integral_constant<int, 8>{}, std::false_type{});
}

}  // namespace

void weight_only_gemv(GpuTransformer::Impl& m, const DeviceMatrix& W, const void* x, void* y, int n, int out, int in,
                      float beta, bool y_engine, bool pdl) {
  auto s = static_cast<cudaStream_t>(m.stream);
  if (n < 1 || n > 4) throw std::runtime_error("weight_only_gemv: 1 to 4 rows");
  with_dtype(m.dtype, [&](auto tag) {
    using T = decltype(tag);
    const int* gathered = nullptr;  // the permutation x is gathered by now
    for (const WeightOnlyPart& p : W.wparts) {
      if (p.in != in) throw std::runtime_error("weight-only matrix: input width mismatch");
      const T* xs = static_cast<const T*>(x);
      if (p.perm) {
        T* xp = static_cast<T*>(m.ensure(m.wx, size_t(n) * in * sizeof(T), "gathered activations"));
        if (p.perm != gathered)
          launch(pdl, k::gather_columns<T>, row_grid(n, in), 256, 0, s, xs, p.perm, n, in, xp);
        gathered = p.perm;
        xs = xp;
      }
      with_codes(p, [&](auto bits_tag, auto fp8_tag) {
        constexpr int BITS = decltype(bits_tag)::value;
        constexpr bool FP8 = decltype(fp8_tag)::value;
        // 4 rows per block, up to 128 threads: on the H100 (1B-class model,
        // int4 g128, decode ms/token RTN / GPTQ act-order, one run) 0.871 /
        // 0.957 vs 0.898 / 0.985 (8 rows, 256), 0.888 / 0.963 (4, 64), 0.949
        // / 1.055 (4, 32), 1.016 / 1.106 (8, 32): the rest of a decode step
        // (norms, RoPE, attention, lm_head) dominates.
        constexpr int R = 4;
        const int n_ch = in / (128 / BITS);
        const int block = std::min(128, (n_ch + 31) / 32 * 32);
        const dim3 grid(unsigned((p.out + R - 1) / R));
        const float* bias = W.bias ? W.bias + p.row0 : nullptr;
        auto run = [&](auto* yy) {
          using Y = std::remove_pointer_t<decltype(yy)>;
          auto go = [&](auto kernel) {
            launch(pdl, kernel, grid, block, 0, s, p.codes, reinterpret_cast<const float2*>(p.sz), p.n_groups,
                   p.group, xs, p.out, in, yy, out, p.row0, bias, beta);
          };
          switch (n) {
            case 1: go(k::gemv_wo<T, BITS, FP8, 1, Y, R>); break;
            case 2: go(k::gemv_wo<T, BITS, FP8, 2, Y, R>); break;
            case 3: go(k::gemv_wo<T, BITS, FP8, 3, Y, R>); break;
            default: go(k::gemv_wo<T, BITS, FP8, 4, Y, R>); break;
          }
        };
        if (y_engine)
          run(static_cast<T*>(y));
        else
          run(static_cast<float*>(y));
      });
    }
  });
  check(cudaGetLastError(), "weight-only GEMV");
}

const void* dequantize_weight_only(GpuTransformer::Impl& m, const DeviceMatrix& W, int out, int in, bool pdl) {
  auto s = static_cast<cudaStream_t>(m.stream);
  void* scratch = m.ensure(m.wdq, size_t(out) * in * m.elt, "dequantized weights");
  with_dtype(m.dtype, [&](auto tag) {
    using T = decltype(tag);
    for (const WeightOnlyPart& p : W.wparts)
      with_codes(p, [&](auto bits_tag, auto fp8_tag) {
        constexpr int BITS = decltype(bits_tag)::value;
        constexpr bool FP8 = decltype(fp8_tag)::value;
        launch(pdl, k::dequantize_wo<T, BITS, FP8>, grid_for(size_t(p.out) * in / 8), 256, 0, s, p.codes,
               reinterpret_cast<const float2*>(p.sz), p.n_groups, p.group, p.inv, p.out, in,
               static_cast<T*>(scratch), p.row0);
      });
  });
  check(cudaGetLastError(), "weight-only dequantization");
  return scratch;
}

}  // namespace qsweep::model::cuda
