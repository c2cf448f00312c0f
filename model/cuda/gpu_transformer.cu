// GpuTransformer: device state, KV caches and the forward pass (see
// gpu_transformer.h). Kernels: gpu_kernels.cuh; attention launches:
// gpu_attention.cuh; profiler and CUDA graphs: gpu_graph.cuh; helpers:
// gpu_util.cuh. Checkpoint loading: gpu_load.cpp.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "model/cuda/gpu_attention.cuh"
#include "model/cuda/gpu_graph.cuh"
#include "model/cuda/gpu_impl.h"
#include "model/cuda/gpu_kernels.cuh"
#include "model/cuda/gpu_util.cuh"
#include "model/engine/rope.h"

namespace qsweep::model::cuda {

bool cuda_device_available(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    const char* vis = std::getenv("CUDA_VISIBLE_DEVICES");
    *why = e != cudaSuccess ? std::string("no usable CUDA device: ") + cudaGetErrorString(e)
                            : std::string("no CUDA device is visible") +
                                  (vis ? std::string(" (CUDA_VISIBLE_DEVICES=") + vis + ")" : "");
    return false;
  }
  return true;
}

// ---------------------------------------------------------------- Impl

GpuTransformer::Impl::Impl(const ModelConfig& c, const GpuEngineOptions& o)
    : device(o.device), dtype(o.dtype), elt(elt_size(o.dtype)), profiler(new Profiler) {
  int n = 0;
  check(cudaGetDeviceCount(&n), "cudaGetDeviceCount");
  if (o.device < 0 || o.device >= n)
    throw std::runtime_error("CUDA device " + std::to_string(o.device) + " does not exist (" + std::to_string(n) +
                             " visible)");
  check(cudaSetDevice(o.device), "cudaSetDevice");
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, o.device), "cudaGetDeviceProperties");
  device_name = prop.name;
  cc_major = prop.major;
  cc_minor = prop.minor;
  if (const char* e = std::getenv("QSWEEP_GPU_ATTENTION")) simple_attention = std::string(e) == "simple";
  pdl = prop.major >= 9;
  if (const char* e = std::getenv("QSWEEP_GPU_PDL")) pdl = pdl && std::string(e) != "0";
  if (c.head_dim % 2 != 0 || c.head_dim > 256)
    throw std::runtime_error("the CUDA engine needs an even head_dim up to 256; this model has " +
                             std::to_string(c.head_dim) + " (run it on the CPU engine: device cpu)");
  cudaStream_t s = nullptr;
  check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
  stream = s;
  cublasHandle_t hb = nullptr;
  check_blas(cublasCreate(&hb), "cublasCreate");
  cublas = hb;
  check_blas(cublasSetStream(hb, s), "cublasSetStream");
  // A fixed cuBLAS workspace, so that GEMMs can be captured in CUDA graphs
  // (shared with cuBLASLt: both run in stream order).
  {
    workspace_bytes = size_t(32) << 20;
    check(cudaMalloc(&workspace, workspace_bytes), "cuBLAS workspace");
    owned.push_back(workspace);
    check_blas(cublasSetWorkspace(hb, workspace, workspace_bytes), "cublasSetWorkspace");
  }
  cublasLtHandle_t lt = nullptr;
  check_blas(cublasLtCreate(&lt), "cublasLtCreate");
  cublaslt = lt;
  // Scratch and caches come from the stream-ordered pool; keep freed memory in it.
  cudaMemPool_t pool;
  if (cudaDeviceGetDefaultMemPool(&pool, o.device) == cudaSuccess) {
    uint64_t thr = UINT64_MAX;
    cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &thr);
  }
}

GpuTransformer::Impl::~Impl() {
  cudaSetDevice(device);
  auto s = static_cast<cudaStream_t>(stream);
  for (Buffer* b :
       {&meta, &x, &h, &qkv, &att, &gu, &act, &hout, &logits, &scores, &score_parts, &qx, &qsx, &qacc, &wx, &wdq})
    if (b->p) cudaFreeAsync(b->p, s);
  if (s) cudaStreamSynchronize(s);
  destroy_graphs(graphs);
  for (void* p : owned) cudaFree(p);
  if (host_meta) cudaFreeHost(host_meta);
  if (host_out) cudaFreeHost(host_out);
  if (cublaslt) cublasLtDestroy(static_cast<cublasLtHandle_t>(cublaslt));
  if (cublas) cublasDestroy(static_cast<cublasHandle_t>(cublas));
  if (s) cudaStreamDestroy(s);
  delete profiler;
}

