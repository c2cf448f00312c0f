#pragma once
// The `calibrate` stage (issue #4): builds a calibration set from a dataset
// with a reference tool's sampling procedure and collects the fp model's
// activation statistics on it. Every quantize node with the same model and
// calibration settings shares its artifact.
//
//   - name: calib
//     kind: calibrate
//     matrix: {model: "*"}
//     inputs: {checkpoint: "fetch[${model}]", dataset: "file:data/calib.jsonl"}
//     params: {preset: autoawq}          # n_samples / seq_len / seed: the preset's
//
// Inputs: `checkpoint` (a model folder artifact; its tokenizer and weights),
// `dataset` (a .jsonl/.json/.txt file, or an artifact holding one; documents
// that are conversations go through the model's chat template).
// Output: calibration.json {format 1, preset, n_samples, seq_len, seed,
// text_field, documents, documents_used, sequences, tokens, model: {...}},
// tokens.json {"seqs": [[ids...], ...]}, stats.safetensors (quant/calibrate.h).

#include "pipeline/stage.h"

namespace qsweep {

class CalibrateStage : public Stage {
 public:
  std::string kind() const override { return "calibrate"; }
  int64_t version() const override { return 2; }
  std::string description() const override;
  std::vector<ParamSpec> params() const override;
  Resources default_resources() const override;
  void resolve_defaults(nlohmann::json& params, const Resources& resources) const override;
  std::string check_params(const nlohmann::json& params) const override;
  void run(StageContext& ctx) const override;
};

/// The calibration settings of `params` with the preset's defaults filled in.
struct CalibSettings {
  std::string preset;
  int n_samples = 0, seq_len = 0;
  uint64_t seed = 0;
};
CalibSettings resolve_calib_settings(const nlohmann::json& params);

}  // namespace qsweep
