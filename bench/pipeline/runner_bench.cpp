// Runner overhead per trivial node: N independent nodes of an in-process
// stage that writes one 8-byte file, run by the TBB runner through the real
// store (lock, tmp dir, hash, manifest, fsync, rename, journal). Reported per
// node, on tmpfs (/dev/shm: fsync is free, so this is qsweep's own overhead)
// and on the disk under $TMPDIR (what a user's disk adds).

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>

#include "pipeline/expand.h"
#include "pipeline/runner.h"

namespace fs = std::filesystem;
using namespace qsweep;

namespace {

class TinyStage : public Stage {
 public:
  std::string kind() const override { return "tiny"; }
  int64_t version() const override { return 1; }
  std::string description() const override { return "writes 8 bytes"; }
  std::vector<ParamSpec> params() const override { return {{"i", ParamType::kInt, true, nullptr, "index"}}; }
  void run(StageContext& ctx) const override { std::ofstream(ctx.output_dir / "x") << "01234567"; }
};

void run_nodes(benchmark::State& state, const fs::path& base) {
  const int n = static_cast<int>(state.range(0));
  StageRegistry reg;
  reg.add(std::make_unique<TinyStage>());
  fs::path dir = base / ("qsweep-bench-runner-" + std::to_string(getpid()));
  fs::create_directories(dir);
  {
    std::ofstream f(dir / "exp.yaml");
    f << "version: 1\nname: bench\nmodels:\n";
    for (int i = 0; i < n; ++i) f << "  m" << i << ": {i: " << i << "}\n";
    f << "stages:\n  - {name: s, kind: tiny, matrix: {model: '*'}, params: {i: '${model.i}'}}\n";
  }
  Experiment e;
  Graph g;
  Diagnostics d;
  if (!load_experiment(dir / "exp.yaml", reg, {}, &e, &d) || !expand_experiment(e, reg, &g, &d)) {
    state.SkipWithError(format_diagnostics(d).c_str());
    return;
  }
  double total_s = 0;
  for (auto _ : state) {
    state.PauseTiming();
    fs::remove_all(dir / "cache");
    std::string err;
    auto store = cache::Store::open(dir / "cache", &err);
    cache::Journal journal(store->journal_path());
    cache::FileDigestCache digests("");
    ScanResult scan;
    scan_graph(g, digests, store.get(), &scan, &d);
    Plan plan = make_plan(g, scan, {});
    auto view = make_null_progress();
    RunOptions o;
    o.capacity = machine_capacity({});
    o.run_id = "bench";
    Runner r(g, scan, plan, *store, journal, *view, o);
    std::atomic<int> cancel{0};
    state.ResumeTiming();
    auto t0 = std::chrono::steady_clock::now();
    RunSummary s = r.run(cancel);
    total_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s.done != static_cast<size_t>(n)) state.SkipWithError(s.text().c_str());
  }
  state.counters["us_per_node"] = total_s * 1e6 / (static_cast<double>(n) * state.iterations());
  state.counters["threads"] = machine_capacity({}).threads;
  fs::remove_all(dir);
}

void BM_RunnerTmpfs(benchmark::State& state) { run_nodes(state, "/dev/shm"); }
void BM_RunnerDisk(benchmark::State& state) {
  const char* t = std::getenv("TMPDIR");
  run_nodes(state, t && *t ? t : "/var/tmp");
}

BENCHMARK(BM_RunnerTmpfs)->Arg(2000)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_RunnerDisk)->Arg(500)->Unit(benchmark::kMillisecond)->Iterations(2);

}  // namespace

BENCHMARK_MAIN();
