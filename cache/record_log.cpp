#include "cache/record_log.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <system_error>

#include "cache/line_log.h"

namespace qsweep::cache {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const char* what, const fs::path& path, int err) {
  throw std::runtime_error(std::string(what) + " " + path.string() + ": " + std::strerror(err));
}

}  // namespace

RecordLog::RecordLog(fs::path path) : path_(std::move(path)) {
  std::error_code ec;
  if (path_.has_parent_path()) fs::create_directories(path_.parent_path(), ec);
  if (ec) throw std::runtime_error("cannot create " + path_.parent_path().string() + ": " + ec.message());
  fd_ = open_for_append(path_);
  if (fd_ < 0) fail("cannot open request journal", path_, errno);
  std::string text;
  if (!read_whole_file(path_, &text)) {
    const int e = errno;
    ::close(fd_);
    fail("cannot read request journal", path_, e);
  }
  std::string_view rest = text;
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    if (line.empty()) continue;
    // A torn tail has no newline; a complete line that does not parse as
    // {"k": string, "v": ...} is damage. Both are skipped, never fatal.
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (nl == std::string_view::npos || !j.is_object() || !j.contains("k") ||
        !j["k"].is_string() || !j.contains("v")) {
      ++skipped_;
      continue;
    }
    records_.emplace(j["k"].get<std::string>(), std::move(j["v"]));
  }
}

RecordLog::~RecordLog() {
  if (fd_ >= 0) ::close(fd_);
}

const nlohmann::json* RecordLog::find(const std::string& key) const {
  auto it = records_.find(key);
  return it == records_.end() ? nullptr : &it->second;
}

void RecordLog::append(const std::vector<std::pair<std::string, nlohmann::json>>& records) {
  if (records.empty()) return;
  std::string buf;
  if (has_torn_tail(fd_, path_)) buf += '\n';
  for (const auto& [k, v] : records) {
    buf += nlohmann::json{{"k", k}, {"v", v}}.dump(-1, ' ', false,
                                                   nlohmann::json::error_handler_t::replace);
    buf += '\n';
  }
  if (!write_all(fd_, buf)) fail("cannot append to request journal", path_, errno);
  for (const auto& [k, v] : records) records_.emplace(k, v);
}

}  // namespace qsweep::cache
