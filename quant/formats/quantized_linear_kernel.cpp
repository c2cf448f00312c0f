#include "quant/formats/quantized_linear_kernel.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define QSWEEP_QK_AVX2 1
#endif
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#define QSWEEP_QK_VNNI 1
#endif
#if defined(__AVX512F__)
#define QSWEEP_QK_LUT 1
#endif

#include "quant/formats/activation_quant.h"
#include "quant/fp8.h"

namespace qsweep::quant {

namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

constexpr int kBlock = 32;  // fast int layout: codes in blocks of 32 along k
// int4 "lut" layout (AVX-512): chunks of 128 codes along k in 64 bytes, as 16
// dwords; nibble i (bits 4i..4i+3) of dword j holds the code of k = 16 i + j.
// vpermps reads the low 4 bits of each dword as an index into a 16-entry
// table, so one shift + one permute turns 16 codes into their dequantized
// values s_g * (c - z_g) (the table of the chunk's group).
constexpr int kChunk = 128;
// The lut GEMV/small-batch path serves n <= kLutMaxTokens tokens; larger n
// dequantize tiles and run Eigen.
constexpr int kLutMaxTokens = 16;

int round_up(int v, int m) { return (v + m - 1) / m * m; }

struct Fp8Table {
  float v[256];
  Fp8Table() {
    for (int i = 0; i < 256; ++i) v[i] = e4m3fn_to_f32(uint8_t(i));
  }
};
const Fp8Table& fp8_table() {
  static const Fp8Table t;
  return t;
}

#ifdef QSWEEP_QK_AVX2
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline int32_t hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}
#endif

/// sum_k x[k] * fp8(codes[k]) (table lookup), k in [0, n).
float fp8_dot(const float* x, const uint8_t* c, int n) {
  const float* t = fp8_table().v;
  int k = 0;
  float s = 0.0f;
#ifdef QSWEEP_QK_AVX2
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  for (; k + 16 <= n; k += 16) {
    const __m256i i0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c + k)));
    const __m256i i1 =
        _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c + k + 8)));
    a0 = _mm256_fmadd_ps(_mm256_i32gather_ps(t, i0, 4), _mm256_loadu_ps(x + k), a0);
    a1 = _mm256_fmadd_ps(_mm256_i32gather_ps(t, i1, 4), _mm256_loadu_ps(x + k + 8), a1);
  }
  s = hsum(_mm256_add_ps(a0, a1));
#endif
  for (; k < n; ++k) s += x[k] * t[c[k]];
  return s;
}

}  // namespace

struct QuantizedLinearKernel::Impl {
  KernelKind kind;
  int n_out = 0, k_in = 0, n_groups = 1, bits = 4;
  WeightType type = WeightType::kInt;
  ActQuant act = ActQuant::kNone;
  float input_scale = 0;
  std::vector<float> bias;
  std::vector<float> scale, zero;  // [N, n_groups] row-major
  // reference: codes [N, K] row-major, g_idx [K]
  std::vector<uint8_t> codes;
  std::vector<int32_t> g_idx;
  // fast weight-only int: columns permuted so that groups are contiguous and
  // each padded to a multiple of kBlock; seg_start[g] .. seg_start[g+1].
  bool direct = true;            // no permutation or padding: x used as is
  bool lut = false;              // 4-bit lut layout (segments padded to kChunk)
  int kp = 0;                    // padded K
  std::vector<int> src_col;      // [kp] source column of each padded position, -1: pad
  std::vector<int> seg_start;    // [n_groups + 1]
  std::vector<uint8_t> packed;   // 4-bit: [N, kp/2] (byte i of a block: k=i low, k=i+16 high;
                                 // lut: see kChunk); 8-bit: [N, kp]
  // fast W8A8: [N, k8] codes (VNNI: unsigned code, else signed code - 128)
  int k8 = 0;
  std::vector<uint8_t> codes8;