void GpuTransformer::Impl::use_device() const { check(cudaSetDevice(device), "cudaSetDevice"); }

void* GpuTransformer::Impl::alloc_weight(size_t bytes, const char* what) {
  void* p = nullptr;
  if (cudaMalloc(&p, bytes) != cudaSuccess) oom(bytes, what);
  owned.push_back(p);
  return p;
}

void* GpuTransformer::Impl::upload_matrix(const float* host, size_t n, const std::string& what) {
  auto s = static_cast<cudaStream_t>(stream);
  void* out = alloc_weight(n * elt, what.c_str());
  if (dtype == GpuDType::kFloat32) {
    check(cudaMemcpy(out, host, n * 4, cudaMemcpyHostToDevice), "upload " + what);
    return out;
  }
  float* tmp = nullptr;
  if (cudaMallocAsync(reinterpret_cast<void**>(&tmp), n * 4, s) != cudaSuccess) oom(n * 4, "staging " + what);
  check(cudaMemcpyAsync(tmp, host, n * 4, cudaMemcpyHostToDevice, s), "upload " + what);
  with_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    k::convert<T><<<grid_for(n), 256, 0, s>>>(tmp, static_cast<T*>(out), n);
  });
  cudaFreeAsync(tmp, s);
  check(cudaStreamSynchronize(s), "upload " + what);  // `host` may go away
  return out;
}

float* GpuTransformer::Impl::upload_f32(const float* host, size_t n, const std::string& what) {
  if (n == 0) return nullptr;
  float* out = static_cast<float*>(alloc_weight(n * 4, what.c_str()));
  check(cudaMemcpy(out, host, n * 4, cudaMemcpyHostToDevice), "upload " + what);
  return out;
}

void* GpuTransformer::Impl::ensure(Buffer& b, size_t bytes, const char* what) {
  if (b.bytes >= bytes) return b.p;
  auto s = static_cast<cudaStream_t>(stream);
  const size_t want = std::max(bytes, b.bytes * 3 / 2);
  if (b.p) cudaFreeAsync(b.p, s);
  b.p = nullptr;
  b.bytes = 0;
  if (cudaMallocAsync(&b.p, want, s) != cudaSuccess) oom(want, what);
  b.bytes = want;
  return b.p;
}

// ---------------------------------------------------------------- caches

GpuKvCache& GpuKvCache::operator=(GpuKvCache&& o) noexcept {
  if (this != &o) {
    if (owner_ && data_) owner_->release(*this);
    owner_ = o.owner_;
    data_ = o.data_;
    cap_ = o.cap_;
    len_ = o.len_;
    o.owner_ = nullptr;
    o.data_ = nullptr;
    o.cap_ = o.len_ = 0;
  }
  return *this;
}

GpuKvCache::~GpuKvCache() {
  if (owner_ && data_) owner_->release(*this);
}

void GpuTransformer::release(GpuKvCache& c) const {
  cudaFreeAsync(c.data_, static_cast<cudaStream_t>(impl_->stream));
  c.data_ = nullptr;
  c.cap_ = c.len_ = 0;
}

GpuKvCache GpuTransformer::new_cache() const {
  GpuKvCache c;
  c.owner_ = this;
  return c;
}

namespace {

/// Copies the first `len` rows of every layer's K and V from a cache of
/// capacity `from_cap` to one of `to_cap` (both [n_layer][2][cap][kvd]).
void copy_rows(void* dst, int to_cap, const void* src, int from_cap, int len, int n_layer, size_t row_bytes,
               cudaStream_t s) {
  if (len == 0) return;
  check(cudaMemcpy2DAsync(dst, to_cap * row_bytes, src, from_cap * row_bytes, len * row_bytes, size_t(n_layer) * 2,
                          cudaMemcpyDeviceToDevice, s),
        "KV cache copy");
}

}  // namespace

/// Bytes of one position's keys (or values) of one layer.
static size_t kv_row_bytes(const ModelConfig& c, size_t elt) { return size_t(c.n_head_kv) * c.head_dim * elt; }

