#pragma once
// Whole-file text I/O with errors that name the file: the one place stages,
// quant/ and scoring/ read a small text/JSON file or write one atomically.

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace qsweep::model {

/// The file's bytes. Throws std::runtime_error "cannot open PATH: REASON".
std::string read_text_file(const std::filesystem::path& path);

/// The file parsed as JSON. Throws naming the file ("PATH: not valid JSON: ...").
nlohmann::json read_json_file(const std::filesystem::path& path);

/// Writes `text` to PATH.tmp, flushes, renames over PATH (readers never see
/// a half-written file). Throws std::runtime_error naming the file.
void write_text_file(const std::filesystem::path& path, const std::string& text);

}  // namespace qsweep::model
