#pragma once
// A two-row table (model m: baseline BF16 and q4; tasks arc and gsm) shared
// by the table, reproduction and HTML tests. Values (score units):
//   baseline  arc acc_norm 0.50 (stderr 0.010), gsm strict 0.20 (0.040)
//   q4        arc acc_norm 0.45 (stderr 0.015), gsm strict 0.25 (0.043)
// q4 also has arc acc 0.42. Models: the baseline bfloat16, 1000 params,
// 2000 bytes on disk; q4 GPTQ (autogptq) 4-bit weights, 600 bytes.

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "scoring/tables/table.h"

namespace qsweep::scoring::tables {

inline ScoreInput score(const std::string& node, std::vector<std::pair<std::string, std::string>> axes,
                        bool baseline, const std::string& task, nlohmann::json metrics) {
  ScoreInput s;
  s.node = node;
  s.key = "k-" + axes[0].second + (axes.size() > 2 ? "-" + axes[1].second : "") + "-" + task;
  s.axes = std::move(axes);
  s.baseline = baseline;
  s.task = task;
  s.summary = {{task, std::move(metrics)}};
  s.checkpoint_node = baseline ? "hf[m]" : "quantize[m,q4]";
  s.provenance = {{"score_node", node}, {"score_key", s.key}};
  return s;
}

inline std::vector<ScoreInput> two_row_scores() {
  using json = nlohmann::json;
  auto m = [](double v, double se) { return json{{"value", v}, {"stderr", se}, {"samples", 100}}; };
  return {
      score("score_fp16[m,arc]", {{"model", "m"}, {"task", "arc"}}, true, "arc",
            {{"acc_norm,none", m(0.50, 0.010)}, {"acc,none", m(0.48, 0.010)}}),
      score("score_fp16[m,gsm]", {{"model", "m"}, {"task", "gsm"}}, true, "gsm",
            {{"exact_match,strict-match", m(0.20, 0.040)}, {"exact_match,flexible-extract", m(0.22, 0.041)}}),
      score("score[m,q4,arc]", {{"model", "m"}, {"recipe", "q4"}, {"task", "arc"}}, false, "arc",
            {{"acc_norm,none", m(0.45, 0.015)}, {"acc,none", m(0.42, 0.015)}}),
      score("score[m,q4,gsm]", {{"model", "m"}, {"recipe", "q4"}, {"task", "gsm"}}, false, "gsm",
            {{"exact_match,strict-match", m(0.25, 0.043)}, {"exact_match,flexible-extract", m(0.26, 0.043)}}),
  };
}

inline std::vector<ModelInput> two_row_models() {
  ModelInput base;
  base.node = "hf[m]";
  base.axes = {{"model", "m"}};
  base.dtype = "bfloat16";
  base.params = 1000;
  base.measured_bytes = 2000;
  ModelInput q;
  q.node = "quantize[m,q4]";
  q.axes = {{"model", "m"}, {"recipe", "q4"}};
  q.dtype = "bfloat16";
  q.measured_bytes = 600;
  q.method = {{"name", "gptq"}, {"preset", "autogptq"}, {"w_bits", 4}, {"a_bits", nullptr}};
  return {base, q};
}

inline Layout layout_mr() {
  Layout l;
  l.rows = {"model", "recipe"};
  return l;
}

}  // namespace qsweep::scoring::tables
