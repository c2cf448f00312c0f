#pragma once
// Host helpers of quant/cuda/'s translation units: error checks that throw
// with the failing call's text, an owning device buffer, a cuBLAS handle in
// fp32 (TF32 only when asked). Included inside an anonymous namespace.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace qsweep::quant::cuda {
namespace {

struct CudaFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void ck(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw CudaFailure(std::string(what) + ": " + cudaGetErrorString(e));
}
void ck(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) throw CudaFailure(std::string(what) + ": cuBLAS status " + std::to_string(int(s)));
}
#define CK(x) ck((x), #x)

/// A device buffer of n T's.
template <class T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  Dev() = default;
  explicit Dev(size_t count) : n(count) {
    if (n) CK(cudaMalloc(&p, n * sizeof(T)));
  }
  ~Dev() {
    if (p) cudaFree(p);
  }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  void upload(const T* host, size_t count) { CK(cudaMemcpy(p, host, count * sizeof(T), cudaMemcpyHostToDevice)); }
  void download(T* host, size_t count) const { CK(cudaMemcpy(host, p, count * sizeof(T), cudaMemcpyDeviceToHost)); }
};

struct Blas {
  cublasHandle_t h = nullptr;
  explicit Blas(bool tf32) {
    CK(cublasCreate(&h));
    // fp32 GEMMs without TF32, as the references (allow_tf32 = False).
    CK(cublasSetMathMode(h, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH));
  }
  ~Blas() { cublasDestroy(h); }
};

// cuBLAS handles are expensive to create (~0.1 s each): one per thread, kept
// for the process's lifetime.
Blas& thread_blas() {
  thread_local Blas b(false);
  return b;
}

}  // namespace
}  // namespace qsweep::quant::cuda
