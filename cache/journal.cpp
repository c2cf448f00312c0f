#include "cache/journal.h"

#include "cache/line_log.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

namespace qsweep::cache {

Journal::Journal(std::filesystem::path path) : path_(std::move(path)) {}

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

bool Journal::append(nlohmann::json record, std::string* err) {
  if (!record.is_object()) {
    if (err) *err = fmt::format("journal record for '{}' is not a JSON object", path_.string());
    return false;
  }
  if (!record.contains("v")) record["v"] = k_journal_version;
  if (!record.contains("t")) record["t"] = iso8601_now();
  std::string line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";

  std::lock_guard<std::mutex> lock(mu_);
  if (fd_ < 0) {
    fd_ = open_for_append(path_);
    if (fd_ < 0) {
      if (err) {
        *err = fmt::format("cannot open journal '{}': {}; check the cache directory",
                           path_.string(), std::strerror(errno));
      }
      return false;
    }
    // A torn last line (a crash mid-write) is terminated so our first record parses.
    if (has_torn_tail(fd_, path_)) line.insert(line.begin(), '\n');
  }
  if (!write_all(fd_, line)) {
    if (err) {
      *err = fmt::format("cannot write journal '{}': {}; free space or check the cache directory",
                         path_.string(), std::strerror(errno));
    }
    return false;
  }
  return true;
}

std::vector<nlohmann::json> Journal::load(const std::filesystem::path& path, std::string* err) {
  std::string text;
  if (!read_whole_file(path, &text) && errno != ENOENT && err)
    *err = fmt::format("cannot read journal '{}': {}", path.string(), std::strerror(errno));
  return parse_json_lines(text);  // skips torn and garbage lines
}

std::string iso8601_now() {
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  ::gmtime_r(&ts.tv_sec, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1'000'000);
}

}  // namespace qsweep::cache
