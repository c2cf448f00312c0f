#include "model/cuda/gpu_options.h"

#include <stdexcept>

namespace qsweep::model::cuda {

GpuDType parse_gpu_dtype(const std::string& s) {
  if (s == "float32" || s == "fp32") return GpuDType::kFloat32;
  if (s == "bfloat16" || s == "bf16") return GpuDType::kBFloat16;
  if (s == "float16" || s == "fp16") return GpuDType::kFloat16;
  throw std::invalid_argument("unknown dtype '" + s + "' (float32, bfloat16, float16)");
}

const char* gpu_dtype_name(GpuDType t) {
  switch (t) {
    case GpuDType::kBFloat16: return "bfloat16";
    case GpuDType::kFloat16: return "float16";
    default: return "float32";
  }
}

}  // namespace qsweep::model::cuda
