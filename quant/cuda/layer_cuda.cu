// The GPU LayerDevice: see layer_cuda.h. Matrices row-major [out, in] (the
// host DenseLinear's layout); activations row-major [rows, width], fp32.
#include "quant/cuda/layer_cuda.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/cuda/gpu_attention.cuh"
#include "model/cuda/gpu_kernels.cuh"
#include "model/engine/rope.h"
#include "quant/cuda/awq_kernels.cuh"
#include "quant/cuda/cuda_check.cuh"
#include "quant/cuda/gptq_cuda.h"

namespace qsweep::quant::cuda {
namespace {

namespace mk = model::cuda::kernels;

/// A device array grown on demand (contents lost when it grows).
template <class T>
struct Buf {
  T* p = nullptr;
  size_t n = 0;
  Buf() = default;
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  ~Buf() {
    if (p) cudaFree(p);
  }
  T* need(size_t count, const char* what) {
    if (count <= n) return p;
    if (p) cudaFree(p);
    p = nullptr;
    n = 0;
    if (cudaMalloc(&p, std::max<size_t>(count, 1) * sizeof(T)) != cudaSuccess) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      throw std::runtime_error(std::string("out of GPU memory for the calibration passes' ") + what + " (" +
                               std::to_string((count * sizeof(T)) >> 20) + " MiB; " + std::to_string(free_b >> 20) +
                               " MiB free): use fewer or shorter calibration sequences, or device: cpu");
    }
    n = count;
    return p;
  }
};

/// A part's weights on the device: q|k|v and gate|up stacked by rows (as
/// the GPU engine), biases stacked with zeros for a Linear without one
/// (null when none has one), norms [d].
struct DeviceWeights {
  Buf<float> qkv, qkv_b, o, o_b, gu, gu_b, down, down_b, attn_norm, ffn_norm;
  bool has_qkv_b = false, has_o_b = false, has_gu_b = false, has_down_b = false;
};

/// The device arrays of one batch's attention metadata.
struct BatchMeta {
  const int* pos = nullptr;
  const int* rowseg = nullptr;
  const mk::SegDesc* segs = nullptr;
  const int2* tiles = nullptr;
  int n_tiles = 0;
};

/// The metadata of a pass's batches in one device buffer: per batch the
/// rows' positions and segments, the segments' KV regions in `kv` (each
/// sequence K [len, kvd] then V [len, kvd]), the query tiles.
struct MetaSet {
  Buf<char> buf;
  std::vector<BatchMeta> batch;
  size_t kv_floats = 0;  // the largest batch's KV need

  static size_t kv_need(const RowBatch& b, int kvd) { return size_t(2) * b.n_rows * kvd; }

  void build(const std::vector<RowBatch>& batches, int kvd, float* kv, cudaStream_t s) {
    auto a16 = [](size_t n) { return (n + 15) / 16 * 16; };
    std::vector<size_t> off;
    size_t total = 0;
    for (const RowBatch& b : batches) {
      int tiles = 0;
      for (int i = 0; i < b.n_seq; ++i) tiles += (b.seq_len[i] + mk::kAttQTile - 1) / mk::kAttQTile;
      off.push_back(total);
      total += 2 * a16(size_t(b.n_rows) * 4) + a16(b.n_seq * sizeof(mk::SegDesc)) + a16(tiles * sizeof(int2));
    }
    std::vector<char> host(total);
    batch.clear();
    char* dev = buf.need(total, "batch metadata");
    for (size_t bi = 0; bi < batches.size(); ++bi) {
      const RowBatch& b = batches[bi];
      char* h = host.data() + off[bi];
      int* pos = reinterpret_cast<int*>(h);
      int* rowseg = reinterpret_cast<int*>(h + a16(size_t(b.n_rows) * 4));
      auto* segs = reinterpret_cast<mk::SegDesc*>(h + 2 * a16(size_t(b.n_rows) * 4));
      auto* tiles = reinterpret_cast<int2*>(reinterpret_cast<char*>(segs) + a16(b.n_seq * sizeof(mk::SegDesc)));
      int r = 0, nt = 0;
      size_t kv_off = 0;
      for (int si = 0; si < b.n_seq; ++si) {
        const int len = b.seq_len[si];
        segs[si] = {kv + kv_off, len, 0, r, len};
        kv_off += size_t(2) * len * kvd;
        for (int t = 0; t < len; ++t) {
          pos[r + t] = t;
          rowseg[r + t] = si;
        }
        for (int i0 = 0; i0 < len; i0 += mk::kAttQTile) tiles[nt++] = make_int2(si, i0);
        r += len;
      }
      const size_t d0 = off[bi];
      batch.push_back({reinterpret_cast<const int*>(dev + d0),
                       reinterpret_cast<const int*>(dev + d0 + a16(size_t(b.n_rows) * 4)),
                       reinterpret_cast<const mk::SegDesc*>(dev + d0 + 2 * a16(size_t(b.n_rows) * 4)),
                       reinterpret_cast<const int2*>(dev + d0 + 2 * a16(size_t(b.n_rows) * 4) +
                                                     a16(b.n_seq * sizeof(mk::SegDesc))),
                       nt});
    }
    if (total) CK(cudaMemcpyAsync(dev, host.data(), total, cudaMemcpyHostToDevice, s));
    CK(cudaStreamSynchronize(s));  // `host` goes out of scope
  }
};

constexpr int kNoHook = -1;

struct MinOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return fminf(a, b); }
};

