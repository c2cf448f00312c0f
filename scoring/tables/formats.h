#pragma once
// A Table (table.h) as text: Markdown (padded, so it also reads in a
// terminal), CSV (one line per row, every number at full precision plus its
// stderr, diff, samples and limit), LaTeX (booktabs tabular, ready to
// \input), JSON (Table::to_json). Every displayed number goes through
// fmt_fixed with the layout's decimals, so the formats agree digit for digit.
//
// Markers: a difference to the baseline row follows the value as
// "▲1.23"/"▼1.23" (LaTeX $\uparrow$/$\downarrow$); a cell computed with
// --limit carries "†", one with few-shot exemplars from the evaluated split
// "‡", one where a normalized score was asked for but only the raw one
// exists "*"; the notes under the table explain each.

#include <string>

#include "scoring/tables/table.h"

namespace qsweep::scoring::tables {

std::string to_markdown(const Table& t);
std::string to_csv(const Table& t);
std::string to_latex(const Table& t);

/// The text of one cell as Markdown/HTML show it: "41.89 ▼5.81†"; "" when
/// the row has no such cell.
std::string cell_text(const nlohmann::json& row, const std::string& column, int decimals);

/// The marker characters of a cell's flags ("†", "‡", "*"), in that order.
std::string flag_marks(const nlohmann::json& cell);

/// "W4A16"-style bits label of a row ("" when unknown).
std::string bits_label(const nlohmann::json& row);

}  // namespace qsweep::scoring::tables
