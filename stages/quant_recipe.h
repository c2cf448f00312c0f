#pragma once
// The quantize stage's parameters resolved into a quant::LayerRecipe: the
// method, its reference tool preset (every tool default is a named preset),
// explicit overrides, the activation scheme and the checkpoint format.
//
// Presets (SPECS.md A1-A4):
//   rtn          -            4-bit g128 sym (AutoGPTQ quantizer)
//   gptq         autogptq     damp 0.01, dynamic groups, true-sequential, g128 sym
//                transformers damp 0.1 (the paper's AutoGPTQ runs through transformers)
//                llmcompressor damp 0.01, scales from the original weights (static groups)
//   awq          autoawq      4-bit g128 zero point, duo scaling, n_grid 20, clip
//   smoothquant  original     alpha 0.5, max|x| formula, W8A8 int8 RTN amax/127
//                llmcompressor alpha 0.5, (max-min) formula, W8A8 int8 RTN amax/127.5
//   fp8          FP8          per-tensor weights + static per-tensor activations
//                FP8_DYNAMIC  per-channel weights + dynamic per-token activations
// Chaining as llm-compressor: `smoothquant_alpha` on rtn/gptq smooths first
// (llm-compressor formula), e.g. gptq W8A8 after SmoothQuant 0.8.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pipeline/stage.h"
#include "quant/formats/format.h"
#include "quant/layer_methods.h"

namespace qsweep {

struct ResolvedRecipe {
  std::string method, preset;
  std::string device = "cpu";  ///< cpu | cuda (GPTQ's Hessians and solves)
  quant::LayerRecipe recipe;
  quant::CheckpointFormat format = quant::CheckpointFormat::kCompressedTensors;
  bool skip_incompatible = false;
  nlohmann::json summary;      ///< every resolved setting (quantize.json, outputs)
  nlohmann::json tool_fields;  ///< extra quantization_config keys (gptq: damp_percent, ...)
};

/// The ParamSpecs of the quantize stage.
std::vector<ParamSpec> quantize_param_specs();

/// Throws std::runtime_error "params.<field>: ..." on bad values/combinations.
ResolvedRecipe resolve_recipe(const nlohmann::json& params);

/// Whether `method` has calibration passes that device: cuda runs on the GPU
/// (gptq, awq; a smoothquant_alpha chained before gptq included).
bool method_uses_gpu(const std::string& method);

}  // namespace qsweep