// ActStatsAccumulator's per-channel reductions of x [n, k] (row-major),
// accumulated: absmax, min, max and Σ |x| in double (rows in order), as
// add_sample (fmaxf / fminf keep the running value against a NaN, as
// std::max / std::min). Thread per channel (consecutive threads read
// consecutive channels of a row).
__global__ void channel_stats(const float* x, int n, int k, float* absmax, float* mn, float* mx, double* abssum) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= k) return;
  float a = absmax[j], lo = mn[j], hi = mx[j];
  double s = abssum[j];
  for (int r = 0; r < n; ++r) {
    const float v = x[size_t(r) * k + j];
    a = fmaxf(a, fabsf(v));
    lo = fminf(lo, v);
    hi = fmaxf(hi, v);
    s += fabs(double(v));
  }
  absmax[j] = a;
  mn[j] = lo;
  mx[j] = hi;
  abssum[j] = s;
}

// out = {min, max} over x [count] (one sample's values). One block of 1024.
__global__ void sample_extremes(const float* x, size_t count, float* out) {
  __shared__ float part[32];
  float lo = INFINITY, hi = -INFINITY;
  for (size_t i = threadIdx.x; i < count; i += blockDim.x) {
    lo = fminf(lo, x[i]);
    hi = fmaxf(hi, x[i]);
  }
  lo = mk::block_reduce(lo, part, INFINITY, MinOp{});
  hi = mk::block_reduce(hi, part, -INFINITY, mk::MaxOp{});
  if (threadIdx.x == 0) {
    out[0] = lo;
    out[1] = hi;
  }
}

__global__ void fill_f32(float* p, size_t n, float v) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) p[i] = v;
}

/// One statistics accumulator of a pass (LayerPlan::stats) reduced on the
/// device: its Linear's inputs never leave the GPU; run() merges the
/// reductions into the host accumulator at the end.
struct DeviceStats {
  ActStatsAccumulator* acc = nullptr;
  int id = 0, k = 0;
  Buf<float> absmax, mn, mx, ext;  // ext: per sample {min, max}
  Buf<double> abssum;
  std::vector<int> rows;  // per sample
};

