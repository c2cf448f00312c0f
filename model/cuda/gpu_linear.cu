// GpuLinear (gpu_linear.h).
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <map>
#include <mutex>
#include <stdexcept>
#include <string>

#include "model/cuda/gpu_kernels.cuh"
#include "model/cuda/gpu_linear.h"
#include "model/cuda/gpu_util.cuh"

namespace qsweep::model::cuda {

namespace {

/// One per device: stream, cuBLAS handle, x/y buffers grown on demand.
struct DeviceContext {
  std::mutex mu;
  int device = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  float *x = nullptr, *y = nullptr;
  size_t x_cap = 0, y_cap = 0;  // floats

  explicit DeviceContext(int d) : device(d) {
    check(cudaSetDevice(d), "cudaSetDevice");
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    if (cublasCreate(&blas) != CUBLAS_STATUS_SUCCESS) throw std::runtime_error("cublasCreate failed");
    cublasSetStream(blas, stream);
    cublasSetMathMode(blas, CUBLAS_PEDANTIC_MATH);  // fp32 as the CPU path: no TF32
  }
  float* grow(float*& p, size_t& cap, size_t n, const char* what) {
    if (n <= cap) return p;
    if (p) cudaFree(p);
    p = nullptr;
    cap = 0;
    if (cudaMalloc(&p, n * sizeof(float)) != cudaSuccess)
      throw std::runtime_error(std::string("out of GPU memory for ") + what + " (" + std::to_string(n * 4 >> 20) +
                               " MiB)");
    cap = n;
    return p;
  }
};

DeviceContext& context(int device) {
  static std::mutex mu;
  static std::map<int, std::unique_ptr<DeviceContext>> ctx;  // process lifetime
  std::lock_guard<std::mutex> lk(mu);
  auto& c = ctx[device];
  if (!c) c = std::make_unique<DeviceContext>(device);
  return *c;
}

class GpuLinear final : public OffloadedLinear {
 public:
  GpuLinear(std::unique_ptr<Linear> host, int device) : host_(std::move(host)), ctx_(context(device)) {
    const auto* d = dynamic_cast<const DenseLinear*>(host_.get());
    if (!d) throw std::invalid_argument("make_gpu_linear: the host layer is not a DenseLinear");
    out_ = d->out_features();
    in_ = d->in_features();
    std::lock_guard<std::mutex> lk(ctx_.mu);
    check(cudaSetDevice(ctx_.device), "cudaSetDevice");
    const size_t wb = size_t(out_) * in_ * sizeof(float);
    if (cudaMalloc(&w_, wb) != cudaSuccess)
      throw std::runtime_error("out of GPU memory for a Linear's weights (" + std::to_string(wb >> 20) + " MiB)");
    check(cudaMemcpy(w_, d->weight(), wb, cudaMemcpyHostToDevice), "weight upload");
    if (!d->bias().empty()) {
      check(cudaMalloc(&b_, out_ * sizeof(float)), "bias");
      check(cudaMemcpy(b_, d->bias().data(), out_ * sizeof(float), cudaMemcpyHostToDevice), "bias upload");
    }
  }
  ~GpuLinear() override {
    std::lock_guard<std::mutex> lk(ctx_.mu);
    cudaSetDevice(ctx_.device);
    cudaFree(w_);
    if (b_) cudaFree(b_);
  }
  void forward(const float* x, float* y, int n) const override {
    if (n <= 0) return;
    std::lock_guard<std::mutex> lk(ctx_.mu);
    check(cudaSetDevice(ctx_.device), "cudaSetDevice");
    float* dx = ctx_.grow(ctx_.x, ctx_.x_cap, size_t(n) * in_, "Linear inputs");
    float* dy = ctx_.grow(ctx_.y, ctx_.y_cap, size_t(n) * out_, "Linear outputs");
    check(cudaMemcpyAsync(dx, x, size_t(n) * in_ * 4, cudaMemcpyHostToDevice, ctx_.stream), "x upload");
    // Row-major y [n, out] = x [n, in] W^T: column-major y^T = W x^T.
    const float one = 1.0f, zero = 0.0f;
    if (cublasSgemm(ctx_.blas, CUBLAS_OP_T, CUBLAS_OP_N, out_, n, in_, &one, w_, in_, dx, in_, &zero, dy, out_) !=
        CUBLAS_STATUS_SUCCESS)
      throw std::runtime_error("cublasSgemm failed");
    if (b_) kernels::bias_add<<<row_grid(n, out_), 256, 0, ctx_.stream>>>(dy, b_, n, out_);
    check(cudaMemcpyAsync(y, dy, size_t(n) * out_ * 4, cudaMemcpyDeviceToHost, ctx_.stream), "y download");
    check(cudaStreamSynchronize(ctx_.stream), "Linear forward");
  }
  int in_features() const override { return in_; }
  int out_features() const override { return out_; }
  size_t weight_bytes() const override { return host_->weight_bytes(); }
  const Linear& host() const override { return *host_; }

 private:
  std::unique_ptr<Linear> host_;
  DeviceContext& ctx_;
  float* w_ = nullptr;
  float* b_ = nullptr;
  int out_ = 0, in_ = 0;
};

}  // namespace

std::unique_ptr<OffloadedLinear> make_gpu_linear(std::unique_ptr<Linear> host, int device) {
  return std::make_unique<GpuLinear>(std::move(host), device);
}

}  // namespace qsweep::model::cuda
