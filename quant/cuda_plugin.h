#pragma once
// Loading the GPU code (libqsweep_cuda.so, built from quant/cuda/ when the
// CUDA toolkit is found) at run time, only when a stage asks for a GPU. The
// plugin is looked up in $QSWEEP_CUDA_PLUGIN, then next to the running
// executable. No CUDA headers or libraries here.

#include <memory>
#include <string>

#include "model/cuda/gpu_options.h"
#include "model/engine/token_engine.h"
#include "quant/awq_search.h"
#include "quant/gptq_solver.h"
#include "quant/layer_device.h"

namespace qsweep::model {
class Checkpoint;
}

namespace qsweep::quant {

inline constexpr int k_cuda_plugin_abi = 7;  ///< bump when GptqSolver / AwqSearcher / HessianSink / TokenEngine / LayerDevice / Linear kinds change

/// The loaded plugin's functions; loaded once per process.
struct CudaPlugin {
  std::string path;
  bool (*available)(std::string* why) = nullptr;
  std::string (*device_description)() = nullptr;
  std::unique_ptr<GptqSolver> (*make_gptq_solver)(int device) = nullptr;
  /// AWQ's clip search on `device` (quant/cuda/awq_cuda.h).
  std::unique_ptr<AwqSearcher> (*make_awq_searcher)(int device) = nullptr;
  /// The GPU engine (model/cuda/gpu_engine.h) of a checkpoint; throws
  /// std::runtime_error with the plugin's message.
  std::unique_ptr<model::TokenEngine> (*make_engine)(const model::Checkpoint& ckpt,
                                                     const model::cuda::GpuEngineOptions& opts) = nullptr;
  /// The calibration passes of a model on `device` (quant/cuda/layer_cuda.h);
  /// `tf32`: TF32 tensor cores for the GEMMs. Throws std::runtime_error with
  /// the plugin's message.
  std::unique_ptr<LayerDevice> (*make_layer_device)(const model::ModelConfig& c, int device, bool tf32) = nullptr;
};

/// The plugin, or nullptr and *err saying why (not built: no CUDA toolkit at
/// build time; a dlopen error; an ABI mismatch).
const CudaPlugin* cuda_plugin(std::string* err);

}  // namespace qsweep::quant
