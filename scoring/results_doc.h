#pragma once
// Per-document scoring of an answered EvalSet (lm-eval v0.4.4
// ConfigurableTask.process_results after the filters): the metric values of
// one doc, keyed "metric,filter", and its samples record.

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "scoring/eval_set.h"
#include "scoring/results_spec.h"

namespace qsweep::scoring {

/// One per-document metric value as lm-eval keeps it: a number (mean,
/// perplexity: `a`), or a (loglikelihood, words|bytes) pair (`a`, `b`) for
/// weighted_perplexity / bits_per_byte.
struct MetricItem {
  double a = 0;
  double b = 0;
};

struct ScoredDoc {
  /// ("metric,filter", value) for each metric of each filter pipeline, in
  /// filter order then metric_list order.
  std::vector<std::pair<std::string, MetricItem>> values;
  nlohmann::json sample;  // the samples record (see docs/scoring.md "Results")
};

/// Scores `set.docs[doc]` from its requests `req_ids` (indices into
/// set.requests / responses, sorted by Request::index). Throws
/// std::runtime_error naming the task and doc_id when the requests do not fit
/// the task (wrong type, count != choices, ...).
ScoredDoc score_doc(const TaskConfig& task, const std::vector<MetricSpec>& metrics,
                    const std::vector<FilterPipeline>& filters, const EvalSet& set, std::size_t doc,
                    const std::vector<std::size_t>& req_ids, const std::vector<Response>& responses);

/// The task-file name of the mc2 processor (truthfulqa/utils.py).
bool is_mc2_processor(const std::string& process_results);

/// Python `len(re.split(r"\s+", s))` (lm-eval count_words).
std::size_t count_words(const std::string& s);

}  // namespace qsweep::scoring
