#include "scoring/normalize.h"

#include <algorithm>
#include <stdexcept>

namespace qsweep::scoring {

using nlohmann::json;

double oll_v2_normalize(double v, double lower) {
  if (lower >= 1) throw std::invalid_argument("oll_v2_normalize: lower bound must be below 1");
  return std::max(v - lower, 0.0) / (1.0 - lower) * 100.0;
}

namespace {

// summary[name][metric + ",..."]: the first filter's value of `metric`.
const json* find_metric(const json& summary, const std::string& name, const std::string& metric,
                        std::string* key) {
  if (!summary.contains(name)) return nullptr;
  for (const auto& [k, v] : summary[name].items())
    if (k.substr(0, k.find(',')) == metric && v.is_object() && v.contains("value")) {
      *key = k;
      return &v["value"];
    }
  return nullptr;
}

}  // namespace

json oll_v2_normalized(const TaskConfig& task, const EvalSet& set, const json& summary) {
  json out = {{"scheme", "oll_v2"}, {"task", task.task}, {"leaves", json::object()}};
  std::string key;
  if (task.output_type == OutputType::multiple_choice) {
    // Leaves: the subtasks, or the task itself; lower = 1 / max choices.
    std::map<std::string, std::size_t> max_choices;
    for (const auto& d : set.docs) {
      const std::string leaf = d.subtask.empty() ? task.task : d.subtask;
      max_choices[leaf] = std::max(max_choices[leaf], task.choices(d.doc).size());
    }
    const std::string metric =
        find_metric(summary, max_choices.empty() ? task.task : max_choices.begin()->first, "acc_norm", &key)
            ? "acc_norm"
            : "acc";
    double sum = 0;
    for (const auto& [leaf, n] : max_choices) {
      const json* v = find_metric(summary, leaf, metric, &key);
      if (!v || !v->is_number() || n == 0)
        throw std::runtime_error("OLL v2 normalization of " + leaf + ": no " + metric + " in the summary");
      const double lower = 1.0 / double(n);
      const double norm = oll_v2_normalize(v->get<double>(), lower);
      out["leaves"][leaf] = {{"raw", *v}, {"lower", lower}, {"normalized", norm}};
      sum += norm;
    }
    if (max_choices.empty()) throw std::runtime_error("OLL v2 normalization of " + task.task + ": no docs");
    out["metric"] = metric;
    out["value"] = sum / double(max_choices.size());
    return out;
  }
  const json* ps = find_metric(summary, task.task, "prompt_level_strict_acc", &key);
  const json* is = find_metric(summary, task.task, "inst_level_strict_acc", &key);
  if (ps && is) {
    out["metric"] = "mean(prompt_level_strict_acc, inst_level_strict_acc)";
    out["value"] = (ps->get<double>() + is->get<double>()) / 2 * 100;
    return out;
  }
  // A group (e.g. MATH's subtasks) reports exact_match under the task name.
  if (const json* em = find_metric(summary, task.task, "exact_match", &key)) {
    out["metric"] = key;
    out["value"] = em->get<double>() * 100;
    return out;
  }
  throw std::runtime_error("OLL v2 normalization of " + task.task +
                           ": no rule for this task (multiple choice, IFEval's strict accuracies or "
                           "exact_match are needed)");
}

}  // namespace qsweep::scoring
