#pragma once
// Open LLM Leaderboard v2 score normalization (SPECS.md B13; leaderboard
// display only — lm-eval reports raw numbers): scores rescaled so that the
// random baseline is 0 and a perfect score 100.
//
//   normalize(v, lower) = max(v - lower, 0) / (1 - lower) * 100
//   multiple choice: the leaf's acc_norm (else acc), lower = 1 / the largest
//     number of choices among its docs (GPQA 4 -> 0.25, MMLU-Pro 10 -> 0.1,
//     BBH / MuSR per subtask); a task with subtasks = the unweighted mean of
//     its normalized subtasks;
//   IFEval: mean(prompt_level_strict_acc, inst_level_strict_acc) * 100;
//   other generative tasks (MATH): exact_match * 100 (first filter reported).

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "scoring/eval_set.h"
#include "scoring/task.h"

namespace qsweep::scoring {

/// The normalized score of an answered task from its summary (results.h
/// TaskResults::summary) and eval set: {scheme: "oll_v2", task, value (0-100),
/// metric, leaves: {name: {raw, lower, normalized}}}. Throws
/// std::runtime_error when the summary lacks the metric the rule needs.
nlohmann::json oll_v2_normalized(const TaskConfig& task, const EvalSet& set,
                                 const nlohmann::json& summary);

/// max(v - lower, 0) / (1 - lower) * 100.
double oll_v2_normalize(double v, double lower);

}  // namespace qsweep::scoring