void GpuTransformer::reserve(GpuKvCache& c, int n) const {
  if (n <= c.cap_) return;
  const size_t row = kv_row_bytes(cfg_, impl_->elt);
  const size_t bytes = size_t(cfg_.n_layer) * 2 * n * row;
  auto s = static_cast<cudaStream_t>(impl_->stream);
  void* p = nullptr;
  if (cudaMallocAsync(&p, bytes, s) != cudaSuccess) oom(bytes, "a KV cache of " + std::to_string(n) + " positions");
  copy_rows(p, n, c.data_, c.cap_, c.len_, cfg_.n_layer, row, s);
  if (c.data_) cudaFreeAsync(c.data_, s);
  c.owner_ = this;
  c.data_ = p;
  c.cap_ = n;
}

GpuKvCache GpuTransformer::fork(const GpuKvCache& c, int extra) const {
  GpuKvCache f = new_cache();
  reserve(f, std::max(1, c.len_ + extra));
  copy_rows(f.data_, f.cap_, c.data_, c.cap_, c.len_, cfg_.n_layer, kv_row_bytes(cfg_, impl_->elt),
            static_cast<cudaStream_t>(impl_->stream));
  f.len_ = c.len_;
  return f;
}

// ---------------------------------------------------------------- construction

GpuTransformer::GpuTransformer(const ModelConfig& cfg, uint64_t seed, float stdev, const GpuEngineOptions& opts)
    : cfg_(cfg), opts_(opts), impl_(std::make_unique<Impl>(cfg, opts)) {
  Impl& m = *impl_;
  const ModelConfig& c = cfg_;
  auto s = static_cast<cudaStream_t>(m.stream);
  const int d = c.n_embd, qd = c.n_head * c.head_dim, kvd = c.n_head_kv * c.head_dim, ff = c.n_ff;
  uint64_t counter = seed;
  auto rand_mat = [&](size_t n, const char* what) {
    void* p = m.alloc_weight(n * m.elt, what);
    with_dtype(opts_.dtype, [&](auto tag) {
      using T = decltype(tag);
      k::fill_normal<T><<<grid_for(n), 256, 0, s>>>(static_cast<T*>(p), n, ++counter, stdev);
    });
    check(cudaGetLastError(), "fill_normal");
    return p;
  };
  auto const_vec = [&](size_t n, float v, const char* what) {
    float* p = static_cast<float*>(m.alloc_weight(n * 4, what));
    k::fill_const<<<grid_for(n), 256, 0, s>>>(p, n, v);
    return p;
  };
  auto rand_vec = [&](size_t n, const char* what) {
    float* p = static_cast<float*>(m.alloc_weight(n * 4, what));
    k::fill_normal<float><<<grid_for(n), 256, 0, s>>>(p, n, ++counter, stdev);
    return p;
  };
  const float norm_w = c.norm_plus_one ? 0.0f : 1.0f;
  for (int l = 0; l < c.n_layer; ++l) {
    DeviceLayer L;
    auto rand_matrix = [&](size_t n, const char* what) {
      DeviceMatrix M;
      M.dense = rand_mat(n, what);
      M.bytes = n * m.elt;
      return M;
    };
    L.wqkv = rand_matrix(size_t(qd + 2 * kvd) * d, "wqkv");
    L.wo = rand_matrix(size_t(d) * qd, "wo");
    L.wgu = rand_matrix(size_t(2 * ff) * d, "wgu");
    L.wdown = rand_matrix(size_t(d) * ff, "wdown");
    L.attn_norm = const_vec(d, norm_w, "norm");
    L.ffn_norm = const_vec(d, norm_w, "norm");
    if (c.attention_bias) {
      L.wqkv.bias = rand_vec(qd + 2 * kvd, "bias");
      if (has_o_proj_bias(c)) L.wo.bias = rand_vec(d, "bias");
    }
    if (c.mlp_bias) {
      L.wgu.bias = rand_vec(2 * ff, "bias");
      L.wdown.bias = rand_vec(d, "bias");
    }
    m.layers.push_back(L);
  }
  m.embed = rand_mat(size_t(c.vocab_size) * d, "embedding");
  m.lm_head.dense = c.tie_word_embeddings ? m.embed : rand_mat(size_t(c.vocab_size) * d, "lm_head");
  m.final_norm = const_vec(d, norm_w, "norm");
  std::vector<float> inv = Rope(c.rope, c.head_dim).inv_freq();
  m.inv_freq = m.upload_f32(inv.data(), inv.size(), "inv_freq");
  check(cudaStreamSynchronize(s), "random weights");
}

