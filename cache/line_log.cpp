#include "cache/line_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace qsweep::cache {

int open_for_append(const std::filesystem::path& path) {
  return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

bool has_torn_tail(int fd, const std::filesystem::path& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0 || st.st_size == 0) return false;
  int rfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);  // fd is write-only
  if (rfd < 0) return false;
  char last = '\n';
  if (::pread(rfd, &last, 1, st.st_size - 1) != 1) last = '\n';
  ::close(rfd);
  return last != '\n';
}

bool write_all(int fd, std::string_view data) {
  size_t done = 0;
  while (done < data.size()) {  // one write(2) in practice
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

bool read_whole_file(const std::filesystem::path& path, std::string* out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[1 << 16];
  bool ok = true;
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) ok = false;
    if (n <= 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  int e = errno;
  ::close(fd);
  errno = e;
  return ok;
}

std::vector<nlohmann::json> parse_json_lines(std::string_view text) {
  std::vector<nlohmann::json> records;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object()) records.push_back(std::move(j));
  }
  return records;
}

}  // namespace qsweep::cache