  // ---- reference ----
  void ref_forward(const float* x, float* y, int n) const;
  // ---- fast ----
  void fast_forward(const float* x, float* y, int n) const;
  void fast_int_weight_only(const float* x, float* y, int n) const;
  void fast_w8a8(const float* x, float* y, int n) const;
  void fast_fp8(const float* x, float* y, int n) const;
  float int_row_dot(int r, const float* xp, const float* xsum) const;
  int code_at(int r, int p) const;
  void lut_forward(const float* xp, float* y, int n) const;
  void dequant_row_padded(int r, float* dst) const;
  size_t bytes() const;
};

// ---------------------------------------------------------------------------
// construction

QuantizedLinearKernel::QuantizedLinearKernel(const QuantizedLinear& ql, KernelKind kind)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  const QuantizedWeight& w = ql.weight;
  const std::string L = "quantized Linear " + ql.prefix + ": ";
  m.kind = kind;
  m.n_out = int(w.codes.rows());
  m.k_in = int(w.codes.cols());
  m.n_groups = int(w.scale.cols());
  m.bits = ql.bits;
  m.type = ql.type;
  m.act = ql.act;
  m.input_scale = ql.input_scale;
  m.bias = ql.bias;
  const int N = m.n_out, K = m.k_in, G = m.n_groups;
  if (N <= 0 || K <= 0 || G <= 0 || w.scale.rows() != N || int(w.g_idx.size()) != K ||
      (ql.type == WeightType::kInt && (w.zero.rows() != N || w.zero.cols() != G)))
    throw std::runtime_error(L + "inconsistent codes/scale/zero/g_idx sizes");
  if (!m.bias.empty() && int(m.bias.size()) != N) throw std::runtime_error(L + "bias size");
  if (ql.type == WeightType::kInt ? (ql.bits != 4 && ql.bits != 8) : ql.bits != 8)
    throw std::runtime_error(L + "unsupported bit width");
  const int maxc = ql.type == WeightType::kInt ? (1 << ql.bits) - 1 : 255;
  if (w.codes.minCoeff() < 0 || w.codes.maxCoeff() > maxc)
    throw std::runtime_error(L + "a code is out of range");
  for (int32_t g : w.g_idx)
    if (g < 0 || g >= G) throw std::runtime_error(L + "g_idx out of range");
  if (ql.act == ActQuant::kInt8TokenDynamic &&
      (ql.type != WeightType::kInt || ql.bits != 8 || G != 1 || (w.zero.array() != 128.0f).any()))
    throw std::runtime_error(L + "int8 activations need symmetric int8 channel/tensor weights");
  if (ql.type == WeightType::kFloat8 && G != 1)
    throw std::runtime_error(L + "fp8 weights need channel/tensor scales (one scale column)");
  if ((ql.act == ActQuant::kFp8TokenDynamic || ql.act == ActQuant::kFp8TensorStatic) &&
      ql.type != WeightType::kFloat8)
    throw std::runtime_error(L + "fp8 activations need fp8 channel/tensor weights");
  if (ql.act == ActQuant::kFp8TensorStatic && !(ql.input_scale > 0 && std::isfinite(ql.input_scale)))
    throw std::runtime_error(L + "fp8 static activations need input_scale > 0");
  m.scale.resize(size_t(N) * G);
  m.zero.assign(size_t(N) * G, 0.0f);
  for (int r = 0; r < N; ++r)
    for (int g = 0; g < G; ++g) {
      m.scale[size_t(r) * G + g] = w.scale(r, g);
      if (ql.type == WeightType::kInt) m.zero[size_t(r) * G + g] = w.zero(r, g);
    }

  if (kind == KernelKind::kReference || ql.type == WeightType::kFloat8) {
    m.codes.resize(size_t(N) * K);
    codes_to_rows(w.codes, m.codes.data(), K, [](int c) { return c; });
    m.g_idx = w.g_idx;
    if (kind == KernelKind::kReference || ql.type == WeightType::kFloat8) return;
  }

  if (ql.act == ActQuant::kInt8TokenDynamic) {
    m.k8 = round_up(K, 64);
    m.codes8.assign(size_t(N) * m.k8, 0);
#ifdef QSWEEP_QK_VNNI
    codes_to_rows(w.codes, m.codes8.data(), m.k8, [](int c) { return c; });
#else
    codes_to_rows(w.codes, m.codes8.data(), m.k8, [](int c) { return uint8_t(int8_t(c - 128)); });
#endif
    return;
  }

  // weight-only int: group-contiguous, block-padded column order
  std::vector<int> order(K);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return w.g_idx[a] < w.g_idx[b]; });
  std::vector<int> count(G, 0);
  for (int32_t g : w.g_idx) ++count[g];
  int pad = kBlock;