class GpuLayerDevice final : public LayerDevice {
 public:
  GpuLayerDevice(const model::ModelConfig& c, int device, bool tf32)
      : c_(c), device_(device), cpu_(make_cpu_layer_device(c)) {
    int n = 0;
    CK(cudaGetDeviceCount(&n));
    if (device < 0 || device >= n)
      throw std::runtime_error("CUDA device " + std::to_string(device) + " does not exist (" + std::to_string(n) +
                               " visible)");
    if (c.head_dim % 2 != 0 || c.head_dim > 256 || c.head_dim <= 0)
      throw std::runtime_error("the GPU calibration passes need an even head_dim up to 256; this model has " +
                               std::to_string(c.head_dim) + " (use device: cpu)");
    CK(cudaSetDevice(device));
    CK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking));
    CK(cublasCreate(&blas_));
    CK(cublasSetStream(blas_, s_));
    CK(cublasSetMathMode(blas_, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH));
    const std::vector<float> inv = model::Rope(c.rope, c.head_dim).inv_freq();
    upload(inv_freq_, inv.data(), inv.size(), "RoPE frequencies");
    name_ = "cuda:" + std::to_string(device) + " (" + device_description() + ")";
  }
  ~GpuLayerDevice() override {
    cudaSetDevice(device_);
    cudaStreamSynchronize(s_);
    cublasDestroy(blas_);
    cudaStreamDestroy(s_);
  }
  std::string name() const override { return name_; }

  void run(LayerPart part, const LayerPlan& plan, const std::vector<RowBatch>& batches, const float* x,
           float* y) override {
    CK(cudaSetDevice(device_));
    const int d = c_.n_embd;
    // The last Linear whose hooks need the pass (a pass for hooks only
    // stops there).
    int last = kNoHook;
    for (LinearId id : kAllLinears)
      if (!plan.hooks[size_t(id)].empty() || !plan.stats[size_t(id)].empty()) last = int(id);
    if (!y && last == kNoHook) return;
    upload_weights(part, plan, &w_, y ? kNoHook : last);
    prepare(part, batches, &meta_);
    size_t samples = 0;
    for (const RowBatch& b : batches) samples += size_t(b.n_seq);
    stats_.clear();
    for (LinearId id : kAllLinears)
      for (ActStatsAccumulator* acc : plan.stats[size_t(id)]) {
        DeviceStats& st = stats_.emplace_back();
        st.acc = acc;
        st.id = int(id);
        st.k = acc->k();
        const size_t k = size_t(st.k);
        fill_f32<<<blocks(k), 256, 0, s_>>>(st.absmax.need(k, "statistics"), k, 0.0f);
        fill_f32<<<blocks(k), 256, 0, s_>>>(st.mn.need(k, "statistics"), k, INFINITY);
        fill_f32<<<blocks(k), 256, 0, s_>>>(st.mx.need(k, "statistics"), k, -INFINITY);
        CK(cudaMemsetAsync(st.abssum.need(k, "statistics"), 0, k * sizeof(double), s_));
        st.ext.need(std::max<size_t>(2 * samples, 1), "statistics");
      }
    size_t max_rows = 0;
    for (const RowBatch& b : batches) max_rows = std::max(max_rows, size_t(b.n_rows));
    float* xb = xin_.need(max_rows * d, "inputs");
    float* yb = part == LayerPart::kLayer ? xb : yout_.need(max_rows * d, "outputs");
    for (size_t bi = 0; bi < batches.size(); ++bi) {
      const RowBatch& b = batches[bi];
      const size_t n = size_t(b.n_rows) * d;
      CK(cudaMemcpyAsync(xb, x + size_t(b.row0) * d, n * 4, cudaMemcpyHostToDevice, s_));
      exec(part, w_, meta_.batch.empty() ? BatchMeta{} : meta_.batch[bi], b, xb, yb, &plan, y ? kNoHook : last);
      if (y) CK(cudaMemcpyAsync(y + size_t(b.row0) * d, yb, n * 4, cudaMemcpyDeviceToHost, s_));
      CK(cudaStreamSynchronize(s_));
    }
    for (DeviceStats& st : stats_) {  // into the host accumulators
      const size_t k = size_t(st.k), ns = st.rows.size();
      std::vector<float> a(k), lo(k), hi(k), ext(2 * ns), smin(ns), smax(ns);
      std::vector<double> sum(k);
      CK(cudaMemcpyAsync(a.data(), st.absmax.p, k * 4, cudaMemcpyDeviceToHost, s_));
      CK(cudaMemcpyAsync(lo.data(), st.mn.p, k * 4, cudaMemcpyDeviceToHost, s_));
      CK(cudaMemcpyAsync(hi.data(), st.mx.p, k * 4, cudaMemcpyDeviceToHost, s_));
      CK(cudaMemcpyAsync(sum.data(), st.abssum.p, k * 8, cudaMemcpyDeviceToHost, s_));
      CK(cudaMemcpyAsync(ext.data(), st.ext.p, ext.size() * 4, cudaMemcpyDeviceToHost, s_));
      CK(cudaStreamSynchronize(s_));
      for (size_t i = 0; i < ns; ++i) {
        smin[i] = ext[2 * i];
        smax[i] = ext[2 * i + 1];
      }
      st.acc->merge(a.data(), lo.data(), hi.data(), sum.data(), st.rows, smin, smax);
    }
    stats_.clear();
  }

  std::unique_ptr<AwqBlock> awq_block(LayerPart part, const LayerPlan& plan, const std::vector<LinearId>& scaled,
                                      const std::vector<RowBatch>& batches, const float* x, int bits,
                                      int group_size) override;

  // ---- shared with GpuAwqBlock
  const model::ModelConfig& config() const { return c_; }
  int device() const { return device_; }
  cudaStream_t stream() const { return s_; }

  void upload(Buf<float>& b, const float* host, size_t n, const char* what) {
    CK(cudaMemcpyAsync(b.need(n, what), host, n * 4, cudaMemcpyHostToDevice, s_));
  }

  /// Stacks the Linears `ids` (rows in order) into `w` / `bias`; returns
  /// whether any has a bias. Throws when one is not dense or has another
  /// shape than the config's.
  bool upload_stack(const LayerPlan& plan, std::initializer_list<LinearId> ids, Buf<float>& w, Buf<float>& bias) {
    size_t rows = 0;
    int in = -1;
    bool any_bias = false;
    for (LinearId id : ids) {
      const model::DenseLinear* l = plan.linear[size_t(id)];
      if (!l)
        throw std::logic_error(std::string("the GPU calibration passes need dense fp32 Linears; ") + linear_name(id) +
                               " is not");
      if (in >= 0 && l->in_features() != in) throw std::logic_error("stacked Linears of different widths");
      in = l->in_features();
      rows += size_t(l->out_features());
      any_bias = any_bias || !l->bias().empty();
    }
    float* dw = w.need(rows * in, "weights");
    std::vector<float> hb;
    size_t r0 = 0;
    for (LinearId id : ids) {
      const model::DenseLinear* l = plan.linear[size_t(id)];
      const size_t out = size_t(l->out_features());
      CK(cudaMemcpyAsync(dw + r0 * in, l->weight(), out * in * 4, cudaMemcpyHostToDevice, s_));
      if (any_bias) {
        hb.resize(r0 + out, 0.0f);
        if (!l->bias().empty()) std::memcpy(hb.data() + r0, l->bias().data(), out * 4);
      }
      r0 += out;
    }
    if (any_bias) {
      upload(bias, hb.data(), hb.size(), "biases");
      CK(cudaStreamSynchronize(s_));  // hb goes out of scope
    }
    return any_bias;
  }

  /// The weights of `part` whose GEMMs run: a pass that stops after the
  /// hooks of Linear `stop_after` (>= 0) runs the GEMMs of the Linears
  /// before it only.
  void upload_weights(LayerPart part, const LayerPlan& plan, DeviceWeights* w, int stop_after = kNoHook) {
    auto runs = [&](LinearId id) { return stop_after == kNoHook || int(id) < stop_after; };
    const int d = c_.n_embd, qd = c_.n_head * c_.head_dim, kvd = c_.n_head_kv * c_.head_dim, ff = c_.n_ff;
    auto expect = [&](LinearId id, int out, int in) {
      const model::DenseLinear* l = plan.linear[size_t(id)];
      if (l && (l->out_features() != out || l->in_features() != in))
        throw std::logic_error(std::string("GPU calibration pass: ") + linear_name(id) + " has shape [" +
                               std::to_string(l->out_features()) + ", " + std::to_string(l->in_features()) +
                               "], the config implies [" + std::to_string(out) + ", " + std::to_string(in) + "]");
    };
    if (part != LayerPart::kMlp) {
      expect(LinearId::kQ, qd, d);
      expect(LinearId::kK, kvd, d);
      expect(LinearId::kV, kvd, d);
      expect(LinearId::kO, d, qd);
      if (runs(LinearId::kV))  // the q|k|v GEMM runs after the hooks of q, k, v
        w->has_qkv_b = upload_stack(plan, {LinearId::kQ, LinearId::kK, LinearId::kV}, w->qkv, w->qkv_b);
      if (runs(LinearId::kO)) w->has_o_b = upload_stack(plan, {LinearId::kO}, w->o, w->o_b);
    }
    if (part != LayerPart::kAttention) {
      expect(LinearId::kGate, ff, d);
      expect(LinearId::kUp, ff, d);
      expect(LinearId::kDown, d, ff);
      if (runs(LinearId::kUp)) w->has_gu_b = upload_stack(plan, {LinearId::kGate, LinearId::kUp}, w->gu, w->gu_b);
      if (runs(LinearId::kDown)) w->has_down_b = upload_stack(plan, {LinearId::kDown}, w->down, w->down_b);
    }
    if (part == LayerPart::kLayer) {
      upload(w->attn_norm, plan.layer->attn_norm.data(), size_t(d), "norm weights");
      upload(w->ffn_norm, plan.layer->ffn_norm.data(), size_t(d), "norm weights");
    }
  }

  /// The batches' attention metadata and KV scratch (none for MLP passes).
  void prepare(LayerPart part, const std::vector<RowBatch>& batches, MetaSet* meta) {
    meta->batch.clear();
    if (part == LayerPart::kMlp) return;
    const int kvd = c_.n_head_kv * c_.head_dim;
    size_t kv = 0;
    for (const RowBatch& b : batches) kv = std::max(kv, MetaSet::kv_need(b, kvd));
    meta->build(batches, kvd, kv_.need(kv, "key/value cache"), s_);
  }

  /// Runs `part` on one batch: x [n, d] -> y [n, d] on the device (kLayer:
  /// in place, y == x). `plan` non-null: hooks called with host copies of
  /// their Linear's input; stop_after >= 0: return after that Linear's hooks.
  void exec(LayerPart part, const DeviceWeights& w, const BatchMeta& meta, const RowBatch& b, const float* x,
            float* y, const LayerPlan* plan, int stop_after) {
    const int n = b.n_rows;
    const int d = c_.n_embd, qd = c_.n_head * c_.head_dim, kvd = c_.n_head_kv * c_.head_dim, ff = c_.n_ff,
              hd = c_.head_dim;
    const float eps = float(c_.rms_norm_eps);
    // Calls the hooks of `ids` with the device rows `dx` [n, width]; true
    // when the pass may stop.
    auto hooks = [&](std::initializer_list<LinearId> ids, const float* dx, int width) {
      if (!plan) return false;
      for (DeviceStats& st : stats_) {  // reductions on the device
        bool mine = false;
        for (LinearId id : ids) mine = mine || st.id == int(id);
        if (!mine) continue;
        channel_stats<<<blocks(size_t(width)), 256, 0, s_>>>(dx, n, width, st.absmax.p, st.mn.p, st.mx.p,
                                                             st.abssum.p);
        size_t r0 = 0;
        for (int si = 0; si < b.n_seq; ++si) {
          sample_extremes<<<1, 1024, 0, s_>>>(dx + r0 * width, size_t(b.seq_len[si]) * width,
                                              st.ext.p + 2 * st.rows.size());
          st.rows.push_back(b.seq_len[si]);
          r0 += size_t(b.seq_len[si]);
        }
        CK(cudaGetLastError());
      }
      bool any = false;
      for (LinearId id : ids) any = any || !plan->hooks[size_t(id)].empty();
      if (any) {
        host_.resize(size_t(n) * width);
        CK(cudaMemcpyAsync(host_.data(), dx, host_.size() * 4, cudaMemcpyDeviceToHost, s_));
        CK(cudaStreamSynchronize(s_));
        for (LinearId id : ids)
          for (const LinearHook* h : plan->hooks[size_t(id)]) (*h)(host_.data(), n, b.seq_len, b.n_seq);
      }
      bool stop = false;
      for (LinearId id : ids) stop = stop || int(id) == stop_after;
      return stop;
    };
    auto gemm = [&](const float* W, const float* bias, const float* in, float* out, int rows_out, int k,
                    float beta) {
      const float one = 1.0f;
      CK(cublasSgemm(blas_, CUBLAS_OP_T, CUBLAS_OP_N, rows_out, n, k, &one, W, k, in, k, &beta, out, rows_out));
      if (bias) mk::bias_add<<<model::cuda::row_grid(n, rows_out), 256, 0, s_>>>(out, bias, n, rows_out);
    };
    // o_proj(attention(q, k, v of in)) into out (+ beta * out).
    auto attention = [&](const float* in, float* out, float beta) {
      float* qkv = qkv_.need(size_t(n) * (qd + 2 * kvd), "q/k/v");
      float* att = att_.need(size_t(n) * qd, "attention output");
      gemm(w.qkv.p, w.has_qkv_b ? w.qkv_b.p : nullptr, in, qkv, qd + 2 * kvd, d, 0.0f);
      mk::rope_and_cache<float><<<n, 128, 0, s_>>>(qkv, meta.pos, meta.rowseg, meta.segs, 0, c_.n_head, c_.n_head_kv,
                                                    hd, inv_freq_.p);
      model::cuda::launch_attention<float>(hd, dim3(unsigned(meta.n_tiles), unsigned(c_.n_head)), s_, qkv,
                                           qd + 2 * kvd, meta.segs, meta.tiles, 0, c_.n_head / c_.n_head_kv, kvd,
                                           1.0f / std::sqrt(float(hd)), c_.sliding_window, att, qd);
      CK(cudaGetLastError());
      if (hooks({LinearId::kO}, att, qd)) return true;
      gemm(w.o.p, w.has_o_b ? w.o_b.p : nullptr, att, out, d, qd, beta);
      return false;
    };
    // down(act(gate(in)) * up(in)) into out (+ beta * out).
    auto mlp = [&](const float* in, float* out, float beta) {
      float* gu = gu_.need(size_t(n) * 2 * ff, "MLP activations");
      float* act = act_.need(size_t(n) * ff, "MLP activations");
      gemm(w.gu.p, w.has_gu_b ? w.gu_b.p : nullptr, in, gu, 2 * ff, d, 0.0f);
      const int actk = c_.act == model::Activation::kSilu ? 0 : c_.act == model::Activation::kGeluTanh ? 1 : 2;
      mk::gated_act<float, float><<<model::cuda::row_grid(n, ff), 256, 0, s_>>>(gu, n, ff, actk, act);
      CK(cudaGetLastError());
      if (hooks({LinearId::kDown}, act, ff)) return true;
      gemm(w.down.p, w.has_down_b ? w.down_b.p : nullptr, act, out, d, ff, beta);
      return false;
    };
    if (part == LayerPart::kAttention) {
      if (hooks({LinearId::kQ, LinearId::kK, LinearId::kV}, x, d)) return;
      attention(x, y, 0.0f);
      return;
    }
    if (part == LayerPart::kMlp) {
      if (hooks({LinearId::kGate, LinearId::kUp}, x, d)) return;
      mlp(x, y, 0.0f);
      return;
    }
    // The layer, in place on y (== x): y += attn(norm1(y)); y += mlp(norm2(y)).
    float* h = h_.need(size_t(n) * d, "normed activations");
    mk::rms_norm<float><<<n, 256, 0, s_>>>(y, nullptr, d, w.attn_norm.p, eps, c_.norm_plus_one, h);
    if (hooks({LinearId::kQ, LinearId::kK, LinearId::kV}, h, d)) return;
    if (attention(h, y, 1.0f)) return;
    mk::rms_norm<float><<<n, 256, 0, s_>>>(y, nullptr, d, w.ffn_norm.p, eps, c_.norm_plus_one, h);
    if (hooks({LinearId::kGate, LinearId::kUp}, h, d)) return;
    mlp(h, y, 1.0f);
  }

 private:
  model::ModelConfig c_;
  int device_;
  std::unique_ptr<LayerDevice> cpu_;  // AWQ blocks whose groups do not tile the width
  std::string name_;
  cudaStream_t s_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  Buf<float> inv_freq_, kv_, xin_, yout_, h_, qkv_, att_, gu_, act_;
  DeviceWeights w_;
  MetaSet meta_;
  std::vector<float> host_;          // a hooked Linear's input, for its hooks
  std::deque<DeviceStats> stats_;    // the statistics of the pass running
};

