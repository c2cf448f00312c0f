#pragma once
// The GPU of a node whose params say `device: cuda`: the CUDA plugin
// (quant/cuda_plugin.h), checked to see a usable device, and the node's
// first GPU slot (the runner's `resources.gpu`). Shared by the quantize and
// infer stages.

#include <nlohmann/json.hpp>
#include <string>

#include "pipeline/stage.h"
#include "quant/cuda_plugin.h"
#include "quant/layer_device.h"

namespace qsweep {

struct NodeGpu {
  const quant::CudaPlugin* plugin = nullptr;
  int device = 0;  ///< CUDA device ordinal for cudaSetDevice
  /// Runs a calibration stream's passes on this GPU (LayerStream::set_device);
  /// tf32: TF32 tensor cores for their GEMMs.
  quant::LayerDeviceFactory layer_device(bool tf32) const {
    return [p = plugin, d = device, tf32](const model::ModelConfig& c) { return p->make_layer_device(c, d, tf32); };
  }
};

/// params.device: "cpu" when absent or null.
std::string device_param(const nlohmann::json& params);
/// "" when params.device is cpu or cuda (absent: cpu), else the message.
std::string check_device_param(const nlohmann::json& params);
/// The default of a stage's `device` (Stage::resolve_defaults): when unset,
/// cuda for a node holding a GPU slot (resources.gpu >= 1) whose params can
/// use it (`uses_gpu`), else cpu. A key never depends on the machine that
/// plans the run: a GPU node gets cuda on any machine (and fails where no
/// GPU is visible), a CPU node cpu.
void default_device(nlohmann::json& params, const Resources& resources, bool uses_gpu);
/// The `device` param's doc line for a stage; `what`: what cuda runs.
std::string device_param_doc(const std::string& what);

/// Throws std::runtime_error naming the node and what to do when the plugin
/// is missing, no GPU is usable, or the node holds no GPU slot.
NodeGpu require_node_gpu(const StageContext& ctx);

}  // namespace qsweep
