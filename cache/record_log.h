#pragma once
// A keyed, append-only record log: the request journal of long stages
// (infer, judge). Each record is one JSON line {"k": KEY, "v": VALUE} written
// with one write(2) on an O_APPEND descriptor (see line_log.h), so that
//   - a SIGKILL loses at most the records not yet written (a torn last line
//     is skipped when reading and terminated before the next append);
//   - several processes may append to one log at once (POSIX O_APPEND on a
//     local file system: each write lands whole at the end).
// Keys are opaque strings (request hashes); a key written twice keeps its
// first value (the same request gives the same answer). Knows nothing of ML.

#include <cstddef>
#include <filesystem>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace qsweep::cache {

class RecordLog {
 public:
  /// Opens (creating the file and its directory if needed) the log at
  /// `path` and reads every complete record. Throws std::runtime_error naming
  /// the file when it cannot be created, read or opened for appending.
  explicit RecordLog(std::filesystem::path path);
  ~RecordLog();
  RecordLog(const RecordLog&) = delete;
  RecordLog& operator=(const RecordLog&) = delete;

  const std::filesystem::path& path() const { return path_; }
  /// The value recorded for `key`, or nullptr (also when the recorded text
  /// turns out not to be JSON: damage is treated as "not answered").
  /// Values are parsed on first use and kept; not thread-safe.
  const nlohmann::json* find(const std::string& key);
  std::size_t size() const { return records_.size(); }
  /// Lines that were not complete records when the log was opened (a torn
  /// tail after a kill, or damage).
  std::size_t skipped_lines() const { return skipped_; }

  /// Appends records in one write(2) and adds them to the in-memory view.
  /// Throws std::runtime_error naming the file on a write error (ENOSPC...).
  void append(const std::vector<std::pair<std::string, nlohmann::json>>& records);

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  // key -> the JSON texts written for it, in file order (one, unless a
  // record was damaged and answered again); the first that parses is the
  // value, kept in `parsed_` on first find(): resuming a 50k-request node
  // parses only what it uses, once.
  // The texts point into `file_text_` (read once at open) or `appended_`.
  std::string file_text_;
  std::deque<std::string> appended_;
  std::unordered_map<std::string, std::vector<std::string_view>> records_;
  std::unordered_map<std::string, nlohmann::json> parsed_;
  std::size_t skipped_ = 0;
};

}  // namespace qsweep::cache
