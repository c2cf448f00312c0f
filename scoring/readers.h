#pragma once
// Reading a task's splits from its dataset folder: the data_files patterns
// and data_format of the task file (docs/scoring.md, "Data files").

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "scoring/task.h"

namespace qsweep::scoring {

/// The files under `dir` matching the relative `pattern` (`*` and `?` glob
/// any run / one character within one path component, never '/'), sorted by
/// path. A pattern without wildcards gives the file if it exists.
std::vector<std::filesystem::path> glob_files(const std::filesystem::path& dir, const std::string& pattern);

/// One split's docs in file order (files in glob order), or nullopt when no
/// file matches any of its patterns. Throws std::runtime_error naming
/// FILE:LINE (jsonl) or FILE (json) for a bad record.
std::optional<std::vector<nlohmann::json>> read_split(const TaskConfig& task,
                                                      const std::filesystem::path& dataset_dir,
                                                      const std::string& split);

/// fnmatch-style match of a whole string: `*` any run, `?` one byte (no
/// character classes); used for data file globs and manifest row selectors.
bool wildcard_match(std::string_view pattern, std::string_view s);

/// One JSON object per non-empty line.
std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& path);
/// One JSON array of objects.
std::vector<nlohmann::json> read_json_array(const std::filesystem::path& path);
/// sylinrl mc_task.json [{question, mc1_targets: {answer: 0/1}, mc2_targets:
/// {...}}] -> HF truthful_qa multiple_choice rows {question, mc1_targets:
/// {choices, labels}, mc2_targets: {choices, labels}}, the answers in the
/// file's order.
std::vector<nlohmann::json> read_truthfulqa_mc_json(const std::filesystem::path& path);
/// The MMLU subject of a CSV file: its stem without a _test/_dev/_val suffix.
std::string mmlu_subject_of(const std::filesystem::path& path);

}  // namespace qsweep::scoring
