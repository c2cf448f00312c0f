#pragma once
// The GPU of a node whose params say `device: cuda`: the CUDA plugin
// (quant/cuda_plugin.h), checked to see a usable device, and the node's
// first GPU slot (the runner's `resources.gpu`). Shared by the quantize and
// infer stages.

#include <nlohmann/json.hpp>
#include <string>

#include "pipeline/stage.h"
#include "quant/cuda_plugin.h"
#include "quant/layer_stream.h"

namespace qsweep {

struct NodeGpu {
  const quant::CudaPlugin* plugin = nullptr;
  int device = 0;  ///< CUDA device ordinal for cudaSetDevice
  /// Moves a calibration stream's GEMMs to this GPU (LayerStream::set_offload).
  quant::LayerStream::Offload offload() const {
    return [p = plugin, d = device](std::unique_ptr<model::Linear> l) { return p->gpu_linear(std::move(l), d); };
  }
};

/// "" when params.device is cpu or cuda (absent: cpu), else the message.
std::string check_device_param(const nlohmann::json& params);

/// Throws std::runtime_error naming the node and what to do when the plugin
/// is missing, no GPU is usable, or the node holds no GPU slot.
NodeGpu require_node_gpu(const StageContext& ctx);

}  // namespace qsweep
