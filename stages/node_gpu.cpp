#include "stages/node_gpu.h"

#include <stdexcept>
#include <string>

namespace qsweep {

std::string device_param(const nlohmann::json& p) {
  return p.contains("device") && p["device"].is_string() ? p["device"].get<std::string>() : "cpu";
}

void default_device(nlohmann::json& params, const Resources& r, bool uses_gpu) {
  if (!params.contains("device") || params["device"].is_null()) params["device"] = r.gpu >= 1 && uses_gpu ? "cuda" : "cpu";
}

std::string device_param_doc(const std::string& what) {
  return "cpu | cuda (default: cuda when the node holds a GPU slot, resources: {gpu: 1}, else cpu): cuda runs " +
         what + " on the node's GPU (a CUDA build; docs/gpu.md)";
}

std::string check_device_param(const nlohmann::json& p) {
  if (p.contains("device") && !p["device"].is_null() && !p["device"].is_string()) return "params.device: expected cpu or cuda";
  const std::string d = device_param(p);
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
