#pragma once
// Manifests of published numbers and the reproduction report (docs/results.md).
//
// A manifest (YAML) names the experiment and its tabulate node that measure
// the table, describes each published column (task, metric, score
// convention, scale), lists published rows (row keys as the tabulate table
// labels them, e.g. {model: llama-2-7b-chat, recipe: fp16}, and the values),
// a tolerance policy, and qualitative findings with machine checks.
//
// Verdict of one cell, d = measured - published (display units):
//   match         |d| <= abs, or |d| <= rel * |published|
//   within_noise  |d| <= k_stderr * stderr of the measured value
//   drift         otherwise
//   missing       no measured value for the cell
// A measured value computed with --limit keeps its verdict but is flagged
// `limited`. With no tolerance given at all, only |d| <= 1e-9 matches.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace qsweep::scoring::tables {

struct Tolerance {
  std::optional<double> abs, rel, k_stderr;
  /// Fields of `over` replace this one's.
  Tolerance merged(const Tolerance& over) const;
  nlohmann::json to_json() const;
};

struct ManifestColumn {
  std::string id;          ///< key of rows[].values
  std::string task;        ///< the table's column (the task axis value)
  std::string metric;      ///< "acc_norm,none"; for normalized: the metric the normalized score is of
  std::string convention;  ///< raw | normalized
  double scale = 100;      ///< published = measured metric x scale (raw convention)
  std::string label;
  Tolerance tolerance;     ///< the manifest's policy with this column's overrides applied
};

struct ManifestRow {
  std::string table;                 ///< "Table 2"
  nlohmann::json row;                ///< {axis: value}: which table row
  nlohmann::json label;              ///< free-form description (model id, method, tool, bits, size)
  std::vector<std::pair<std::string, double>> values;  ///< column id -> published value, file order
  std::optional<double> average;     ///< the published average over `values`
  Tolerance tolerance;               ///< with the row's overrides
  int line = 0;                      ///< 1-based, in the manifest file
};

struct Finding {
  std::string id, text, note;
  nlohmann::json checks = nlohmann::json::array();
};

struct Manifest {
  std::filesystem::path path;
  std::string name, title, source;
  std::filesystem::path experiment;  ///< absolute
  std::string table;                 ///< tabulate node id in the experiment
  std::string group = "model";       ///< row axis pairing a row with its baseline
  nlohmann::json baseline;           ///< selector of baseline rows, e.g. {recipe: fp16}
  Tolerance tolerance;
  std::vector<ManifestColumn> columns;
  std::vector<ManifestRow> rows;
  std::vector<Finding> findings;
  const ManifestColumn* column(const std::string& id) const;
};

/// Parses and validates; throws std::runtime_error "FILE:LINE:COL: FIELD:
/// what is wrong; what to do".
Manifest load_manifest(const std::filesystem::path& path);

/// Compares a table (Table::to_json() layout) with the manifest: per cell and
/// per row average a verdict, per finding supported / contradicted /
/// undetermined. Result layout: {format, manifest, title, source, counts,
/// cells[], findings[]} (docs/results.md).
nlohmann::json reproduce(const Manifest& m, const nlohmann::json& table);

/// The manifest's own published values as a table (to check the findings'
/// checks on the paper's numbers, and `qsweep reproduce --published`).
nlohmann::json published_table(const Manifest& m);

/// The reproduction as Markdown: counts, per table every cell, findings.
std::string reproduction_markdown(const nlohmann::json& report, int decimals);

/// True when every cell is match or within_noise (a regression check passes).
bool reproduction_passes(const nlohmann::json& report);

}  // namespace qsweep::scoring::tables
