#include "cache/journal.h"

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
    fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      if (err) {
        *err = fmt::format("cannot open journal '{}': {}; check the cache directory",
                           path_.string(), std::strerror(errno));
      }
      return false;
    }
    // A torn last line (a crash mid-write) is terminated so our first record parses.
    struct stat st;
    char last = '\n';
    if (::fstat(fd_, &st) == 0 && st.st_size > 0) {
      int rfd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
      if (rfd >= 0) {
        if (::pread(rfd, &last, 1, st.st_size - 1) != 1) last = '\n';
        ::close(rfd);
      }
    }
    if (last != '\n') line.insert(line.begin(), '\n');
  }
  size_t done = 0;
  while (done < line.size()) {  // one write(2) in practice; loop on a partial write
    ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (err) {
        *err = fmt::format("cannot write journal '{}': {}; free space or check the cache directory",
                           path_.string(), std::strerror(errno));
      }
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

std::vector<nlohmann::json> Journal::load(const std::filesystem::path& path, std::string* err) {
  std::vector<nlohmann::json> records;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT && err) {
      *err = fmt::format("cannot read journal '{}': {}", path.string(), std::strerror(errno));
    }
    return records;
  }
  std::string text;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (err) {
        *err = fmt::format("cannot read journal '{}': {}", path.string(), std::strerror(errno));
      }
      break;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  std::string_view rest = text;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object()) records.push_back(std::move(j));  // skips torn and garbage lines
  }
  return records;
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
