#pragma once
// Append-only logs of JSON lines (the run journal, the stat cache): the
// pieces they share. A record is one line written with write(2) on an
// O_APPEND descriptor; a torn last line (a crash mid-write) is terminated
// before the next record and skipped when reading.

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace qsweep::cache {

/// Opens `path` for appending (created 0644 if absent, close-on-exec);
/// -1 with errno set on failure.
int open_for_append(const std::filesystem::path& path);

/// True when the file open at `fd` (also readable at `path`) is non-empty and
/// does not end with '\n': the next record must start on a new line.
bool has_torn_tail(int fd, const std::filesystem::path& path);

/// Writes all of `data`, retrying partial writes and EINTR; false with errno
/// set on failure (ENOSPC, EIO, ...).
bool write_all(int fd, std::string_view data);

/// Reads the whole file; false with errno set when it cannot be opened or read.
bool read_whole_file(const std::filesystem::path& path, std::string* out);

/// Every line of `text` that parses as a JSON object, in order; torn or
/// garbage lines are skipped.
std::vector<nlohmann::json> parse_json_lines(std::string_view text);

}  // namespace qsweep::cache
