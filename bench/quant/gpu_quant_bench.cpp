// Quantized checkpoints on the GPU engine (issue #10): for each model folder
// given, loaded as the infer stage does (quant::gpu_engine_linear_loader:
// weight-only layers on the int4/int8 weight-only kernels — or, with
// QSWEEP_GPU_WEIGHT_ONLY=dense, their exact weights dense —, W8A8 int8 and
// FP8 layers on int8 / FP8 tensor-core GEMMs), the load time (host decoding
// and upload), the device bytes read per token, the batched loglikelihood
// throughput (16 x 512 tokens, every position scored; median of 3) and
// batch-1 greedy decode
// (16-token prompt, 128 new tokens; median of 3), bf16 compute.
//
//   gpu_quant_bench DIR [DIR...]   (e.g. the unquantized model, then its W8A8 and FP8 folders)
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/model/gpu_bench_util.h"
#include "model/checkpoint/checkpoint.h"
#include "model/cuda/gpu_engine.h"
#include "quant/formats/quantized_loader.h"

using namespace qsweep::model;
using namespace qsweep::model::cuda;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: gpu_quant_bench DIR [DIR...]\n");
    return 2;
  }
  std::string why;
  if (!cuda_device_available(&why)) {
    std::fprintf(stderr, "gpu_quant_bench: %s\n", why.c_str());
    return 2;
  }
  std::printf("%-60s %8s %12s %14s %12s\n", "checkpoint", "load s", "GB/token", "prefill tok/s", "decode ms");
  for (int i = 1; i < argc; ++i) {
    GpuEngineOptions o;
    o.dtype = GpuDType::kBFloat16;
    const auto t0 = std::chrono::steady_clock::now();
    const auto e = GpuEngine::load(Checkpoint(argv[i]), o, qsweep::quant::gpu_engine_linear_loader());
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double t = prefill(*e, 16, 512, 3);
    std::vector<int> prompt;
    for (int k = 0; k < 16; ++k) prompt.push_back(1000 + k * 17);
    const double d = decode_seconds_per_token(*e, prompt, 128, 3);
    std::printf("%-60s %8.1f %12.3f %14.0f %12.3f\n", argv[i], load_s, e->model().weight_bytes_per_token() / 1e9,
                16 * 512 / t, d * 1e3);
    std::fflush(stdout);
  }
  return 0;
}
