#pragma once
// Locating what a stage consumes inside its input artifacts: the model folder
// of a checkpoint artifact, the data file of a dataset artifact or file input,
// and the check of a task-file input.

#include <filesystem>
#include <string>

#include "pipeline/stage.h"

namespace qsweep {

/// The model folder of an artifact: its root when it holds config.json, else
/// the one sub-folder that does. Throws naming the artifact otherwise.
std::filesystem::path find_model_dir(const std::filesystem::path& root);

/// The one item of input `name` of ctx (throws when missing or a list).
const InputArtifact& single_input(const StageContext& ctx, const std::string& name,
                                  const std::string& what);

/// The data file of a dataset input: the path itself when it is a file; in a
/// folder, `file` (relative) when given, else the one .jsonl/.json/.txt file
/// it holds. Throws naming the folder and what to set.
std::filesystem::path find_data_file(const std::filesystem::path& path, const std::string& file);

/// Stage::check_file_input of the stages that read an lm-eval task file
/// (infer, score): parses `path` when `input` is "task"; the TaskError text
/// ("FILE:LINE:COLUMN: message") or empty.
std::string check_task_file_input(const std::string& input, const std::filesystem::path& path);

}  // namespace qsweep