// The block's inputs x, its reference output and its weights stay on the
// device; the scaled Linears' original rows are kept aside and each
// candidate is written over their rows of the stacked matrix.
class GpuAwqBlock final : public LayerDevice::AwqBlock {
 public:
  GpuAwqBlock(GpuLayerDevice& dev, LayerPart part, const LayerPlan& plan, const std::vector<LinearId>& scaled,
              const std::vector<RowBatch>& batches, const float* x, int bits, int group)
      : dev_(dev), part_(part), batches_(batches), bits_(bits) {
    CK(cudaSetDevice(dev_.device()));
    cudaStream_t s = dev_.stream();
    const int d = dev_.config().n_embd;
    dev_.upload_weights(part, plan, &w_);
    dev_.prepare(part, batches_, &meta_);
    rows_ = rows_of(batches_);
    dev_.upload(x_, x, size_t(rows_) * d, "AWQ block inputs");
    ref_.need(size_t(rows_) * d, "AWQ block reference");
    for (size_t bi = 0; bi < batches_.size(); ++bi)
      run_batch(bi, ref_.p + size_t(batches_[bi].row0) * d);
    // Where each scaled Linear's rows sit in its stacked matrix.
    for (LinearId id : scaled) {
      Part p;
      p.n = plan.linear[size_t(id)]->out_features();
      p.k = plan.linear[size_t(id)]->in_features();
      p.g = group > 0 ? group : p.k;
      size_t row0 = 0;
      auto place = [&](Buf<float>& stack, std::initializer_list<LinearId> order) {
        for (LinearId o : order) {
          if (o == id) {
            p.dst = stack.p + row0 * p.k;
            return;
          }
          row0 += size_t(plan.linear[size_t(o)]->out_features());
        }
        throw std::logic_error(std::string("awq_block: ") + linear_name(id) + " is not in the block");
      };
      if (part == LayerPart::kAttention)
        place(w_.qkv, {LinearId::kQ, LinearId::kK, LinearId::kV});
      else
        place(w_.gu, {LinearId::kGate, LinearId::kUp});
      p.orig = std::make_unique<Buf<float>>();
      p.orig->need(size_t(p.n) * p.k, "AWQ original weights");
      CK(cudaMemcpyAsync(p.orig->p, p.dst, size_t(p.n) * p.k * 4, cudaMemcpyDeviceToDevice, s));
      parts_.push_back(std::move(p));
    }
    out_.need(size_t(rows_) * d, "AWQ block outputs");
    CK(cudaStreamSynchronize(s));
  }