#ifdef QSWEEP_QK_LUT
  if (ql.bits == 4) {
    // lut layout unless padding groups to 128 would cost > 1/8 more bytes
    // (small groups: the block-of-32 layout instead).
    long long p32 = 0, p128 = 0;
    for (int g = 0; g < G; ++g) p32 += round_up(count[g], kBlock), p128 += round_up(count[g], kChunk);
    if (p128 * 8 <= p32 * 9) m.lut = true, pad = kChunk;
  }
#endif
  m.seg_start.assign(G + 1, 0);
  for (int g = 0; g < G; ++g) m.seg_start[g + 1] = m.seg_start[g] + round_up(count[g], pad);
  m.kp = m.seg_start[G];
  m.src_col.assign(m.kp, -1);
  {
    int pos = 0;
    for (int g = 0; g < G; ++g) {
      int p = m.seg_start[g];
      for (int i = 0; i < count[g]; ++i) m.src_col[p++] = order[pos++];
    }
  }
  m.direct = m.kp == K;
  for (int p = 0; m.direct && p < K; ++p) m.direct = m.src_col[p] == p;
  const int row_bytes = ql.bits == 4 ? m.kp / 2 : m.kp;
  m.packed.assign(size_t(N) * row_bytes, 0);
  std::vector<uint8_t> rows(size_t(N) * K);  // the codes row-major (a cache-friendly read below)
  codes_to_rows(w.codes, rows.data(), K, [](int c) { return c; });
  for (int r = 0; r < N; ++r) {
    uint8_t* dst = m.packed.data() + size_t(r) * row_bytes;
    const uint8_t* src = rows.data() + size_t(r) * K;
    for (int p = 0; p < m.kp; ++p) {
      const int c = m.src_col[p] < 0 ? 0 : src[m.src_col[p]];
      if (ql.bits == 8) {
        dst[p] = uint8_t(c);
      } else if (m.lut) {
        const int q = p % kChunk, i = q / 16, j = q % 16;
        dst[(p / kChunk) * 64 + j * 4 + i / 2] |= uint8_t(i % 2 == 0 ? c : c << 4);
      } else {
        const int blk = p / kBlock, i = p % kBlock;
        uint8_t& b = dst[blk * 16 + (i & 15)];
        b |= uint8_t(i < 16 ? c : c << 4);
      }
    }
  }
}

QuantizedLinearKernel::~QuantizedLinearKernel() = default;
int QuantizedLinearKernel::in_features() const { return impl_->k_in; }
int QuantizedLinearKernel::out_features() const { return impl_->n_out; }
KernelKind QuantizedLinearKernel::kind() const { return impl_->kind; }
size_t QuantizedLinearKernel::weight_bytes() const { return impl_->bytes(); }

size_t QuantizedLinearKernel::Impl::bytes() const {
  return codes.size() + packed.size() + codes8.size() +
         sizeof(float) * (scale.size() + (type == WeightType::kInt ? zero.size() : 0) + bias.size());
}

void QuantizedLinearKernel::forward(const float* x, float* y, int n) const {
  if (n <= 0) return;
  if (impl_->kind == KernelKind::kReference)
    impl_->ref_forward(x, y, n);
  else
    impl_->fast_forward(x, y, n);
}

// ---------------------------------------------------------------------------
// reference kernel

