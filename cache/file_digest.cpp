#include "cache/file_digest.h"

#include "cache/line_log.h"

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

// Appends one record. Failures are ignored: the log only saves work, the
// digest returned is correct regardless.
void append_line(const std::filesystem::path& path, std::string line) {
  int fd = open_for_append(path);
  if (fd < 0) return;
  if (has_torn_tail(fd, path)) line.insert(line.begin(), '\n');
  write_all(fd, line);
  ::close(fd);
}

}  // namespace

FileDigestCache::FileDigestCache(std::filesystem::path log_path) : log_path_(std::move(log_path)) {
  load();
}

void FileDigestCache::load() {
  if (log_path_.empty()) return;
  std::string text;
  if (!read_whole_file(log_path_, &text)) return;
  for (const auto& j : parse_json_lines(text)) {
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
