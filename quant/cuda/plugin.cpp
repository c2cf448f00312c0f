// libqsweep_cuda.so: the GPU code as a plugin that qsweep loads only when a
// stage asks for a GPU (quant/cuda_plugin.h), so the qsweep executable and
// every process it starts (stages, `qsweep exec-node` in a Slurm job with a
// --mem limit) stay free of the CUDA libraries' hundreds of MiB.
// C entry points; ABI version k_cuda_plugin_abi (quant/cuda_plugin.h).
#include <cstdio>
#include <cstring>

#include "model/cuda/gpu_engine.h"
#include "quant/cuda/awq_cuda.h"
#include "quant/cuda/gptq_cuda.h"
#include "quant/cuda/layer_cuda.h"
#include "quant/formats/quantized_loader.h"
#include "quant/cuda_plugin.h"

extern "C" {

int qsweep_cuda_abi_version() { return qsweep::quant::k_cuda_plugin_abi; }

int qsweep_cuda_available(char* why, size_t n) {
  std::string w;
  const bool ok = qsweep::quant::cuda::available(&w);
  std::snprintf(why, n, "%s", w.c_str());
  return ok ? 1 : 0;
}

void qsweep_cuda_device_description(char* out, size_t n) {
  std::snprintf(out, n, "%s", qsweep::quant::cuda::device_description().c_str());
}

qsweep::quant::GptqSolver* qsweep_cuda_make_gptq_solver(int device) {
  return qsweep::quant::cuda::make_gptq_solver(device).release();
}

qsweep::quant::AwqSearcher* qsweep_cuda_make_awq_searcher(int device) {
  return qsweep::quant::cuda::make_awq_searcher(device).release();
}

// The GPU engine of a checkpoint, or nullptr with the error in `err`.
qsweep::model::TokenEngine* qsweep_cuda_make_engine(const qsweep::model::Checkpoint* ckpt,
                                                    const qsweep::model::cuda::GpuEngineOptions* opts, char* err,
                                                    size_t n) {
  try {
    // Quantized checkpoints: weight-only layers on the weight-only kernels,
    // activation-quantized ones (W8A8, FP8) on integer / FP8 tensor-core GEMMs.
    return qsweep::model::cuda::GpuEngine::load(*ckpt, *opts, qsweep::quant::gpu_engine_linear_loader()).release();
  } catch (const std::exception& e) {
    std::snprintf(err, n, "%s", e.what());
    return nullptr;
  }
}

// The calibration passes' device, or nullptr with the error in `err`.
qsweep::quant::LayerDevice* qsweep_cuda_make_layer_device(const qsweep::model::ModelConfig* c, int device, int tf32,
                                                          char* err, size_t n) {
  try {
    return qsweep::quant::cuda::make_layer_device(*c, device, tf32 != 0).release();
  } catch (const std::exception& e) {
    std::snprintf(err, n, "%s", e.what());
    return nullptr;
  }
}
}
