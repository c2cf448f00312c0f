// The GPU engine against Hugging Face transformers on the same card (issue
// #10): batched loglikelihood throughput on random-weight 110M- and 1B-class
// Llamas in fp32 and bf16, batch-1 bf16 decode vs the HBM bandwidth bound.
//
//   gpu_engine_bench [--quick] [--decode]   (--decode: the decode part only)
//
// Prefill: 16 requests of 1 context token + 512 continuation tokens in one
// pass (16 x 512 tokens in, every position scored on the device) — the work
// of transformers' forward on input_ids [16, 512] (scripts/bench/
// transformers_forward.py, run beside it). Decode: greedy, 16-token prompt,
// 256 new tokens, 1B-class bf16; bound = weight bytes per token / the
// device-to-device copy bandwidth measured here (read + write); with and
// without programmatic dependent launches ($QSWEEP_GPU_PDL=0).
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench/model/gpu_bench_util.h"
#include "bench/model/llama_110m.h"
#include "model/cuda/gpu_engine.h"

using namespace qsweep::model;
using namespace qsweep::model::cuda;

namespace {

/// Device-to-device copy bandwidth in bytes/s (read + write), 1 GiB, best of 5.
double copy_bandwidth() {
  const size_t n = size_t(1) << 30;
  void *a = nullptr, *b = nullptr;
  cudaMalloc(&a, n);
  cudaMalloc(&b, n);
  cudaMemset(a, 1, n);
  cudaMemcpy(b, a, n, cudaMemcpyDeviceToDevice);
  double best = 1e9;
  for (int r = 0; r < 5; ++r) {
    cudaDeviceSynchronize();
    const double t0 = now();
    cudaMemcpy(b, a, n, cudaMemcpyDeviceToDevice);
    cudaDeviceSynchronize();
    best = std::min(best, now() - t0);
  }
  cudaFree(a);
  cudaFree(b);
  return 2.0 * n / best;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, decode_only = false;
  for (int i = 1; i < argc; ++i) {
    quick = quick || std::strcmp(argv[i], "--quick") == 0;
    decode_only = decode_only || std::strcmp(argv[i], "--decode") == 0;
  }
  std::string why;
  if (!cuda_device_available(&why)) {
    std::fprintf(stderr, "gpu_engine_bench: %s\n", why.c_str());
    return 2;
  }
  const int reps = quick ? 2 : 5;
  struct Case {
    const char* name;
    ModelConfig cfg;
    GpuDType dt;
  };
  const std::vector<Case> cases = {{"110M", llama_110m(), GpuDType::kFloat32},
                                   {"110M", llama_110m(), GpuDType::kBFloat16},
                                   {"1B", llama_1b(), GpuDType::kFloat32},
                                   {"1B", llama_1b(), GpuDType::kBFloat16}};
  std::printf("# batched loglikelihood, 16 x 512 tokens, every position scored (median of %d)\n", reps);
  std::printf("%-6s %-9s %10s %12s\n", "model", "dtype", "seconds", "tokens/s");
  for (const Case& c : cases) {
    if (decode_only) break;
    GpuEngineOptions o;
    o.dtype = c.dt;
    o.max_batch_tokens = 16 * 512;
    const GpuEngine e(std::make_unique<GpuTransformer>(c.cfg, 1, 0.02f, o));
    const double t = prefill(e, 16, 512, reps);
    std::printf("%-6s %-9s %10.4f %12.0f\n", c.name, gpu_dtype_name(c.dt), t, 16 * 512 / t);
    std::fflush(stdout);
  }
  // Decode: kernels launched as programmatic dependents (default), then
  // ordinary launches ($QSWEEP_GPU_PDL=0) on the same weights.
  const double bw = copy_bandwidth();
  GpuEngineOptions o;
  o.dtype = GpuDType::kBFloat16;
  std::vector<int> prompt;
  for (int i = 0; i < 16; ++i) prompt.push_back(1000 + i * 17);
  const int n_new = 256;
  double bytes = 0;
  auto decode = [&](const char* env) {
    if (env) setenv("QSWEEP_GPU_PDL", env, 1);
    const GpuEngine e(std::make_unique<GpuTransformer>(llama_1b(), 1, 0.02f, o));
    unsetenv("QSWEEP_GPU_PDL");
    bytes = double(e.model().weight_bytes_per_token());
    return decode_seconds_per_token(e, prompt, n_new, reps);
  };
  const double t_tok = decode(nullptr), t_plain = decode("0");
  const double bound = bytes / bw;
  std::printf("\n# decode, 1B-class bf16, batch 1, %d new tokens after a 16-token prompt (median of %d)\n", n_new,
              reps);
  std::printf("weights read per token      %.3f GB\n", bytes / 1e9);
  std::printf("device copy bandwidth       %.0f GB/s (read + write)\n", bw / 1e9);
  std::printf("bandwidth bound             %.3f ms/token (%.0f tokens/s)\n", bound * 1e3, 1 / bound);
  std::printf("qsweep decode, without PDL  %.3f ms/token (%.0f tokens/s), %.2fx the bound\n", t_plain * 1e3,
              1 / t_plain, t_plain / bound);
  std::printf("qsweep decode               %.3f ms/token (%.0f tokens/s)\n", t_tok * 1e3, 1 / t_tok);
  std::printf("ratio to the bound          %.2fx (goal <= 1.5x)\n", t_tok / bound);
  return 0;
}
