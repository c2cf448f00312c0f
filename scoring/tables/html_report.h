#pragma once
// One self-contained HTML page per table (no script, no external resource):
// the table, inline-SVG plots — average score vs storage size per model
// family, a heatmap of differences to the baseline (method x task), per-task
// bars with stderr error bars — and, when given, the reproduction verdicts
// and findings. Hovering a cell or a mark shows its provenance (artifact
// keys, --limit, samples, stderr) through title attributes / SVG <title>.
//
// Every number taken from the data is printed inside an element carrying
// data-p (a JSON pointer into {"table": table.json, "reproduction": ...})
// and data-d (decimals): tests/scoring/html_report_test.cpp checks each one
// against the JSON.

#include <string>

#include <nlohmann/json.hpp>

namespace qsweep::scoring::tables {

/// table: Table::to_json(); reproduction: reproduce() result or null.
std::string html_report(const nlohmann::json& table, const nlohmann::json& reproduction);

}  // namespace qsweep::scoring::tables
