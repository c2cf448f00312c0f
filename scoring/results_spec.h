#pragma once
// A task's metric_list and filter_list resolved into what score_eval_set
// runs (lm-eval v0.4.4 ConfigurableTask.__init__ + filters/__init__.py):
// the metrics with their aggregation, higher_is_better and exact_match
// options, and the filter pipelines of a generate_until task. Errors name the
// task file and the offending metric / filter function.

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "scoring/filters.h"
#include "scoring/metrics.h"
#include "scoring/task.h"

namespace qsweep::scoring {

/// lm-eval aggregation functions (api/metrics.py). `mean` and `perplexity`
/// take one number per doc; `weighted_perplexity` and `bits_per_byte` take
/// (loglikelihood, words-or-bytes) pairs; `inst_level_acc` (IFEval's
/// `utils.agg_inst_level_acc`, the flattened mean of per-instruction bools)
/// takes (instructions followed, instructions) pairs.
enum class Aggregation { mean, perplexity, weighted_perplexity, bits_per_byte, inst_level_acc };
const char* to_string(Aggregation a);

struct MetricSpec {
  std::string name;  // acc, acc_norm, exact_match, perplexity, word_perplexity, ...
  Aggregation aggregation = Aggregation::mean;
  bool higher_is_better = true;
  ExactMatchOptions exact_match;  // exact_match only (the entry's other keys)
  nlohmann::json entry;           // as written in metric_list (or the default)
};

/// The metric_list of `task` (lm-eval's defaults per output_type when empty:
/// multiple_choice acc, acc_norm; loglikelihood perplexity, acc;
/// loglikelihood_rolling word_perplexity, byte_perplexity, bits_per_byte;
/// generate_until exact_match; generate_until with `process_results:
/// ifeval.process_results` prompt_level_strict_acc, inst_level_strict_acc,
/// prompt_level_loose_acc, inst_level_loose_acc). The aggregation name
/// `agg_inst_level_acc` may carry a module prefix (`utils.`, `ifeval.`: a
/// task file's `!function utils.agg_inst_level_acc`). Throws std::runtime_error "<file>: ..." for
/// a metric not computed for the output type, an unknown aggregation or an
/// unknown / ill-typed exact_match option.
std::vector<MetricSpec> resolve_metrics(const TaskConfig& task);

/// The task-file name of IFEval's processor (`ifeval.process_results`).
bool is_ifeval_processor(const std::string& process_results);

/// One step of a filter pipeline.
struct FilterStep {
  enum class Kind { regex, take_first, lowercase, uppercase, mmlu_pro_extract } kind = Kind::take_first;
  std::optional<RegexFilter> regex;  // kind == regex
  std::string fallback = "[invalid]";  // kind == mmlu_pro_extract: when nothing matches
};

/// One entry of filter_list: a name ("strict-match") and its steps in order.
struct FilterPipeline {
  std::string name;
  std::vector<FilterStep> steps;
  nlohmann::json entry;  // as written (or the default "none" pipeline)

  /// Runs the steps on a doc's repeats. Invariant of lm-eval: regex / case
  /// steps map each repeat, take_first keeps the first one. The result is
  /// the first remaining repeat (qsweep answers one repeat per request, so
  /// a pipeline without take_first gives the same string).
  std::string apply(const std::vector<std::string>& repeats) const;
};

/// The filter pipelines of `task`: its filter_list, or one pipeline "none" =
/// [take_first] when it has none (lm-eval's default). Functions: regex
/// (regex_pattern default `#### (\-?[0-9\.\,]+)`, group_select 0, fallback
/// "[invalid]"), take_first, lowercase, uppercase, mmlu_pro_extract (the
/// MMLU-Pro authors' cascade, leaderboard.h; `fallback` default "[invalid]"). A non-generate task may
/// only use take_first. Throws std::runtime_error "<file>: ..." naming an
/// unknown function, an ill-typed argument or a bad regex.
std::vector<FilterPipeline> resolve_filters(const TaskConfig& task);

}  // namespace qsweep::scoring