  double loss(const Eigen::VectorXf& s) override {
    CK(cudaSetDevice(dev_.device()));
    cudaStream_t st = dev_.stream();
    const int d = dev_.config().n_embd;
    dev_.upload(s_, s.data(), size_t(s.size()), "AWQ scales");
    for (const Part& p : parts_) {
      const size_t ng = size_t(p.n) * (p.k / p.g);
      scaled_quantize<<<blocks(ng), 256, 0, st>>>(p.orig->p, s_.p, p.n, p.k / p.g, p.g, float((1 << bits_) - 1),
                                                   size_t(p.k), 1, p.dst);
    }
    CK(cudaGetLastError());
    sum_.begin(batches_.size());
    for (size_t bi = 0; bi < batches_.size(); ++bi) {
      const size_t off = size_t(batches_[bi].row0) * d;
      run_batch(bi, out_.p + off);
      sum_.add(ref_.p + off, out_.p + off, size_t(batches_[bi].n_rows) * d, st);
    }
    return rows_ ? sum_.total(st) / (double(rows_) * d) : 0.0;
  }

 private:
  struct Part {
    int n = 0, k = 0, g = 0;
    float* dst = nullptr;              // the Linear's rows in the stacked matrix
    std::unique_ptr<Buf<float>> orig;  // its original weights [n, k]
  };
  void run_batch(size_t bi, float* y) {
    const RowBatch& b = batches_[bi];
    dev_.exec(part_, w_, meta_.batch.empty() ? BatchMeta{} : meta_.batch[bi], b,
              x_.p + size_t(b.row0) * dev_.config().n_embd, y, nullptr, kNoHook);
  }

