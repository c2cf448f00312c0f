#pragma once
// The `score` stage (issue #5): metrics of an answered task, as lm-eval
// v0.4.4 computes them (scoring/results.h).
//
//   - name: score
//     kind: score
//     matrix: {model: "*", task: "*"}
//     inputs: {infer: "infer[${model},${task}]"}
//
// Inputs: `infer` (an infer artifact: eval_set.json, responses.jsonl,
// task.yaml, infer.json); optional `task` (a task file overriding the copy
// in the infer artifact, e.g. to re-score with other filters or metrics
// without recomputing a request — the requests themselves must not change).
//
// Output: results.json (lm-eval's layout, see docs/scoring.md "Results"),
// samples.jsonl (one record per doc), summary.json (flat metrics with
// stderr, for tables), score.md (a human-readable table) and rows.tsv (the
// task's top-level metrics as tab-separated lines: node, task, metric,
// value, stderr, samples, limit).

#include "pipeline/stage.h"

namespace qsweep {

class ScoreStage : public Stage {
 public:
  std::string kind() const override { return "score"; }
  int64_t version() const override { return 1; }
  std::string description() const override;
  std::vector<ParamSpec> params() const override;
  std::string check_params(const nlohmann::json& params) const override;
  std::string check_file_input(const std::string& input,
                               const std::filesystem::path& path) const override;
  void run(StageContext& ctx) const override;
};

}  // namespace qsweep
