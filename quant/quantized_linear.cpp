#include "quant/quantized_linear.h"

namespace qsweep::quant {

const char* weight_strategy_name(WeightStrategy s) {
  switch (s) {
    case WeightStrategy::kTensor: return "tensor";
    case WeightStrategy::kChannel: return "channel";
    case WeightStrategy::kGroup: return "group";
  }
  return "?";
}

const char* act_quant_name(ActQuant a) {
  switch (a) {
    case ActQuant::kNone: return "none";
    case ActQuant::kInt8TokenDynamic: return "int8-token-dynamic";
    case ActQuant::kFp8TokenDynamic: return "fp8-token-dynamic";
    case ActQuant::kFp8TensorStatic: return "fp8-tensor-static";
  }
  return "?";
}

}  // namespace qsweep::quant
