#pragma once
// Pass-level tools of the GPU engine: the per-phase device-time profiler
// ($QSWEEP_GPU_PROFILE) and the CUDA-graph cache that replays a pass whose
// shape and buffers were seen before (decode steps).
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "model/cuda/gpu_impl.h"
#include "model/cuda/gpu_util.cuh"

namespace qsweep::model::cuda {

/// With $QSWEEP_GPU_PROFILE set: device time per phase (cudaEvent pairs),
/// summed over passes and printed to stderr when the model is destroyed.
struct Profiler {
  bool on = std::getenv("QSWEEP_GPU_PROFILE") != nullptr;
  std::vector<std::pair<std::string, std::pair<cudaEvent_t, cudaEvent_t>>> open;
  std::map<std::string, double> total_ms;
  template <class F>
  void phase(const char* name, cudaStream_t s, F&& f) {
    if (!on) {
      f();
      return;
    }
    cudaEvent_t a, b;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    cudaEventRecord(a, s);
    f();
    cudaEventRecord(b, s);
    open.push_back({name, {a, b}});
  }
  void collect() {  // after a stream synchronize
    for (auto& [name, ev] : open) {
      float ms = 0;
      cudaEventElapsedTime(&ms, ev.first, ev.second);
      total_ms[name] += ms;
      cudaEventDestroy(ev.first);
      cudaEventDestroy(ev.second);
    }
    open.clear();
  }
  ~Profiler() {
    if (!on || total_ms.empty()) return;
    double all = 0;
    for (auto& [n, t] : total_ms) all += t;
    for (auto& [n, t] : total_ms) std::fprintf(stderr, "[gpu profile] %-14s %10.3f ms %5.1f%%\n", n.c_str(), t, 100 * t / all);
  }
};

/// Frees every captured graph of the cache.
inline void destroy_graphs(std::vector<GpuTransformer::Impl::Graph>& graphs) {
  for (auto& g : graphs)
    if (g.exec) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(g.exec));
  graphs.clear();
}

/// Replays the graph captured for `key`, or runs `enqueue` (capturing it as a
/// graph the second time the key is seen).
template <class F>
void replay_or_capture(GpuTransformer::Impl& m, const std::vector<uintptr_t>& key, F&& enqueue) {
  auto s = static_cast<cudaStream_t>(m.stream);
  auto& graphs = m.graphs;
  for (auto& g : graphs)
    if (g.key == key) {
      if (!g.exec) {  // second sight: capture
        cudaGraph_t graph = nullptr;
        check(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "graph capture");
        try {
          enqueue();
        } catch (...) {
          cudaStreamEndCapture(s, &graph);
          if (graph) cudaGraphDestroy(graph);
          throw;
        }
        check(cudaStreamEndCapture(s, &graph), "graph capture");
        cudaGraphExec_t exec = nullptr;
        check(cudaGraphInstantiate(&exec, graph, 0), "graph instantiate");
        cudaGraphDestroy(graph);
        g.exec = exec;
      }
      check(cudaGraphLaunch(static_cast<cudaGraphExec_t>(g.exec), s), "graph launch");
      return;
    }
  if (graphs.size() >= 16) destroy_graphs(graphs);  // shapes come and go (batched generation): start over
  graphs.push_back({key, nullptr});
  enqueue();
}

}  // namespace qsweep::model::cuda