  GpuLayerDevice& dev_;
  LayerPart part_;
  std::vector<RowBatch> batches_;
  int bits_ = 4, rows_ = 0;
  DeviceWeights w_;
  MetaSet meta_;
  Buf<float> x_, ref_, out_, s_;
  std::vector<Part> parts_;
  LossSum sum_;
};

std::unique_ptr<LayerDevice::AwqBlock> GpuLayerDevice::awq_block(LayerPart part, const LayerPlan& plan,
                                                                 const std::vector<LinearId>& scaled,
                                                                 const std::vector<RowBatch>& batches, const float* x,
                                                                 int bits, int group_size) {
  if (part == LayerPart::kLayer) throw std::logic_error("awq_block: a block is kAttention or kMlp");
  for (LinearId id : scaled) {
    const model::DenseLinear* l = plan.linear[size_t(id)];
    if (l && group_size > 0 && l->in_features() % group_size != 0)  // groups that do not tile: the CPU
      return cpu_->awq_block(part, plan, scaled, batches, x, bits, group_size);
  }
  return std::make_unique<GpuAwqBlock>(*this, part, plan, scaled, batches, x, bits, group_size);
}

}  // namespace

std::unique_ptr<LayerDevice> make_layer_device(const model::ModelConfig& c, int device, bool tf32) {
  return std::make_unique<GpuLayerDevice>(c, device, tf32);
}

}  // namespace qsweep::quant::cuda
