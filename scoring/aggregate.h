#pragma once
// Aggregation of per-document metrics into task and group scores, as
// lm-eval v0.4.4 does (lm_eval/api/metrics.py, evaluator_utils.py
// consolidate_group_results). A stderr of std::nullopt is lm-eval's "N/A".

#include <cstddef>
#include <optional>
#include <span>
#include <vector>

namespace qsweep::scoring {

/// lm-eval `mean`: sum(arr) / len(arr), summed left to right. Throws
/// std::invalid_argument if empty.
double mean(std::span<const double> values);

/// lm-eval `sample_stddev`: sqrt(sum((x - mean)^2) / (n - 1)). Throws if n < 2.
double sample_stddev(std::span<const double> values);

/// lm-eval `mean_stderr` = sample_stddev / sqrt(n), as a task reports it:
/// "N/A" (nullopt) for n < 2 (TaskOutput.calculate_aggregate_metric).
std::optional<double> mean_stderr(std::span<const double> values);

/// One task's (or subgroup's) aggregated metric.
struct TaskScore {
  double value = 0;              // mean of the per-document metric
  std::optional<double> stderr_value;  // nullopt: "N/A"
  std::size_t samples = 0;       // documents scored
};

/// A task score from its per-document values (mean, mean_stderr, n).
TaskScore score_task(std::span<const double> per_doc);

/// lm-eval `aggregate_subtask_metrics`: sum(m_i * w_i) / sum(w_i), w_i = size_i
/// with weight_by_size, else 1.
double aggregate_subtask_metrics(std::span<const double> metrics,
                                 std::span<const std::size_t> sizes, bool weight_by_size);

/// lm-eval `pooled_sample_stderr`:
/// sqrt(sum((n_i - 1) * se_i^2 * n_i) / (sum n_i - k) / sum n_i).
double pooled_sample_stderr(std::span<const double> stderrs, std::span<const std::size_t> sizes);

/// A group's aggregated metric.
struct GroupScore {
  TaskScore score;          // lm-eval's number: (weighted) mean of members, pooled stderr
  double macro_mean = 0;    // unweighted mean over the direct members
  std::vector<double> leaf_values;  // every leaf task's value, in member order
  double leaf_macro_mean = 0;       // unweighted mean over leaf_values
};

/// One level of consolidate_group_results: value = aggregate_subtask_metrics
/// (weight_by_size), stderr = pooled_sample_stderr of the members' stderrs
/// (lm-eval pools regardless of weight_by_size; "N/A" if any member's is),
/// samples = sum of sizes. Members are leaf tasks here. Throws
/// std::invalid_argument if `members` is empty.
GroupScore aggregate_group(std::span<const TaskScore> members, bool weight_by_size = true);

/// A group whose members are groups (lm-eval's mmlu: mmlu -> {stem, other,
/// social_sciences, humanities} -> subjects): each subgroup is consolidated
/// first and then enters the parent as a member, as lm-eval does; the leaf
/// macro mean is over every subject.
GroupScore aggregate_group_of_groups(std::span<const GroupScore> subgroups,
                                     bool weight_by_size = true);

}  // namespace qsweep::scoring
