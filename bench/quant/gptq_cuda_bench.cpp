// GPTQ on the GPU vs IST-DASLab's reference in PyTorch (issue #10 target 1):
// one 4096 x 4096 Linear, 128 x 2048 calibration tokens, fp32 without TF32,
// act-order and groups of 128. Prints the Hessian accumulation time (inputs
// already on the device, as in the reference's forward hooks; and from host
// memory, what qsweep's CPU-engine calibration feeds), then the quantization
// time split into upload / factorize / quantize / download.
// scripts/bench/gptq_reference.py measures the reference on the same card in
// the same run (scripts/bench/gptq_cuda_vs_reference.sh runs both).
//
//   gptq_cuda_bench [K=4096] [N=4096] [NSEQ=128] [SEQLEN=2048]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "quant/cuda/gptq_cuda.h"

using namespace qsweep::quant;
using Clock = std::chrono::steady_clock;

namespace {
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Fast deterministic N(0,1)-ish values (sum of uniforms): timing does not
// depend on the values, but the Hessian must be positive definite.
void fill(float* p, size_t n, uint64_t seed) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    float acc = 0;
    for (int j = 0; j < 4; ++j) {
      s ^= s << 13;
      s ^= s >> 7;
      s ^= s << 17;
      acc += float(s >> 40) * (1.0f / float(1 << 24));
    }
    p[i] = (acc - 2.0f) * 1.7320508f;
  }
}
}  // namespace

int main(int argc, char** argv) {
  const int k = argc > 1 ? std::atoi(argv[1]) : 4096;
  const int n = argc > 2 ? std::atoi(argv[2]) : 4096;
  const int nseq = argc > 3 ? std::atoi(argv[3]) : 128;
  const int seqlen = argc > 4 ? std::atoi(argv[4]) : 2048;
  std::string why;
  if (!cuda::available(&why)) {
    std::fprintf(stderr, "gptq_cuda_bench: %s\n", why.c_str());
    return 1;
  }
  std::printf("device: %s\n", cuda::device_description().c_str());
  std::printf("shape: W [%d, %d], %d x %d calibration tokens, fp32 (no TF32), act-order, group 128\n", n, k, nseq,
              seqlen);

  // One sequence's activations [seqlen, K] row-major, reused per batch with a
  // different seed for the device copy of all of them.
  std::vector<float> xs(size_t(seqlen) * k);
  float* xd = nullptr;
  const size_t all = size_t(nseq) * seqlen * k;
  if (cudaMalloc(&xd, all * sizeof(float)) != cudaSuccess) {
    std::fprintf(stderr, "gptq_cuda_bench: cannot allocate %.1f GiB for the activations\n", all * 4.0 / (1 << 30));
    return 1;
  }
  for (int s = 0; s < nseq; ++s) {
    fill(xs.data(), xs.size(), s + 1);
    cudaMemcpy(xd + size_t(s) * seqlen * k, xs.data(), xs.size() * sizeof(float), cudaMemcpyHostToDevice);
  }
  {  // warm-up (cuBLAS handle, kernels)
    cuda::HessianAccumulatorCuda warm(k);
    warm.add_batch_rows_device(xd, seqlen, 1);
    warm.take();
  }
  cuda::HessianAccumulatorCuda acc(k);
  auto t0 = Clock::now();
  for (int s = 0; s < nseq; ++s) acc.add_batch_rows_device(xd + size_t(s) * seqlen * k, seqlen, 1);
  cudaDeviceSynchronize();
  const double t_h_dev = since(t0);
  Eigen::MatrixXf h = acc.take();
  cudaFree(xd);

  cuda::HessianAccumulatorCuda acc2(k);
  t0 = Clock::now();
  for (int s = 0; s < nseq; ++s) {
    // (the same host buffer each time: the copy is what is measured)
    acc2.add_batch_rows(xs.data(), seqlen, 1);
  }
  cudaDeviceSynchronize();
  const double t_h_host = since(t0);

  Eigen::MatrixXf w(n, k);
  fill(w.data(), size_t(n) * k, 12345);
  w *= 0.02f;
  GptqConfig cfg;
  cfg.bits = 4;
  cfg.group_size = 128;
  cfg.act_order = true;
  cfg.percdamp = 0.01f;
  QuantizedWeight q;
  std::string err;
  cuda::GptqCudaTimes tw;
  cuda::gptq_quantize_cuda(w.leftCols(256).topRows(256), h.topLeftCorner(256, 256), cfg, &q, &err, &tw);  // warm-up
  cuda::GptqCudaTimes t;
  t0 = Clock::now();
  if (!cuda::gptq_quantize_cuda(w, h, cfg, &q, &err, &t)) {
    std::fprintf(stderr, "gptq_cuda_bench: %s\n", err.c_str());
    return 1;
  }
  const double t_q = since(t0);
  std::printf("qsweep hessian (inputs on the device): %.3f s\n", t_h_dev);
  std::printf("qsweep hessian (inputs from host memory): %.3f s\n", t_h_host);
  std::printf("qsweep quantize (gptq_quantize_cuda, host H and W in, host Q out): %.3f s "
              "[host prep %.3f, upload %.3f, factorize %.3f, quantize %.3f, download %.3f]\n",
              t_q, t.prep, t.upload, t.factorize, t.quantize, t.download);
  std::printf("qsweep layer total (device inputs): %.3f s\n", t_h_dev + t_q);
  std::printf("output error tr(dW H dW^T): %.6g\n", output_error(q.q, w, h));
  return 0;
}