GpuTransformer::~GpuTransformer() = default;

std::string GpuTransformer::describe() const {
  return impl_->device_name + " (cuda:" + std::to_string(impl_->device) + "), " + gpu_dtype_name(opts_.dtype) +
         (opts_.tf32 && opts_.dtype == GpuDType::kFloat32 ? " (TF32 GEMMs)" : "");
}

size_t GpuTransformer::weight_bytes_per_token() const {
  // Every layer's matrices (as stored: engine dtype, or codes + scales) and
  // vectors (fp32), the final norm and lm_head; of the embedding a token
  // reads one row, not counted.
  const ModelConfig& c = cfg_;
  const size_t d = c.n_embd, qd = size_t(c.n_head) * c.head_dim, kvd = size_t(c.n_head_kv) * c.head_dim,
               ff = c.n_ff;
  size_t mats = 0;
  for (const DeviceLayer& L : impl_->layers) mats += L.wqkv.bytes + L.wo.bytes + L.wgu.bytes + L.wdown.bytes;
  const size_t vecs = 2 * d + (c.attention_bias ? qd + 2 * kvd : 0) + (has_o_proj_bias(c) ? d : 0) +
                      (c.mlp_bias ? 2 * ff + d : 0);
  const size_t head = impl_->lm_head.bytes ? impl_->lm_head.bytes : size_t(c.vocab_size) * d * impl_->elt;  // 0: tied
  return mats + c.n_layer * vecs * 4 + d * 4 + head;
}

void GpuTransformer::synchronize() const {
  check(cudaStreamSynchronize(static_cast<cudaStream_t>(impl_->stream)), "synchronize");
}

// ---------------------------------------------------------------- forward

namespace {

enum class SinkKind { kHostLogits, kScores, kArgmax };


/// y [n, out] = x [n, in] W^T (+ beta * y) for a dense W [out, in] row-major;
/// y fp32, or the engine dtype with y_engine_dtype. Up to 4 rows (decode
/// steps) with the gemv kernel (a programmatic dependent with pdl), else cuBLAS.
void dense_gemm(const GpuTransformer::Impl& m, const GpuEngineOptions& o, bool pdl, const void* W, const void* X,
                void* Y, int n, int out, int in, float beta, bool y_engine_dtype) {
  if (n <= 4 && in % 8 == 0) {
    auto s = static_cast<cudaStream_t>(m.stream);
    with_dtype(o.dtype, [&](auto tag) {
      using T = decltype(tag);
      const auto* w = static_cast<const T*>(W);
      const auto* x = static_cast<const T*>(X);
      auto run = [&](auto* y) {
        using YT = std::remove_pointer_t<decltype(y)>;
        constexpr int R = 8;  // rows per block (see gemv)
        const dim3 grid(unsigned((out + R - 1) / R));
        switch (n) {
          case 1: launch(pdl, k::gemv<T, 1, YT, R>, grid, 256, 0, s, w, x, y, out, in, beta); break;
          case 2: launch(pdl, k::gemv<T, 2, YT, R>, grid, 256, 0, s, w, x, y, out, in, beta); break;
          case 3: launch(pdl, k::gemv<T, 3, YT, R>, grid, 256, 0, s, w, x, y, out, in, beta); break;
          default: launch(pdl, k::gemv<T, 4, YT, R>, grid, 256, 0, s, w, x, y, out, in, beta); break;
        }
      };
      if (y_engine_dtype)
        run(static_cast<T*>(Y));
      else
        run(static_cast<float*>(Y));
    });
    return;
  }
  const cudaDataType_t t = cuda_type(o.dtype);
  const cublasComputeType_t ct =
      o.dtype == GpuDType::kFloat32 && o.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  const float alpha = 1.0f;
  check_blas(cublasGemmEx(static_cast<cublasHandle_t>(m.cublas), CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &alpha, W, t,
                          in, X, t, in, &beta, Y, y_engine_dtype ? t : CUDA_R_32F, out, ct, CUBLAS_GEMM_DEFAULT),
             "cublasGemmEx");
}

/// y [n, out] = x [n, in] M^T + M's bias (+ beta * y, the residual added
/// before the bias): dense_gemm then bias_add (y is fp32 whenever M has a
/// bias: gate|up stays fp32 with an MLP bias), quant_gemm (the bias in its
/// epilogue), or for weight-only matrices weight_only_gemv (decode steps;
/// the bias in its epilogue) or the dense path on the dequantized weights.
void gemm(GpuTransformer::Impl& m, const GpuEngineOptions& o, bool pdl, const DeviceMatrix& M, const void* X, void* Y,
          int n, int out, int in, float beta, bool y_engine_dtype = false) {
  if (M.quantized()) {
    quant_gemm(m, M, X, Y, n, out, in, beta, y_engine_dtype, pdl);
    return;
  }
  if (M.weight_only() && n <= 4) {
    weight_only_gemv(m, M, X, Y, n, out, in, beta, y_engine_dtype, pdl);
    return;
  }
  const void* W = M.weight_only() ? dequantize_weight_only(m, M, out, in, pdl) : M.dense;
  dense_gemm(m, o, pdl, W, X, Y, n, out, in, beta, y_engine_dtype);
  if (M.bias)
    launch(pdl, k::bias_add, row_grid(n, out), 256, 0, static_cast<cudaStream_t>(m.stream), static_cast<float*>(Y),
           M.bias, n, out);
}

}  // namespace