void QuantizedLinearKernel::Impl::ref_forward(const float* x, float* y, int n) const {
  const int N = n_out, K = k_in, G = n_groups;
  const float* t8 = fp8_table().v;
  std::vector<int8_t> xi(K);
  std::vector<float> xf(K);
  for (int t = 0; t < n; ++t) {
    const float* xr = x + size_t(t) * K;
    float* yr = y + size_t(t) * N;
    float sx = 0;
    if (act == ActQuant::kInt8TokenDynamic) {
      sx = quantize_row_int8(xr, K, xi.data());
    } else if (act == ActQuant::kFp8TokenDynamic || act == ActQuant::kFp8TensorStatic) {
      std::vector<uint8_t> q(K);
      if (act == ActQuant::kFp8TokenDynamic) {
        sx = quantize_row_fp8_dynamic(xr, K, q.data());
      } else {
        sx = input_scale;
        quantize_row_fp8_static(xr, K, sx, q.data());
      }
      for (int k = 0; k < K; ++k) xf[k] = t8[q[k]];
    }
    tbb::parallel_for(tbb::blocked_range<int>(0, N, 16), [&](const tbb::blocked_range<int>& rg) {
      for (int r = rg.begin(); r < rg.end(); ++r) {
        const uint8_t* c = codes.data() + size_t(r) * K;
        const float* s = scale.data() + size_t(r) * G;
        const float* z = zero.data() + size_t(r) * G;
        float out;
        if (act == ActQuant::kInt8TokenDynamic) {
          int32_t acc = 0;
          for (int k = 0; k < K; ++k) acc += int32_t(xi[k]) * (int32_t(c[k]) - 128);
          out = sx * (s[0] * float(acc));
        } else if (act != ActQuant::kNone) {
          float acc = 0;
          for (int k = 0; k < K; ++k) acc += xf[k] * t8[c[k]];
          out = sx * (s[0] * acc);
        } else {
          float acc = 0;
          for (int k = 0; k < K; ++k) {
            const int g = g_idx[k];
            const float wv = type == WeightType::kFloat8 ? s[g] * t8[c[k]]
                                                         : s[g] * (float(c[k]) - z[g]);
            acc += xr[k] * wv;
          }
          out = acc;
        }
        yr[r] = out + (bias.empty() ? 0.0f : bias[r]);
      }
    });
  }
}

// ---------------------------------------------------------------------------
// fast kernels

void QuantizedLinearKernel::Impl::fast_forward(const float* x, float* y, int n) const {
  if (type == WeightType::kFloat8)
    fast_fp8(x, y, n);
  else if (act == ActQuant::kInt8TokenDynamic)
    fast_w8a8(x, y, n);
  else
    fast_int_weight_only(x, y, n);
  if (!bias.empty())
    for (int t = 0; t < n; ++t)
      for (int r = 0; r < n_out; ++r) y[size_t(t) * n_out + r] += bias[r];
}

/// sum_g s_g * (sum_{k in g} xp[k] * code[k] - z_g * xsum[g]) for row r.
float QuantizedLinearKernel::Impl::int_row_dot(int r, const float* xp, const float* xsum) const {
  const int G = n_groups;
  const float* s = scale.data() + size_t(r) * G;
  const float* z = zero.data() + size_t(r) * G;
  float corr = 0.0f;
  for (int g = 0; g < G; ++g) corr += s[g] * z[g] * xsum[g];
#ifdef QSWEEP_QK_AVX2
  __m256 tot = _mm256_setzero_ps();
  if (bits == 4) {
    const uint8_t* row = packed.data() + size_t(r) * (kp / 2);
    const __m128i mask = _mm_set1_epi8(0x0F);
    for (int g = 0; g < G; ++g) {
      __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
      for (int p = seg_start[g]; p < seg_start[g + 1]; p += kBlock) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + p / 2));
        const __m128i lo = _mm_and_si128(v, mask);
        const __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), mask);
        const float* xb = xp + p;
        a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo)), _mm256_loadu_ps(xb), a0);
        a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8))),
                             _mm256_loadu_ps(xb + 8), a1);
        a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi)), _mm256_loadu_ps(xb + 16),
                             a0);
        a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8))),
                             _mm256_loadu_ps(xb + 24), a1);
      }
      tot = _mm256_fmadd_ps(_mm256_set1_ps(s[g]), _mm256_add_ps(a0, a1), tot);
    }
  } else {
    const uint8_t* row = packed.data() + size_t(r) * kp;
    for (int g = 0; g < G; ++g) {
      __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
      for (int p = seg_start[g]; p < seg_start[g + 1]; p += 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + p));
        a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)), _mm256_loadu_ps(xp + p), a0);
        a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(v, 8))),
                             _mm256_loadu_ps(xp + p + 8), a1);
      }
      tot = _mm256_fmadd_ps(_mm256_set1_ps(s[g]), _mm256_add_ps(a0, a1), tot);
    }
  }
  return hsum(tot) - corr;
