// AWQ's searches on the CPU (Eigen GEMMs) and on the GPU
// (quant/cuda/awq_cuda.h) for one Linear of random weights and activations
// (groups of 128, 4 bits): seconds of each (the GPU after a warm-up call) and
// agreement —
//   - the clip search (SPECS.md A2.3; 512 of the tokens): the fraction of
//     (row, group)s whose chosen step agrees;
//   - the single-Linear scale search (A2.2, o_proj / down_proj; all tokens):
//     the chosen ratio.
//
//   awq_cuda_bench [N K TOKENS]   (default 4096 4096 2048)
#include <Eigen/Core>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "quant/awq_search.h"
#include "quant/cuda/awq_cuda.h"
#include "quant/cuda/gptq_cuda.h"

using namespace qsweep::quant;

namespace {

Eigen::MatrixXf normal(int rows, int cols, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  Eigen::MatrixXf m(rows, cols);
  for (int c = 0; c < cols; ++c)
    for (int r = 0; r < rows; ++r) m(r, c) = d(rng);
  return m;
}

double seconds(const std::chrono::steady_clock::time_point& t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 3 ? std::atoi(argv[1]) : 4096, k = argc > 3 ? std::atoi(argv[2]) : 4096,
            tokens = argc > 3 ? std::atoi(argv[3]) : 2048;
  std::string why;
  if (!cuda::available(&why)) {
    std::fprintf(stderr, "awq_cuda_bench: %s\n", why.c_str());
    return 2;
  }
  const Eigen::MatrixXf w = normal(n, k, 1, 0.02f), x = normal(tokens, k, 2, 1.0f);
  auto gpu = cuda::make_awq_searcher(0);
  gpu->best_clip(w.topRows(128), x, 4, 128, 20, 0.5f, 512);  // warm-up: context, cuBLAS handle
  auto t0 = std::chrono::steady_clock::now();
  const AwqClipResult g = gpu->best_clip(w, x, 4, 128, 20, 0.5f, 512);
  const double t_gpu = seconds(t0);
  t0 = std::chrono::steady_clock::now();
  const AwqClipResult c = awq_compute_best_clip(w, x, 4, 128, 20, 0.5f, 512);
  const double t_cpu = seconds(t0);
  const double same = double((g.best_step.array() == c.best_step.array()).count()) / double(c.best_step.size());
  std::printf("AWQ clip search %d x %d, %d tokens, g128 4-bit: CPU %.2f s (Eigen threads %d), GPU %.3f s "
              "(%s): %.1fx; steps equal for %.4f of %lld (row, group)s\n",
              n, k, g.tokens_used, t_cpu, Eigen::nbThreads(), t_gpu, cuda::device_description().c_str(),
              t_cpu / t_gpu, same, (long long)c.best_step.size());
  t0 = std::chrono::steady_clock::now();
  const AwqScaleResult sg = gpu->search_scale_linear(w, x, 4, 128, true, 20);
  const double s_gpu = seconds(t0);
  t0 = std::chrono::steady_clock::now();
  const AwqScaleResult sc = awq_search_scale_linear(w, x, 4, 128, true, 20);
  const double s_cpu = seconds(t0);
  std::printf("AWQ scale search %d x %d, %d tokens, 20 ratios: CPU %.2f s, GPU %.3f s: %.1fx; ratio %.2f (CPU %.2f)\n",
              n, k, tokens, s_cpu, s_gpu, s_cpu / s_gpu, sg.best_ratio, sc.best_ratio);
  return 0;
}
