// Quantized Linear kernels (quant/formats/quantized_linear_kernel.h) vs the
// fp32 DenseLinear on one Llama-7B up_proj-shaped layer, in 4096 -> out 11008
// (fp32 weights 180 MB, far larger than the 32 MB L3; int4 g128 22.5 MB,
// int8 45 MB). GEMV (one token) and a 16-token GEMM. Counter GB_per_s = weight bytes read per call / time.
// Threads: QSWEEP_BENCH_THREADS (default: all cores).

#include <benchmark/benchmark.h>
#include <tbb/task_arena.h>

#include <cstdlib>
#include <memory>
#include <random>
#include <thread>

#include "model/engine/linear.h"
#include "quant/formats/quantized_linear_kernel.h"

namespace qsweep::quant {
namespace {

constexpr int kIn = 4096, kOut = 11008;

int bench_threads() {
  const char* s = std::getenv("QSWEEP_BENCH_THREADS");
  const int n = s ? std::atoi(s) : 0;
  return n > 0 ? n : int(std::max(1u, std::thread::hardware_concurrency()));
}

tbb::task_arena& arena() {
  static tbb::task_arena a(bench_threads());
  return a;
}

/// Random codes (no quantizer run: a 45M-weight RTN would dominate start-up).
QuantizedLinear layer(int bits, int group, ActQuant act) {
  std::mt19937 rng(1);
  QuantizedLinear ql;
  ql.prefix = "bench";
  ql.bits = bits;
  ql.act = act;
  ql.strategy = group == -1 ? WeightStrategy::kChannel : WeightStrategy::kGroup;
  ql.weight = QuantizedWeight::sized(kOut, kIn, bits, group);
  std::uniform_int_distribution<int> code(0, (1 << bits) - 1);
  for (Eigen::Index i = 0; i < ql.weight.codes.size(); ++i) ql.weight.codes.data()[i] = code(rng);
  ql.weight.scale.setConstant(0.01f);
  ql.weight.zero.setConstant(float(1 << (bits - 1)));
  ql.weight.q.resize(0, 0);  // the kernels never read it
  return ql;
}

std::unique_ptr<model::Linear> make(int which) {
  switch (which) {
    case 0: {
      auto w = std::make_shared<model::AlignedVec>(size_t(kOut) * kIn);
      std::mt19937 rng(2);
      std::normal_distribution<float> d(0.0f, 0.02f);
      for (float& v : *w) v = d(rng);
      return std::make_unique<model::DenseLinear>(w, kOut, kIn);
    }
    case 1: return std::make_unique<QuantizedLinearKernel>(layer(4, 128, ActQuant::kNone));
    case 2: return std::make_unique<QuantizedLinearKernel>(layer(8, -1, ActQuant::kNone));
    default: return std::make_unique<QuantizedLinearKernel>(layer(8, -1, ActQuant::kInt8TokenDynamic));
  }
}

void BM_Linear(benchmark::State& st) {
  const int which = int(st.range(0)), n = int(st.range(1));
  static std::unique_ptr<model::Linear> cache[4];
  if (!cache[which]) cache[which] = make(which);
  const model::Linear& l = *cache[which];
  std::vector<float> x(size_t(n) * kIn), y(size_t(n) * kOut);
  std::mt19937 rng(3);
  std::normal_distribution<float> d(0.0f, 1.0f);
  for (float& v : x) v = d(rng);
  for (auto _ : st) {
    arena().execute([&] { l.forward(x.data(), y.data(), n); });
    benchmark::DoNotOptimize(y.data());
  }
  static const char* names[] = {"fp32_dense", "int4_g128", "int8_channel", "w8a8_int8"};
  st.SetLabel(names[which]);
  st.counters["GB_per_s"] = benchmark::Counter(double(l.weight_bytes()) * st.iterations(),
                                               benchmark::Counter::kIsRate);
  st.counters["GFLOP_per_s"] = benchmark::Counter(2.0 * kOut * kIn * n * st.iterations(),
                                                  benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Linear)
    ->ArgsProduct({{0, 1, 2, 3}, {1, 16}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(1.0);

}  // namespace
}  // namespace qsweep::quant

BENCHMARK_MAIN();