struct GpuTransformer::PassArgs {
  const std::vector<int>* ids;
  std::vector<GpuSegment>* segs;
  const std::vector<int>* rows;
  const std::vector<int>* targets;  // kScores
  SinkKind sink;
  float* host_logits;
  LoglikelihoodResult* scores;
  int* argmax;
};

void GpuTransformer::run_pass(const PassArgs& a) const {
  Impl& m = *impl_;
  const ModelConfig& c = cfg_;
  const GpuEngineOptions& o = opts_;
  Profiler& prof = *m.profiler;
  auto s = static_cast<cudaStream_t>(m.stream);
  check(cudaSetDevice(m.device), "cudaSetDevice");
  const std::vector<int>& ids = *a.ids;
  std::vector<GpuSegment>& segs = *a.segs;
  const std::vector<int>& rows = *a.rows;
  const int n = int(ids.size()), nseg = int(segs.size()), mrows = int(rows.size());
  if (n == 0) return;
  const int d = c.n_embd, qd = c.n_head * c.head_dim, kvd = c.n_head_kv * c.head_dim, ff = c.n_ff,
            V = c.vocab_size, hd = c.head_dim;
  for (GpuSegment& sg : segs) reserve(*sg.cache, sg.cache->len() + sg.n_tok);
  // Attention kernel: tensor cores for bf16/fp16 passes with long
  // segments; the fp32 kernel for fp32, decode steps and odd head sizes.
  int max_tok = 0;
  for (const GpuSegment& sg : segs) max_tok = std::max(max_tok, sg.n_tok);
  const bool use_mma = o.dtype != GpuDType::kFloat32 && mma_head_dim(hd) && max_tok >= 32 && !m.simple_attention;
  const bool decode = max_tok == 1 && !m.simple_attention;  // one new token per segment
  const int qtile = use_mma ? k::kMmaQTile : k::kAttQTile;
  // Metadata: ids, pos, rowseg [n]; segs [nseg]; tiles; out rows, targets [m].
  std::vector<int2> tiles;
  for (int si = 0; si < nseg; ++si)
    for (int i0 = 0; i0 < segs[si].n_tok; i0 += qtile) tiles.push_back(make_int2(si, i0));
  const size_t off_pos = align16(n * 4), off_rowseg = off_pos + align16(n * 4),
               off_segs = off_rowseg + align16(n * 4), off_tiles = off_segs + align16(nseg * sizeof(k::SegDesc)),
               off_rows = off_tiles + align16(tiles.size() * sizeof(int2)), off_tgt = off_rows + align16(mrows * 4),
               total = off_tgt + align16(mrows * 4);
  if (m.host_meta_bytes < total) {
    if (m.host_meta) cudaFreeHost(m.host_meta);
    m.host_meta_bytes = std::max(total, m.host_meta_bytes * 2);
    check(cudaMallocHost(&m.host_meta, m.host_meta_bytes), "pinned staging");
  }
  char* hm = static_cast<char*>(m.host_meta);
  std::memcpy(hm, ids.data(), n * 4);
  int* hpos = reinterpret_cast<int*>(hm + off_pos);
  int* hrowseg = reinterpret_cast<int*>(hm + off_rowseg);
  auto* hsegs = reinterpret_cast<k::SegDesc*>(hm + off_segs);
  for (int si = 0; si < nseg; ++si) {
    const GpuSegment& sg = segs[si];
    hsegs[si] = {sg.cache->data_, sg.cache->cap_, sg.cache->len_, sg.row0, sg.n_tok};
    for (int t = 0; t < sg.n_tok; ++t) {
      hpos[sg.row0 + t] = sg.cache->len_ + t;
      hrowseg[sg.row0 + t] = si;
    }
  }
  std::memcpy(hm + off_tiles, tiles.data(), tiles.size() * sizeof(int2));
  std::memcpy(hm + off_rows, rows.data(), mrows * 4);
  if (a.sink == SinkKind::kScores) std::memcpy(hm + off_tgt, a.targets->data(), mrows * 4);
  char* dm = static_cast<char*>(m.ensure(m.meta, total, "pass metadata"));
  check(cudaMemcpyAsync(dm, hm, total, cudaMemcpyHostToDevice, s), "metadata upload");
  const int* d_ids = reinterpret_cast<const int*>(dm);
  const int* d_pos = reinterpret_cast<const int*>(dm + off_pos);
  const int* d_rowseg = reinterpret_cast<const int*>(dm + off_rowseg);
  const auto* d_segs = reinterpret_cast<const k::SegDesc*>(dm + off_segs);
  const auto* d_tiles = reinterpret_cast<const int2*>(dm + off_tiles);
  const int* d_rows = reinterpret_cast<const int*>(dm + off_rows);
  const int* d_tgt = reinterpret_cast<const int*>(dm + off_tgt);

  float* x = static_cast<float*>(m.ensure(m.x, size_t(n) * d * 4, "activations"));
  void* h = m.ensure(m.h, size_t(n) * d * m.elt, "activations");
  float* qkv = static_cast<float*>(m.ensure(m.qkv, size_t(n) * (qd + 2 * kvd) * 4, "q/k/v"));
  void* att = m.ensure(m.att, size_t(n) * qd * m.elt, "attention output");
  // gate|up: fp32, or the engine dtype for bf16/fp16 (transformers'
  // rounding) unless an MLP bias is added to it (in fp32).
  const bool gu_half = o.dtype != GpuDType::kFloat32 && !c.mlp_bias;
  void* gu = m.ensure(m.gu, size_t(n) * 2 * ff * (gu_half ? m.elt : 4), "MLP activations");
  void* act = m.ensure(m.act, size_t(n) * ff * m.elt, "MLP activations");
  // Final rows in chunks whose logits fit 1 GiB.
  const int chunk = int(std::max<size_t>(1, std::min<size_t>(std::max(mrows, 1), (size_t(1) << 30) / (size_t(V) * 4))));
  if (mrows > 0) {
    m.ensure(m.hout, size_t(mrows) * d * m.elt, "final hidden states");
    m.ensure(m.logits, size_t(chunk) * V * 4, "logits");
    m.ensure(m.scores, size_t(mrows) * sizeof(k::ScoreOut), "scores");
  }
  // Passes of a few rows (decode steps) launch every kernel after the
  // embedding as a programmatic dependent of the one before (Hopper), and
  // score each 100k-wide logits row with many blocks.
  const bool small = n <= 4;
  const bool pdl = m.pdl && small;
  // Row kernels of small passes: one block per row does all the work, so
  // give it more threads (fewer dependent steps per thread).
  const int norm_block = small ? 1024 : 256, rope_block = small ? 1024 : 128;
  const int part_len = 2048, n_parts = (V + part_len - 1) / part_len;
  const bool split_scores = chunk <= 32 && mrows <= 32;
  if (split_scores && mrows > 0) m.ensure(m.score_parts, size_t(mrows) * n_parts * sizeof(k::SoftmaxStats), "scores");
  const float eps = float(c.rms_norm_eps);
  const float scale = 1.0f / std::sqrt(float(hd));
  const int actk = c.act == Activation::kSilu ? 0 : c.act == Activation::kGeluTanh ? 1 : 2;
  // Everything on the device from the embedding to the scores; a pass with
  // the shape and buffers of an earlier one (decode steps) replays it as a
  // CUDA graph instead of ~10 launches per layer.
  auto enqueue = [&] {
    with_dtype(o.dtype, [&](auto tag) {
      using T = decltype(tag);
      prof.phase("embed", s, [&] {
        k::embed<T><<<n, 256, 0, s>>>(static_cast<const T*>(m.embed), d_ids, d,
                                      c.embed_scale ? std::sqrt(float(d)) : 1.0f, x);
      });
      for (int l = 0; l < c.n_layer; ++l) {
        const DeviceLayer& L = m.layers[l];
        prof.phase("norm", s, [&] {
          launch(pdl, k::rms_norm<T>, n, norm_block, 0, s, x, nullptr, d, L.attn_norm, eps, c.norm_plus_one,
                 static_cast<T*>(h));
        });
        prof.phase("gemm qkv", s, [&] { gemm(m, o, pdl, L.wqkv, h, qkv, n, qd + 2 * kvd, d, 0.0f); });
        prof.phase("rope+cache", s, [&] {
          launch(pdl, k::rope_and_cache<T>, n, rope_block, 0, s, qkv, d_pos, d_rowseg, d_segs, l, c.n_head,
                 c.n_head_kv, hd, m.inv_freq);
        });
        prof.phase("attention", s, [&] {
          const dim3 grid(unsigned(tiles.size()), unsigned(c.n_head));
          if (decode)
            launch_attention_decode<T>(hd, grid, s, pdl, qkv, qd + 2 * kvd, d_segs, l, c.n_head / c.n_head_kv, kvd,
                                       scale, c.sliding_window, static_cast<T*>(att), qd);
          else if (use_mma)
            launch_attention_mma<T>(hd, grid, s, qkv, qd + 2 * kvd, d_segs, d_tiles, l, c.n_head / c.n_head_kv, kvd,
                                    scale, c.sliding_window, static_cast<T*>(att), qd);
          else
            launch_attention<T>(hd, grid, s, qkv, qd + 2 * kvd, d_segs, d_tiles, l, c.n_head / c.n_head_kv, kvd, scale,
                                c.sliding_window, static_cast<T*>(att), qd);
        });
        prof.phase("gemm o", s, [&] { gemm(m, o, pdl, L.wo, att, x, n, d, qd, 1.0f); });  // x += att Wo^T
        prof.phase("norm", s, [&] {
          launch(pdl, k::rms_norm<T>, n, norm_block, 0, s, x, nullptr, d, L.ffn_norm, eps, c.norm_plus_one,
                 static_cast<T*>(h));
        });
        prof.phase("gemm gate|up", s, [&] { gemm(m, o, pdl, L.wgu, h, gu, n, 2 * ff, d, 0.0f, gu_half); });
        prof.phase("act", s, [&] {
          if (gu_half)
            launch(pdl, k::gated_act<T, T>, row_grid(n, ff), 256, 0, s, static_cast<const T*>(gu), n, ff, actk,
                   static_cast<T*>(act));
          else
            launch(pdl, k::gated_act<T, float>, row_grid(n, ff), 256, 0, s, static_cast<const float*>(gu), n, ff,
                   actk, static_cast<T*>(act));
        });
        prof.phase("gemm down", s, [&] { gemm(m, o, pdl, L.wdown, act, x, n, d, ff, 1.0f); });  // x += act Wdown^T
      }
      check(cudaGetLastError(), "decoder layers");
      if (mrows == 0) return;
      // Final norm of the listed rows, lm_head and the sink, chunk by chunk.
      T* hout = static_cast<T*>(m.hout.p);
      launch(pdl, k::rms_norm<T>, mrows, norm_block, 0, s, x, d_rows, d, m.final_norm, eps, c.norm_plus_one, hout);
      float* lg = static_cast<float*>(m.logits.p);
      auto* sc = static_cast<k::ScoreOut*>(m.scores.p);
      for (int r0 = 0; r0 < mrows; r0 += chunk) {
        const int nr = std::min(chunk, mrows - r0);
        prof.phase("gemm lm_head", s, [&] { gemm(m, o, pdl, m.lm_head, hout + size_t(r0) * d, lg, nr, V, d, 0.0f); });
        if (a.sink == SinkKind::kHostLogits) {
          check(cudaMemcpyAsync(a.host_logits + size_t(r0) * V, lg, size_t(nr) * V * 4, cudaMemcpyDeviceToHost, s),
                "logits download");
        } else {
          prof.phase("score", s, [&] {
            const int* tg = a.sink == SinkKind::kScores ? d_tgt + r0 : nullptr;
            if (split_scores) {  // a few rows: each row's statistics from many blocks, then merged
              auto* parts = static_cast<k::SoftmaxStats*>(m.score_parts.p);
              launch(pdl, k::score_parts, dim3(unsigned(nr), unsigned(n_parts)), 256, 0, s, lg, V, part_len, parts);
              launch(pdl, k::score_merge, nr, 32, 0, s, lg, V, parts, n_parts, tg, sc + r0);
            } else {
              launch(pdl, k::score_rows, nr, 1024, 0, s, lg, V, tg, sc + r0);
            }
          });
        }
      }
      check(cudaGetLastError(), "lm_head");
    });
  };
  const bool graphable = !prof.on && a.sink != SinkKind::kHostLogits && mrows > 0;
  if (graphable) {
    const std::vector<uintptr_t> key = {uintptr_t(n), uintptr_t(nseg), uintptr_t(mrows), uintptr_t(tiles.size()),
                                        uintptr_t(a.sink), uintptr_t(use_mma), uintptr_t(m.meta.p),
                                        uintptr_t(m.x.p), uintptr_t(m.h.p), uintptr_t(m.qkv.p), uintptr_t(m.att.p),
                                        uintptr_t(m.gu.p), uintptr_t(m.act.p), uintptr_t(m.hout.p),
                                        uintptr_t(m.logits.p), uintptr_t(m.scores.p), uintptr_t(m.score_parts.p),
                                        uintptr_t(m.qx.p), uintptr_t(m.qsx.p), uintptr_t(m.qacc.p),
                                        uintptr_t(m.wx.p), uintptr_t(m.wdq.p)};
    replay_or_capture(m, key, enqueue);
  } else {
    enqueue();
  }
  for (GpuSegment& sg : segs) sg.cache->len_ += sg.n_tok;
  if (mrows > 0 && a.sink != SinkKind::kHostLogits) {
    const size_t ob = size_t(mrows) * sizeof(k::ScoreOut);
    if (m.host_out_bytes < ob) {
      if (m.host_out) cudaFreeHost(m.host_out);
      m.host_out_bytes = std::max(ob, m.host_out_bytes * 2);
      check(cudaMallocHost(&m.host_out, m.host_out_bytes), "pinned staging");
    }
    check(cudaMemcpyAsync(m.host_out, m.scores.p, ob, cudaMemcpyDeviceToHost, s), "scores download");
  }
  check(cudaStreamSynchronize(s), "forward pass");
  prof.collect();
  if (mrows == 0 || a.sink == SinkKind::kHostLogits) return;
  const auto* res = static_cast<const k::ScoreOut*>(m.host_out);
  for (int i = 0; i < mrows; ++i) {
    if (a.sink == SinkKind::kScores)
      a.scores[i] = {res[i].logprob, res[i].argmax == (*a.targets)[i]};
    else
      a.argmax[i] = res[i].argmax;
  }
}

void GpuTransformer::forward_logits(const std::vector<int>& ids, std::vector<GpuSegment>& segs,
                                    const std::vector<int>& rows, float* host_logits) const {
  run_pass({&ids, &segs, &rows, nullptr, SinkKind::kHostLogits, host_logits, nullptr, nullptr});
}

void GpuTransformer::forward_scores(const std::vector<int>& ids, std::vector<GpuSegment>& segs,
                                    const std::vector<int>& rows, const std::vector<int>& targets,
                                    LoglikelihoodResult* out) const {
  run_pass({&ids, &segs, &rows, &targets, SinkKind::kScores, nullptr, out, nullptr});
}

void GpuTransformer::forward_argmax(const std::vector<int>& ids, std::vector<GpuSegment>& segs,
                                    const std::vector<int>& rows, int* out) const {
  run_pass({&ids, &segs, &rows, nullptr, SinkKind::kArgmax, nullptr, nullptr, out});
}

}  // namespace qsweep::model::cuda
