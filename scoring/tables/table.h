#pragma once
// A results table as the study lays it out (../shared/docs/PAPER_TABLES.md):
// rows = model x method, one column per task, the average, and per cell the
// difference to the model's baseline (FP16/FP32) row. Built from score
// artifacts by build_table(); written as Markdown/CSV/LaTeX/JSON (formats.h)
// and HTML (html_report.h); compared with published numbers (reproduce.h).
//
// Units: `value`, `stderr` and `diff` are display units: a fraction metric
// (accuracy, exact match) times 100 when Layout::percent, else as scored.
// `metrics` keeps every metric of the cell's task in score units (0..1).
// Invariants: every row has a cell entry only for columns it has a score
// for; a baseline row has no diff; a non-baseline row's diff is set only
// when its group has exactly one baseline row with that column.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace qsweep::scoring::tables {

/// How the stage lays the table out (the tabulate stage's params).
struct Layout {
  std::string title;
  std::vector<std::string> rows;        ///< axes forming a row (empty: every axis but `column`)
  std::string column = "task";          ///< axis forming the columns
  std::string group = "model";          ///< axis pairing a row with its baseline row
  std::string baseline_label;           ///< value of the missing row axes in baseline rows ("" = from the dtype: FP32/FP16/BF16)
  /// column value -> "metric,filter" shown (default: preference list);
  /// "m1|m2" shows several metrics of the task, one column "task:m" each.
  std::map<std::string, std::string> metrics;
  std::string convention = "raw";       ///< raw | normalized (the OLL v2 normalized score where the score node made one)
  int decimals = 2;
  std::map<std::string, int> column_decimals;  ///< column id -> decimals (e.g. 4 for a KL column)
  bool percent = true;                  ///< fraction metrics x 100
  std::map<std::string, std::string> families;  ///< group value -> family (plots); default the group value
};

/// One score artifact, as the tabulate stage reads it.
struct ScoreInput {
  std::string node;                     ///< e.g. "score[stories260K,rtn-w4,arc_challenge]"
  std::string key;
  std::vector<std::pair<std::string, std::string>> axes;
  bool baseline = false;                ///< from the stage's `baseline` input
  std::string task;                     ///< the task the artifact scored
  nlohmann::json summary;               ///< summary.json: {task: {"metric,filter": {value, stderr, samples, limit?}}}
  nlohmann::json normalized;            ///< normalized.json or null
  std::optional<long long> limit;       ///< lm-eval --limit of the run
  bool fewshot_from_eval_split = false; ///< exemplars drawn from the evaluated split (offline)
  std::string checkpoint_node;          ///< the model artifact its infer node answered with
  nlohmann::json provenance = nlohmann::json::object();  ///< artifact keys behind it
};

/// One model artifact (an fp checkpoint or a quantized one).
struct ModelInput {
  std::string node;
  std::string key;
  std::vector<std::pair<std::string, std::string>> axes;
  nlohmann::json method;                ///< {name, preset, w_bits, a_bits, group_size, sym, format}
  std::optional<unsigned long long> measured_bytes;  ///< weight files on disk
  std::optional<unsigned long long> params;          ///< parameter count (unquantized checkpoints)
  std::string dtype;                    ///< torch_dtype of config.json
};

struct Column {
  std::string id;        ///< the column axis value (task), or "task:metric" when a task shows several metrics
  std::string task;      ///< the task its cells come from
  std::string metric;    ///< "acc_norm,none"
  std::string convention;///< raw | normalized
  bool higher_is_better = true;
  double scale = 1;      ///< 100 for fractions shown in percent
  int decimals = 2;      ///< displayed decimals of its cells
  nlohmann::json to_json() const;
};

struct Table {
  Layout layout;
  std::vector<Column> columns;
  nlohmann::json rows = nlohmann::json::array();  ///< see table.cpp (row objects, documented in docs/results.md)
  std::vector<std::string> notes;                  ///< footnotes (limited cells, missing baselines)
  nlohmann::json to_json() const;
};

/// Lays out the scores; throws std::runtime_error naming the node on
/// inconsistent input (two artifacts for one cell, an unknown metric).
Table build_table(const std::vector<ScoreInput>& scores, const std::vector<ModelInput>& models,
                  const Layout& layout);

/// The metric a column shows when Layout::metrics does not say: the first
/// of acc_norm, acc, exact_match (strict-match, then flexible-extract, then
/// none), prompt_level_strict_acc, mc2, word_perplexity, ... that the task
/// has; else the alphabetically first.
std::string default_metric(const nlohmann::json& task_metrics);

/// True for metrics where lower is better (perplexities, bits per byte, KL).
bool lower_is_better(const std::string& metric);

/// The one rounding every format uses: fixed, `decimals` places ("-0.00"
/// printed as "0.00").
std::string fmt_fixed(double v, int decimals);

/// "1.23 GB" / "456.7 MB" / "260.0 kB" (decimal units, as the study's GB).
std::string fmt_bytes(double bytes);

/// Row id "stories260K / rtn-w4" from its key values in Layout::rows order.
std::string row_label(const nlohmann::json& row);

}  // namespace qsweep::scoring::tables
