#include "scoring/aggregate.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace qsweep::scoring {

double mean(std::span<const double> v) {
  if (v.empty()) throw std::invalid_argument("mean of an empty sequence");
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

double sample_stddev(std::span<const double> v) {
  if (v.size() < 2) throw std::invalid_argument("sample_stddev needs at least 2 values");
  const double mu = mean(v);
  double ss = 0;
  for (double x : v) ss += (x - mu) * (x - mu);
  return std::sqrt(ss / static_cast<double>(v.size() - 1));
}

std::optional<double> mean_stderr(std::span<const double> v) {
  if (v.size() < 2) return std::nullopt;
  return sample_stddev(v) / std::sqrt(static_cast<double>(v.size()));
}

TaskScore score_task(std::span<const double> per_doc) {
  return {mean(per_doc), mean_stderr(per_doc), per_doc.size()};
}

double aggregate_subtask_metrics(std::span<const double> metrics,
                                 std::span<const std::size_t> sizes, bool weight_by_size) {
  if (metrics.size() != sizes.size() || metrics.empty())
    throw std::invalid_argument("aggregate_subtask_metrics: " + std::to_string(metrics.size()) +
                                " metrics, " + std::to_string(sizes.size()) + " sizes");
  double num = 0;
  std::size_t den = 0;
  for (std::size_t i = 0; i < metrics.size(); ++i) {
    const std::size_t w = weight_by_size ? sizes[i] : 1;
    num += metrics[i] * static_cast<double>(w);
    den += w;
  }
  return num / static_cast<double>(den);
}

double pooled_sample_stderr(std::span<const double> stderrs, std::span<const std::size_t> sizes) {
  if (stderrs.size() != sizes.size() || stderrs.empty())
    throw std::invalid_argument("pooled_sample_stderr: " + std::to_string(stderrs.size()) +
                                " stderrs, " + std::to_string(sizes.size()) + " sizes");
  double num = 0;
  std::size_t total = 0;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    const double n = static_cast<double>(sizes[i]);
    num += (n - 1) * (stderrs[i] * stderrs[i]) * n;
    total += sizes[i];
  }
  if (total <= sizes.size())
    throw std::invalid_argument("pooled_sample_stderr: sum of sizes must exceed the number of subtasks");
  const double var = num / static_cast<double>(total - sizes.size());
  return std::sqrt(var / static_cast<double>(total));
}

namespace {

GroupScore consolidate(std::span<const TaskScore> members, std::vector<double> leaf_values,
                       bool weight_by_size) {
  if (members.empty()) throw std::invalid_argument("aggregate_group: no members");
  std::vector<double> values, stderrs;
  std::vector<std::size_t> sizes;
  bool na = false;
  for (const auto& m : members) {
    values.push_back(m.value);
    sizes.push_back(m.samples);
    if (m.stderr_value) stderrs.push_back(*m.stderr_value);
    else na = true;
  }
  GroupScore g;
  g.score.value = aggregate_subtask_metrics(values, sizes, weight_by_size);
  if (!na) g.score.stderr_value = pooled_sample_stderr(stderrs, sizes);
  for (auto s : sizes) g.score.samples += s;
  g.macro_mean = aggregate_subtask_metrics(values, sizes, false);
  g.leaf_values = std::move(leaf_values);
  g.leaf_macro_mean = mean(g.leaf_values);
  return g;
}

}  // namespace

GroupScore aggregate_group(std::span<const TaskScore> members, bool weight_by_size) {
  std::vector<double> leaves;
  for (const auto& m : members) leaves.push_back(m.value);
  return consolidate(members, std::move(leaves), weight_by_size);
}

GroupScore aggregate_group_of_groups(std::span<const GroupScore> subgroups, bool weight_by_size) {
  std::vector<TaskScore> members;
  std::vector<double> leaves;
  for (const auto& g : subgroups) {
    members.push_back(g.score);
    leaves.insert(leaves.end(), g.leaf_values.begin(), g.leaf_values.end());
  }
  return consolidate(members, std::move(leaves), weight_by_size);
}

}  // namespace qsweep::scoring
