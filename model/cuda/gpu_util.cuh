#pragma once
// Host-side helpers of the GPU engine's translation unit (gpu_transformer.cu):
// CUDA/cuBLAS error checks with messages, out-of-memory reports, launch
// geometry and dtype dispatch.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "model/cuda/gpu_options.h"

namespace qsweep::model::cuda {

inline namespace gpu_util {

inline void check(cudaError_t e, const std::string& what) {
  if (e != cudaSuccess)
    throw std::runtime_error("CUDA error (" + what + "): " + cudaGetErrorString(e));
}

inline void check_blas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cuBLAS error (") + what + "): status " + std::to_string(int(s)));
}

inline std::string mib(size_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }

/// "out of GPU memory" with what was asked for and what is free.
[[noreturn]] inline void oom(size_t bytes, const std::string& what) {
  size_t free_b = 0, total_b = 0;
  cudaGetLastError();
  cudaMemGetInfo(&free_b, &total_b);
  throw std::runtime_error("out of GPU memory: " + what + " needs " + mib(bytes) + ", the device has " +
                           mib(free_b) + " free of " + mib(total_b) +
                           " (use dtype bfloat16, a smaller max_batch_tokens or max_length, or a larger GPU)");
}

inline int grid_for(size_t n, int block = 256) {
  return int(std::min<size_t>((n + block - 1) / block, 65535 * 4));
}

/// Calls f(T{}) with T the C++ type of `t`.
template <class F>
void with_dtype(GpuDType t, F&& f) {
  switch (t) {
    case GpuDType::kFloat32: f(float{}); break;
    case GpuDType::kBFloat16: f(__nv_bfloat16{}); break;
    case GpuDType::kFloat16: f(__half{}); break;
  }
}

inline cudaDataType_t cuda_type(GpuDType t) {
  switch (t) {
    case GpuDType::kBFloat16: return CUDA_R_16BF;
    case GpuDType::kFloat16: return CUDA_R_16F;
    default: return CUDA_R_32F;
  }
}

inline size_t elt_size(GpuDType t) { return t == GpuDType::kFloat32 ? 4 : 2; }

/// A grid of (blocks of 256 columns, rows) for row-wise elementwise kernels.
inline dim3 row_grid(int rows, int cols) {
  return dim3(unsigned(std::min((cols + 255) / 256, 64)), unsigned(std::min(rows, 65535)));
}

/// Launches kernel<<<grid, block, smem, s>>>(args...); with pdl, as a
/// programmatic dependent of the stream's previous kernel (it may start while
/// that one drains; the kernel must pdl_wait() before touching its data).
template <class... P, class... A>
void launch(bool pdl, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t s, A&&... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = s;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = pdl ? 1 : 0;
  check(cudaLaunchKernelEx(&cfg, kernel, static_cast<P>(args)...), "kernel launch");
}

/// n rounded up to a multiple of 16 (bytes of metadata blocks).
inline size_t align16(size_t n) { return (n + 15) / 16 * 16; }

}  // namespace gpu_util

}  // namespace qsweep::model::cuda
