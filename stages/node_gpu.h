#pragma once
// The GPU of a node whose params say `device: cuda`: the CUDA plugin
// (quant/cuda_plugin.h), checked to see a usable device, and the node's
// first GPU slot (the runner's `resources.gpu`). Shared by the quantize and
// infer stages.

#include "pipeline/stage.h"
#include "quant/cuda_plugin.h"

namespace qsweep {

struct NodeGpu {
  const quant::CudaPlugin* plugin = nullptr;
  int device = 0;  ///< CUDA device ordinal for cudaSetDevice
};

/// Throws std::runtime_error naming the node and what to do when the plugin
/// is missing, no GPU is usable, or the node holds no GPU slot.
NodeGpu require_node_gpu(const StageContext& ctx);

}  // namespace qsweep
