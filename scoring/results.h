#pragma once
// Scores an answered EvalSet as lm-eval v0.4.4 does: per-document metrics
// (process_results: acc / acc_norm, mc2, Winogrande partial scoring,
// exact_match after the task's filter chains), their aggregation with
// stderr (per subtask and for the task as a group), per-sample records and an
// lm-eval-compatible results.json. See docs/scoring.md, "Results".

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "scoring/eval_set.h"
#include "scoring/task.h"

namespace qsweep::scoring {

/// What the results.json `config` block says about the run.
struct RunInfo {
  std::string model;        // e.g. the model node id / path
  std::string model_args;   // backend settings, human readable
  std::string backend;      // backend fingerprint
  nlohmann::json extra = nlohmann::json::object();  // merged into `config`
  /// lm-eval --bootstrap_iters (100000): the bootstrap of a `perplexity`
  /// stderr; <= 0 makes every stderr "N/A", as lm-eval.
  int bootstrap_iters = 100000;
};

struct TaskResults {
  /// lm-eval's results.json: {results, groups?, group_subtasks, configs,
  /// versions, n-shot, higher_is_better, n-samples, config, qsweep}.
  nlohmann::json results_json;
  /// One record per evaluated doc (lm-eval's samples_<task>.jsonl fields:
  /// doc_id, doc, target, arguments, resps, filtered_resps, metrics...).
  std::vector<nlohmann::json> samples;
  /// Flat summary: {metric,filter -> {value, stderr, samples}} of the task
  /// (and group numbers), for tables.
  nlohmann::json summary;
};

/// `responses[i]` answers `set.requests[i]`. Throws std::runtime_error when
/// the sizes differ or a metric/filter of the task is unknown (naming it).
TaskResults score_eval_set(const TaskConfig& task, const EvalSet& set,
                           const std::vector<Response>& responses, const RunInfo& run);

}  // namespace qsweep::scoring
