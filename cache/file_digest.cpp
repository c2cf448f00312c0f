#include "cache/file_digest.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string_view>

namespace qsweep::cache {
namespace {

constexpr int k_stat_cache_version = 1;

int64_t mtime_ns_of(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

bool same_stat(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
         mtime_ns_of(a) == mtime_ns_of(b);
}

// Reads the whole file; false when it cannot be opened (e.g. it does not exist yet).
bool read_all(const std::filesystem::path& path, std::string* out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return true;
}

// Appends one line with a single write(2). A previous torn line (no trailing
// newline) is terminated first so the new record stays parseable. Failures are
// ignored: the log only saves work, the digest returned is correct regardless.
void append_line(const std::filesystem::path& path, std::string line) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  struct stat st;
  char last = '\n';
  if (::fstat(fd, &st) == 0 && st.st_size > 0) {
    int rfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (rfd >= 0) {
      if (::pread(rfd, &last, 1, st.st_size - 1) != 1) last = '\n';
      ::close(rfd);
    }
  }
  if (last != '\n') line.insert(line.begin(), '\n');
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::write(fd, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
}

}  // namespace

FileDigestCache::FileDigestCache(std::filesystem::path log_path) : log_path_(std::move(log_path)) {
  load();
}

void FileDigestCache::load() {
  if (log_path_.empty()) return;
  std::string text;
  if (!read_all(log_path_, &text)) return;
  std::string_view rest = text;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) continue;  // torn or garbage line
    auto path = j.find("path");
    auto xxh = j.find("xxh3");
    auto v = j.find("v");
    if (v == j.end() || !v->is_number_integer() || *v != k_stat_cache_version) continue;
    if (path == j.end() || !path->is_string() || xxh == j.end() || !xxh->is_string()) continue;
    auto d = Digest128::from_hex(xxh->get_ref<const std::string&>());
    if (!d) continue;
    Entry e;
    bool ok = true;
    auto get_u = [&](const char* name, uint64_t* out) {
      auto it = j.find(name);
      if (it == j.end() || !it->is_number_unsigned())
        ok = false;
      else
        *out = it->get<uint64_t>();
    };
    get_u("dev", &e.dev);
    get_u("ino", &e.ino);
    get_u("size", &e.size);
    auto mt = j.find("mtime_ns");
    if (mt == j.end() || !mt->is_number_integer())
      ok = false;
    else
      e.mtime_ns = mt->get<int64_t>();
    if (!ok) continue;
    e.digest = *d;
    entries_[path->get<std::string>()] = e;  // the latest line for a path wins
  }
}

bool FileDigestCache::digest(const std::filesystem::path& file, Digest128* out, std::string* err) {
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(file, ec);
  if (ec) {
    if (err) *err = fmt::format("cannot resolve '{}': {}", file.string(), ec.message());
    return false;
  }
  const std::string key = abs.lexically_normal().string();
  struct stat before;
  if (::stat(key.c_str(), &before) != 0) {
    if (err) {
      *err = fmt::format("cannot stat '{}': {}; check that the file exists", key,
                         std::strerror(errno));
    }
    return false;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it != entries_.end()) {
      const Entry& e = it->second;
      if (e.dev == before.st_dev && e.ino == before.st_ino &&
          e.size == static_cast<uint64_t>(before.st_size) && e.mtime_ns == mtime_ns_of(before)) {
        *out = e.digest;
        return true;
      }
    }
  }
  // Hash outside the lock so that several files can be hashed in parallel.
  Digest128 d;
  if (!hash_file(key, &d, err)) return false;
  struct stat after;
  // Cache only when the file did not change while it was hashed.
  bool stable = ::stat(key.c_str(), &after) == 0 && same_stat(before, after);
  std::lock_guard<std::mutex> lock(mu_);
  ++hashed_;
  *out = d;
  if (!stable) return true;
  Entry e{static_cast<uint64_t>(before.st_dev), static_cast<uint64_t>(before.st_ino),
          static_cast<uint64_t>(before.st_size), mtime_ns_of(before), d};
  entries_[key] = e;
  if (!log_path_.empty()) {
    nlohmann::ordered_json j = {{"v", k_stat_cache_version},
                                {"path", key},
                                {"dev", e.dev},
                                {"ino", e.ino},
                                {"size", e.size},
                                {"mtime_ns", e.mtime_ns},
                                {"xxh3", d.hex()}};
    append_line(log_path_,
                j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n");
  }
  return true;
}

}  // namespace qsweep::cache
