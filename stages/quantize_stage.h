#pragma once
// The `quantize` stage (issue #4, first slice): weight-only post-training
// quantization of a Hugging Face checkpoint artifact into a checkpoint that
// vLLM and the embedded engine load.
//
//   - name: quantize
//     kind: quantize
//     matrix: {model: "*"}
//     inputs: {checkpoint: "fetch[${model}]"}
//     params: {method: rtn, bits: 4, group_size: 128}
//
// Input `checkpoint`: one artifact holding a model folder (config.json +
// safetensors) at its root or in exactly one sub-folder (a `download` of a
// repo sub-folder keeps its path).
//
// Implemented: method `rtn` (round-to-nearest with the AutoGPTQ quantizer,
// SPECS.md A1.4) written as `format: gptq` (AutoGPTQ v1, SPECS.md A5.1) by
// quant/gptq_checkpoint.h. The other methods (gptq, awq, smoothquant, fp8)
// and formats (compressed-tensors, awq) are rejected by check_params as not
// implemented yet. Not streaming yet: the whole model is held in memory.
//
// Output: model.safetensors, config.json (with quantization_config),
// quantize_config.json, the source's tokenizer and generation config files,
// and quantize.json:
//   { "format": 1, "method": "rtn", "checkpoint_format": "gptq", "bits", "group_size",
//     "sym", "source": REL-OR-".", "quantized": [PREFIX...], "skipped": [PREFIX...] }

#include "pipeline/stage.h"

namespace qsweep {

class QuantizeStage : public Stage {
 public:
  std::string kind() const override { return "quantize"; }
  int64_t version() const override { return 1; }
  std::string description() const override;
  std::vector<ParamSpec> params() const override;
  std::string check_params(const nlohmann::json& params) const override;
  void run(StageContext& ctx) const override;
};

}  // namespace qsweep