#else
  float tot = 0.0f;
  for (int g = 0; g < G; ++g) {
    float a = 0.0f;
    for (int p = seg_start[g]; p < seg_start[g + 1]; ++p) {
      a += xp[p] * float(code_at(r, p));
    }
    tot += s[g] * a;
  }
  return tot - corr;
#endif
}

/// Code of row r at padded position p (any layout).
int QuantizedLinearKernel::Impl::code_at(int r, int p) const {
  if (bits == 8) return packed[size_t(r) * kp + p];
  const uint8_t* row = packed.data() + size_t(r) * (kp / 2);
  if (lut) {
    const int q = p % kChunk, i = q / 16, j = q % 16;
    const uint8_t b = row[(p / kChunk) * 64 + j * 4 + i / 2];
    return i % 2 == 0 ? (b & 15) : (b >> 4);
  }
  const uint8_t b = row[(p / kBlock) * 16 + (p % kBlock & 15)];
  return (p % kBlock) < 16 ? (b & 15) : (b >> 4);
}

/// Row r dequantized into dst [kp] in the padded order (pads 0).
void QuantizedLinearKernel::Impl::dequant_row_padded(int r, float* dst) const {
  const int G = n_groups;
  const float* s = scale.data() + size_t(r) * G;
  const float* z = zero.data() + size_t(r) * G;
  for (int g = 0; g < G; ++g)
    for (int p = seg_start[g]; p < seg_start[g + 1]; ++p)
      dst[p] = src_col[p] < 0 ? 0.0f : s[g] * (float(code_at(r, p)) - z[g]);
}

#ifdef QSWEEP_QK_LUT
namespace {
/// T tokens (x rows xp + t * xstride, padded order) times row r of a lut
/// layout: per group a 16-entry table s_g * (c - z_g) (the reference's
/// dequantized values, bit for bit), then per 16 codes one shift, one
/// permute and T fused multiply-adds; fp32 accumulation.
template <int T>
void lut_row(const uint8_t* row, const float* s, const float* z, const int* seg_start, int G,
             const float* xp, size_t xstride, float* out) {
  constexpr int A = T == 1 ? 8 : (T == 2 ? 4 : 2);  // accumulators per token (FMA latency)
  __m512 acc[T][A];
  for (int t = 0; t < T; ++t)
    for (int a = 0; a < A; ++a) acc[t][a] = _mm512_setzero_ps();
  const __m512 iota =
      _mm512_setr_ps(0.f, 1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f, 8.f, 9.f, 10.f, 11.f, 12.f, 13.f, 14.f, 15.f);
  for (int g = 0; g < G; ++g) {
    const __m512 tbl = _mm512_mul_ps(_mm512_sub_ps(iota, _mm512_set1_ps(z[g])), _mm512_set1_ps(s[g]));
    for (int p = seg_start[g]; p < seg_start[g + 1]; p += kChunk) {
      const __m512i v = _mm512_loadu_si512(row + p / 2);
      const float* xb = xp + p;
#define QSWEEP_LUT_STEP(i)                                                          \
  {                                                                                 \
    const __m512 wv = _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4 * (i)), tbl);     \
    for (int t = 0; t < T; ++t)                                                     \
      acc[t][(i) % A] =                                                             \
          _mm512_fmadd_ps(wv, _mm512_loadu_ps(xb + t * xstride + 16 * (i)), acc[t][(i) % A]); \
  }
      QSWEEP_LUT_STEP(0) QSWEEP_LUT_STEP(1) QSWEEP_LUT_STEP(2) QSWEEP_LUT_STEP(3)
      QSWEEP_LUT_STEP(4) QSWEEP_LUT_STEP(5) QSWEEP_LUT_STEP(6) QSWEEP_LUT_STEP(7)
#undef QSWEEP_LUT_STEP
    }
  }
  for (int t = 0; t < T; ++t) {
    __m512 sum = acc[t][0];
    for (int a = 1; a < A; ++a) sum = _mm512_add_ps(sum, acc[t][a]);
    out[t] = _mm512_reduce_add_ps(sum);
  }
}
}  // namespace
#endif

