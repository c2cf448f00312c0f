// Plan of a synthetic 10,000-node sweep, all cached: the phases in-process
// (load, expand, scan with cache check, plan) as Google Benchmarks, and the
// end-to-end `qsweep plan` / no-op `qsweep run` commands timed as processes.
//
//   bench_plan [--nodes-only] [google benchmark flags]
//
// The cache is populated once by running the sweep (10,100 `true` commands,
// ~1-2 min on 2 cores) in $TMPDIR/qsweep-bench-plan (kept between runs;
// delete it to start over). Needs QSWEEP_BIN (default ./build/qsweep).

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "bench/pipeline/sweep_gen.h"
#include "pipeline/expand.h"
#include "pipeline/plan.h"
#include "pipeline/scan.h"
#include "stages/registry.h"

namespace fs = std::filesystem;
using namespace qsweep;

namespace {

// 10 models x 10 recipes = 100 quantize nodes, x 100 tasks = 10,000 score nodes.
constexpr int k_models = 10, k_recipes = 10, k_tasks = 100;

fs::path work_dir() {
  const char* t = std::getenv("TMPDIR");
  return fs::path(t && *t ? t : "/tmp") / "qsweep-bench-plan";
}

std::string qsweep_bin() {
  const char* b = std::getenv("QSWEEP_BIN");
  return b && *b ? b : "./build/qsweep";
}

double time_command(const std::string& cmd) {
  auto t0 = std::chrono::steady_clock::now();
  int rc = std::system(cmd.c_str());
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (rc != 0) {
    std::fprintf(stderr, "command failed (%d): %s\n", rc, cmd.c_str());
    std::exit(1);
  }
  return s;
}

void setup() {
  fs::create_directories(work_dir());
  bench::write_sweep(work_dir() / "sweep.yaml", k_models, k_recipes, k_tasks);
  std::string cmd = qsweep_bin() + " run " + (work_dir() / "sweep.yaml").string() + " --cache " +
                    (work_dir() / "cache").string() + " --progress none";
  std::fprintf(stderr, "populating the cache (first time only): %s\n", cmd.c_str());
  double s = time_command(cmd);
  std::fprintf(stderr, "populated in %.1f s\n", s);
}

struct Loaded {
  std::unique_ptr<StageRegistry> reg = make_builtin_registry();
  Experiment e;
  Graph g;
};

void BM_LoadAndExpand(benchmark::State& state) {
  for (auto _ : state) {
    Loaded l;
    Diagnostics d;
    if (!load_experiment(work_dir() / "sweep.yaml", *l.reg, {}, &l.e, &d) ||
        !expand_experiment(l.e, *l.reg, &l.g, &d))
      state.SkipWithError(format_diagnostics(d).c_str());
    benchmark::DoNotOptimize(l.g.nodes.size());
    state.counters["nodes"] = static_cast<double>(l.g.nodes.size());
  }
}

void BM_ScanKeysOnly(benchmark::State& state) {
  Loaded l;
  Diagnostics d;
  load_experiment(work_dir() / "sweep.yaml", *l.reg, {}, &l.e, &d);
  expand_experiment(l.e, *l.reg, &l.g, &d);
  cache::FileDigestCache digests("");
  for (auto _ : state) {
    ScanResult s;
    scan_graph(l.g, digests, nullptr, &s, &d);
    benchmark::DoNotOptimize(s.nodes.data());
  }
}

void BM_ScanWithCacheCheck(benchmark::State& state) {
  Loaded l;
  Diagnostics d;
  load_experiment(work_dir() / "sweep.yaml", *l.reg, {}, &l.e, &d);
  expand_experiment(l.e, *l.reg, &l.g, &d);
  std::string err;
  auto store = cache::Store::open(work_dir() / "cache", &err);
  cache::FileDigestCache digests("");
  for (auto _ : state) {
    ScanResult s;
    scan_graph(l.g, digests, store.get(), &s, &d);
    Plan p = make_plan(l.g, s, {});
    if (!p.to_run.empty()) state.SkipWithError("cache not fully populated");
    benchmark::DoNotOptimize(p.n_cached);
  }
}

void BM_CliPlan(benchmark::State& state) {
  std::string cmd = qsweep_bin() + " plan " + (work_dir() / "sweep.yaml").string() + " --cache " +
                    (work_dir() / "cache").string() + " > /dev/null";
  for (auto _ : state) state.SetIterationTime(time_command(cmd));
}

void BM_CliNoopRun(benchmark::State& state) {
  std::string cmd = qsweep_bin() + " run " + (work_dir() / "sweep.yaml").string() + " --cache " +
                    (work_dir() / "cache").string() + " --progress none 2> /dev/null";
  for (auto _ : state) state.SetIterationTime(time_command(cmd));
}

BENCHMARK(BM_LoadAndExpand)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ScanKeysOnly)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ScanWithCacheCheck)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CliPlan)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK(BM_CliNoopRun)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(5);

}  // namespace

int main(int argc, char** argv) {
  setup();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
