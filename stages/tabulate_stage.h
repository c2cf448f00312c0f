#pragma once
// The `tabulate` stage (issue #7): score artifacts of a sweep laid out as
// the study's tables (scoring/tables/), in Markdown, CSV, LaTeX, JSON and a
// self-contained HTML report, optionally checked against a manifest of
// published numbers (docs/results.md).
//
//   - name: tables
//     kind: tabulate
//     inputs:
//       baseline: ["score_fp32[*]"]      # rows compared against (optional)
//       scores: ["score[*]"]
//       models: ["hf[*]", "quantize[*]"] # bits and sizes (optional)
//       manifest: file:manifest.yaml     # published cells (optional)
//     params: {rows: [model, recipe], column: task, group: model}
//
// Output: table.md, table.csv, table.tex, table.json, report.html and, with a
// manifest, reproduction.json and reproduction.md. Row labels come from the
// score nodes' matrix axes, so the node ids enter the key
// (keys_input_identity).

#include "pipeline/stage.h"

namespace qsweep {

class TabulateStage : public Stage {
 public:
  std::string kind() const override { return "tabulate"; }
  int64_t version() const override { return 1; }
  std::string description() const override;
  std::vector<ParamSpec> params() const override;
  std::string check_params(const nlohmann::json& params) const override;
  std::string check_file_input(const std::string& input,
                               const std::filesystem::path& path) const override;
  bool keys_input_identity() const override { return true; }
  void run(StageContext& ctx) const override;
};

}  // namespace qsweep
