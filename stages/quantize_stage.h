#pragma once
// The `quantize` stage (issue #4): post-training quantization of a Hugging
// Face checkpoint artifact, streamed one decoder layer at a time, into a
// checkpoint that vLLM and the embedded engine load.
//
//   - name: quantize
//     kind: quantize
//     matrix: {model: "*", recipe: "*"}
//     inputs: {checkpoint: "fetch[${model}]", calibration: "calib[${model}]"}
//     params: {method: gptq, bits: 4, group_size: 128, format: compressed-tensors}
//
// Inputs: `checkpoint` (a model folder at the artifact's root or in its one
// sub-folder); `calibration` (a calibrate artifact: tokens.json for GPTQ/AWQ,
// stats.safetensors for SmoothQuant and static FP8) — required by every method
// but rtn and fp8 FP8_DYNAMIC. Parameters and presets: stages/quant_recipe.h.
//
// Resumable: finished decoder layers are kept in the node's scratch dir; a
// killed or failed node restarts after the last finished layer.
//
// Output: the sharded quantized model folder (quant/quantize_model.h) and
// quantize.json: {format 1, recipe: {...resolved settings}, source: REL,
// quantized: [prefix...], kept: [prefix...], layers_resumed, notes: [...]}.

#include "pipeline/stage.h"

namespace qsweep {

class QuantizeStage : public Stage {
 public:
  std::string kind() const override { return "quantize"; }
  int64_t version() const override { return 3; }
  std::string description() const override;
  std::vector<ParamSpec> params() const override;
  Resources default_resources() const override;
  void resolve_defaults(nlohmann::json& params, const Resources& resources) const override;
  std::string check_params(const nlohmann::json& params) const override;
  void run(StageContext& ctx) const override;
};

}  // namespace qsweep
