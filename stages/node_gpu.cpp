#include "stages/node_gpu.h"

#include <stdexcept>
#include <string>

namespace qsweep {

std::string check_device_param(const nlohmann::json& p) {
  const std::string d = p.value("device", std::string("cpu"));
  return d == "cpu" || d == "cuda" ? "" : "params.device: '" + d + "' is not cpu or cuda";
}

NodeGpu require_node_gpu(const StageContext& ctx) {
  std::string why;
  const quant::CudaPlugin* cuda = quant::cuda_plugin(&why);
  if (!cuda) throw std::runtime_error(ctx.node_id + ": params.device is cuda but " + why + "; or set device: cpu");
  if (!cuda->available(&why))
    throw std::runtime_error(ctx.node_id + ": params.device is cuda but " + why +
                             "; run it where a GPU is visible, or set device: cpu");
  if (ctx.resources.gpu < 1 || ctx.gpu_ids.empty())
    throw std::runtime_error(ctx.node_id + ": params.device is cuda: give the stage `resources: {gpu: 1}` so "
                             "the runner reserves a GPU for it");
  return {cuda, ctx.gpu_ids.front()};
}

}  // namespace qsweep