/// n <= kLutMaxTokens tokens through the lut layout: rows in parallel, tokens
/// in tiles of up to 4 sharing each row's codes and tables.
void QuantizedLinearKernel::Impl::lut_forward(const float* xp, float* y, int n) const {
#ifdef QSWEEP_QK_LUT
  const int N = n_out, G = n_groups;
  tbb::parallel_for(tbb::blocked_range<int>(0, N, 16), [&](const tbb::blocked_range<int>& rg) {
    float out[4];
    for (int r = rg.begin(); r < rg.end(); ++r) {
      const uint8_t* row = packed.data() + size_t(r) * (kp / 2);
      const float* s = scale.data() + size_t(r) * G;
      const float* z = zero.data() + size_t(r) * G;
      for (int t0 = 0; t0 < n; t0 += 4) {
        const int T = std::min(4, n - t0);
        const float* xt = xp + size_t(t0) * kp;
        switch (T) {
          case 1: lut_row<1>(row, s, z, seg_start.data(), G, xt, kp, out); break;
          case 2: lut_row<2>(row, s, z, seg_start.data(), G, xt, kp, out); break;
          case 3: lut_row<3>(row, s, z, seg_start.data(), G, xt, kp, out); break;
          default: lut_row<4>(row, s, z, seg_start.data(), G, xt, kp, out); break;
        }
        for (int t = 0; t < T; ++t) y[size_t(t0 + t) * N + r] = out[t];
      }
    }
  });
#else
  (void)xp, (void)y, (void)n;
#endif
}

void QuantizedLinearKernel::Impl::fast_int_weight_only(const float* x, float* y, int n) const {
  const int N = n_out, K = k_in, G = n_groups;
  // inputs in the padded group order, and their per-group sums
  std::vector<float> xbuf;
  const float* xp = x;
  if (!direct) {
    xbuf.assign(size_t(n) * kp, 0.0f);
    for (int t = 0; t < n; ++t)
      for (int p = 0; p < kp; ++p)
        if (src_col[p] >= 0) xbuf[size_t(t) * kp + p] = x[size_t(t) * K + src_col[p]];
    xp = xbuf.data();
  }
  if (lut && n <= kLutMaxTokens) {
    lut_forward(xp, y, n);
    return;
  }
  if (n >= 4) {
    // GEMM: dequantize tiles of rows, then Eigen.
    constexpr int kTile = 64;
    const int n_tiles = (N + kTile - 1) / kTile;
    Eigen::Map<const RowMat> X(xp, n, kp);
    tbb::parallel_for(0, n_tiles, [&](int tile) {
      const int r0 = tile * kTile, nr = std::min(kTile, N - r0);
      RowMat Wt(nr, kp);
      for (int i = 0; i < nr; ++i) dequant_row_padded(r0 + i, Wt.data() + size_t(i) * kp);
      RowMat Yt = X * Wt.transpose();  // [n, nr]
      for (int t = 0; t < n; ++t)
        for (int i = 0; i < nr; ++i) y[size_t(t) * N + r0 + i] = Yt(t, i);
    });
    return;
  }
  std::vector<float> xsum(size_t(n) * G, 0.0f);
  for (int t = 0; t < n; ++t)
    for (int g = 0; g < G; ++g) {
      float s = 0.0f;
      for (int p = seg_start[g]; p < seg_start[g + 1]; ++p) s += xp[size_t(t) * kp + p];
      xsum[size_t(t) * G + g] = s;
    }
  tbb::parallel_for(tbb::blocked_range<int>(0, N, 16), [&](const tbb::blocked_range<int>& rg) {
    for (int t = 0; t < n; ++t)
      for (int r = rg.begin(); r < rg.end(); ++r)
        y[size_t(t) * N + r] = int_row_dot(r, xp + size_t(t) * kp, xsum.data() + size_t(t) * G);
  });
}

void QuantizedLinearKernel::Impl::fast_w8a8(const float* x, float* y, int n) const {
  const int N = n_out, K = k_in;
  std::vector<int8_t> xq(size_t(n) * k8, 0);
  std::vector<float> sx(n);
  std::vector<int32_t> xsum(n, 0);
  for (int t = 0; t < n; ++t) {
    sx[t] = quantize_row_int8(x + size_t(t) * K, K, xq.data() + size_t(t) * k8);
    for (int k = 0; k < K; ++k) xsum[t] += xq[size_t(t) * k8 + k];
  }
  tbb::parallel_for(tbb::blocked_range<int>(0, N, 16), [&](const tbb::blocked_range<int>& rg) {
    for (int t = 0; t < n; ++t) {
      const int8_t* xr = xq.data() + size_t(t) * k8;
      for (int r = rg.begin(); r < rg.end(); ++r) {
        const uint8_t* wr = codes8.data() + size_t(r) * k8;
        int32_t acc = 0;
#if defined(QSWEEP_QK_VNNI)
        __m512i a = _mm512_setzero_si512();
        for (int k = 0; k < k8; k += 64)
          a = _mm512_dpbusd_epi32(a, _mm512_loadu_si512(wr + k), _mm512_loadu_si512(xr + k));
        acc = _mm512_reduce_add_epi32(a) - 128 * xsum[t];  // codes are unsigned (code = signed + 128)
#elif defined(QSWEEP_QK_AVX2)
        __m256i a = _mm256_setzero_si256();
        for (int k = 0; k < k8; k += 16) {
          const __m256i w16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wr + k)));
          const __m256i x16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xr + k)));
          a = _mm256_add_epi32(a, _mm256_madd_epi16(w16, x16));
        }
        acc = hsum_i32(a);
#else
        for (int k = 0; k < K; ++k) acc += int32_t(xr[k]) * int32_t(int8_t(wr[k]));
#endif
        y[size_t(t) * N + r] = sx[t] * (scale[r] * float(acc));
      }
    }
  });
}

void QuantizedLinearKernel::Impl::fast_fp8(const float* x, float* y, int n) const {
  const int N = n_out, K = k_in;
  const float* t8 = fp8_table().v;
  std::vector<float> xv;
  std::vector<float> sx(n, 1.0f);
  const float* xs = x;
  if (act != ActQuant::kNone) {
    xv.resize(size_t(n) * K);
    std::vector<uint8_t> q(K);
    for (int t = 0; t < n; ++t) {
      if (act == ActQuant::kFp8TokenDynamic) {
        sx[t] = quantize_row_fp8_dynamic(x + size_t(t) * K, K, q.data());
      } else {
        sx[t] = input_scale;
        quantize_row_fp8_static(x + size_t(t) * K, K, input_scale, q.data());
      }
      for (int k = 0; k < K; ++k) xv[size_t(t) * K + k] = t8[q[k]];
    }
    xs = xv.data();
  }
  tbb::parallel_for(tbb::blocked_range<int>(0, N, 16), [&](const tbb::blocked_range<int>& rg) {
    for (int t = 0; t < n; ++t)
      for (int r = rg.begin(); r < rg.end(); ++r) {
        const float acc = fp8_dot(xs + size_t(t) * K, codes.data() + size_t(r) * K, K);
        y[size_t(t) * N + r] = act == ActQuant::kNone ? scale[r] * acc : sx[t] * (scale[r] * acc);
      }
  });
}

}  // namespace qsweep::quant
