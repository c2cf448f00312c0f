#include "cache/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "cache/lock.h"

namespace qsweep::cache {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view k_version_text = "qsweep-cache 1\n";
constexpr std::string_view k_cache_hint = "pass --cache DIR or set QSWEEP_CACHE";

// Distinguishes tmp/ and probe names made by this process.
std::atomic<uint64_t> g_counter{0};

std::string err_str(int e) { return std::strerror(e); }

std::string host_name() {
  static const std::string name = [] {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return std::string("localhost");
    std::string s(buf);
    std::replace(s.begin(), s.end(), '/', '_');
    return s;
  }();
  return name;
}

// A store key as it appears in directory names: 32 lowercase hex digits.
bool is_key_shape(std::string_view s) {
  return s.size() == 32 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// The key part of a tmp/ entry name "<key>.<anything>"; empty when it has none.
std::string_view tmp_entry_key(std::string_view name) {
  if (name.size() < 34 || name[32] != '.') return {};
  std::string_view k = name.substr(0, 32);
  return is_key_shape(k) ? k : std::string_view{};
}

// Whether nlohmann::json can serialize s as is (strict UTF-8), so that a file
// name survives the manifest round trip unchanged.
bool valid_utf8(const std::string& s) {
  try {
    (void)nlohmann::json(s).dump();
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

int64_t mtime_ns_of(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

// Reads a small file whole; false with *error_no set when it cannot be read.
bool read_small_file(const char* path, std::string* out, int* error_no) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error_no = errno;
    return false;
  }
  struct stat st;
  const size_t expected = ::fstat(fd, &st) == 0 ? static_cast<size_t>(st.st_size) : 0;
  const size_t cap = expected > 0 ? expected : 4096;
  out->resize(cap + 1);  // one spare byte tells whether the file grew meanwhile
  size_t len = 0;
  for (;;) {
    if (len == out->size()) out->resize(out->size() * 2);
    ssize_t n = ::read(fd, out->data() + len, out->size() - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error_no = errno;
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    len += static_cast<size_t>(n);
    if (len >= expected && len < out->size()) break;  // all of it: skip the EOF read
  }
  ::close(fd);
  out->resize(len);
  return true;
}

std::string write_error(const fs::path& path, int e) {
  if (e == ENOSPC || e == EDQUOT) {
    return fmt::format(
        "no space left on device while writing {}; free space and rerun: nothing was published",
        path.string());
  }
  return fmt::format("cannot write {}: {}; nothing was published", path.string(), err_str(e));
}

// Creates path with data, checking every write(2), then fsyncs it.
bool write_synced(const fs::path& path, std::string_view data, std::string* err) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    *err = write_error(path, errno);
    return false;
  }
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = n == 0 ? ENOSPC : errno;
      ::close(fd);
      *err = write_error(path, e);
      return false;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    *err = write_error(path, e);
    return false;
  }
  if (::close(fd) != 0) {
    *err = write_error(path, errno);
    return false;
  }
  return true;
}

// fsyncs a file or directory (opened read-only, which suffices on Linux).
bool fsync_path(const fs::path& path, bool is_dir, std::string* err) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (is_dir ? O_DIRECTORY : 0));
  if (fd < 0 || ::fsync(fd) != 0) {
    int e = errno;
    if (fd >= 0) ::close(fd);
    *err = e == ENOSPC || e == EDQUOT ? write_error(path, e)
                                      : fmt::format("cannot fsync {}: {}; nothing was published",
                                                    path.string(), err_str(e));
    return false;
  }
  ::close(fd);
  return true;
}

// Walks dir (= out/ + rel) depth-first: regular files are hashed and fsynced
// into *files (path relative to out/), directories are appended to *dirs.
// Anything else (symlink, fifo, socket, device) is an error naming the path.
bool collect(const fs::path& dir, const std::string& rel, std::vector<ManifestFile>* files,
             std::vector<fs::path>* dirs, std::string* err) {
  dirs->push_back(dir);
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    *err = fmt::format("cannot read directory {}: {}; nothing was published", dir.string(),
                       err_str(errno));
    return false;
  }
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  ::closedir(d);
  for (const std::string& name : names) {
    fs::path p = dir / name;
    std::string r = rel.empty() ? name : rel + "/" + name;
    if (!valid_utf8(name)) {
      *err = fmt::format("file name {} under out/ is not valid UTF-8; rename it", p.string());
      return false;
    }
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) {
      *err = fmt::format("cannot stat {}: {}; nothing was published", p.string(), err_str(errno));
      return false;
    }
    if (S_ISDIR(st.st_mode)) {
      if (!collect(p, r, files, dirs, err)) return false;
    } else if (S_ISREG(st.st_mode)) {
      Digest128 digest;
      std::string herr;
      if (!hash_file(p, &digest, &herr)) {
        *err = herr + "; nothing was published";
        return false;
      }
      if (!fsync_path(p, false, err)) return false;
      files->push_back(
          ManifestFile{r, static_cast<uint64_t>(st.st_size), mtime_ns_of(st), digest.hex()});
    } else {
      const char* what = S_ISLNK(st.st_mode)    ? "a symbolic link"
                         : S_ISFIFO(st.st_mode) ? "a named pipe"
                         : S_ISSOCK(st.st_mode) ? "a socket"
                                                : "a device or special file";
      *err = fmt::format(
          "{} is {}; artifacts may hold only regular files and directories: copy the target "
          "instead (nothing was published)",
          p.string(), what);
      return false;
    }
  }
  return true;
}

}  // namespace

std::unique_ptr<Store> Store::open(const fs::path& root, std::string* err) {
  std::error_code ec;
  fs::path abs = fs::absolute(root, ec).lexically_normal();
  if (ec) abs = root.lexically_normal();
  if (!abs.has_filename() && abs.has_parent_path()) abs = abs.parent_path();  // trailing '/'
  const std::string where = abs.string();

  fs::create_directories(abs, ec);
  if (ec || !fs::is_directory(abs, ec)) {
    if (err) {
      *err = fmt::format("cannot create cache directory '{}': {}; {}", where,
                         ec ? ec.message() : "not a directory", k_cache_hint);
    }
    return nullptr;
  }
  // Writability probe: create and remove a file (root passes permission checks).
  fs::path probe = abs / fmt::format(".probe.{}.{}.{}", host_name(), ::getpid(), g_counter++);
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (err) {
      *err = fmt::format("cache directory '{}' is not writable: {}; {}", where, err_str(errno),
                         k_cache_hint);
    }
    return nullptr;
  }
  ::close(fd);
  ::unlink(probe.c_str());

  for (const char* sub : {"objects", "tmp", "locks"}) {
    fs::create_directories(abs / sub, ec);
    if (ec) {
      if (err) {
        *err = fmt::format("cannot create '{}': {}; {}", (abs / sub).string(), ec.message(),
                           k_cache_hint);
      }
      return nullptr;
    }
  }

  fs::path version = abs / "VERSION";
  std::string text;
  int e = 0;
  if (read_small_file(version.c_str(), &text, &e)) {
    if (text != k_version_text) {
      std::string first = text.substr(0, text.find('\n'));
      if (err) {
        *err = fmt::format(
            "cache directory '{}' has format '{}' in VERSION, this qsweep supports '{}'; {} "
            "(another directory) or upgrade qsweep",
            where, first, k_version_text.substr(0, k_version_text.size() - 1), k_cache_hint);
      }
      return nullptr;
    }
  } else if (e == ENOENT) {
    // Written under a private name and renamed: concurrent openers both succeed.
    fs::path tmp = abs / fmt::format(".VERSION.{}.{}.{}", host_name(), ::getpid(), g_counter++);
    std::string werr;
    if (!write_synced(tmp, k_version_text, &werr) || ::rename(tmp.c_str(), version.c_str()) != 0) {
      ::unlink(tmp.c_str());
      if (err) {
        *err = fmt::format("cannot write '{}': {}; {}", version.string(),
                           werr.empty() ? err_str(errno) : werr, k_cache_hint);
      }
      return nullptr;
    }
  } else {
    if (err) {
      *err = fmt::format("cannot read '{}': {}; {}", version.string(), err_str(e), k_cache_hint);
    }
    return nullptr;
  }
  return std::unique_ptr<Store>(new Store(abs));
}

fs::path Store::artifact_dir(std::string_view key) const {
  return root_ / "objects" / key.substr(0, 2) / key;
}

fs::path Store::output_dir(std::string_view key) const { return artifact_dir(key) / "out"; }

fs::path Store::scratch_dir(std::string_view key) const {
  return root_ / "scratch" / std::string(key);
}

fs::path Store::lock_path(std::string_view key) const {
  return root_ / "locks" / (std::string(key) + ".lock");
}

ArtifactState Store::check(std::string_view key, Manifest* m, std::string* why) const {
  return check_impl(key, /*full=*/false, m, why);
}

ArtifactState Store::verify(std::string_view key, Manifest* m, std::string* why) const {
  return check_impl(key, /*full=*/true, m, why);
}

ArtifactState Store::check_impl(std::string_view key, bool full, Manifest* m,
                                std::string* why) const {
  std::string local_why;
  if (!why) why = &local_why;
  if (!is_key_shape(key)) return ArtifactState::kMissing;
  // Paths are built in one string buffer: this runs for every node of every plan.
  std::string path = artifact_dir(key).string();
  const size_t dir_len = path.size();
  path += "/manifest.json";
  std::string text;
  int e = 0;
  if (!read_small_file(path.c_str(), &text, &e)) {
    if (e == ENOENT || e == ENOTDIR) {
      struct stat st;
      path.resize(dir_len);
      if (::stat(path.c_str(), &st) != 0) return ArtifactState::kMissing;
      *why = "manifest.json missing";
      return ArtifactState::kCorrupt;
    }
    *why = fmt::format("cannot read {}: {}", path, err_str(e));
    return ArtifactState::kCorrupt;
  }
  Manifest parsed;
  std::string perr;
  if (!manifest_from_json(text, &parsed, &perr)) {
    *why = fmt::format("{}: {}", path, perr);
    return ArtifactState::kCorrupt;
  }
  if (parsed.key != key) {
    *why = fmt::format("{} names key {}, not its directory's key {}", path, parsed.key, key);
    return ArtifactState::kCorrupt;
  }
  path.resize(dir_len);
  path += "/out/";
  const size_t out_len = path.size();
  for (const ManifestFile& f : parsed.files) {
    path.resize(out_len);
    path += f.path;
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      *why = errno == ENOENT || errno == ENOTDIR
                 ? fmt::format("file out/{} missing", f.path)
                 : fmt::format("cannot stat out/{}: {}", f.path, err_str(errno));
      return ArtifactState::kCorrupt;
    }
    if (!S_ISREG(st.st_mode)) {
      *why = fmt::format("file out/{} is not a regular file", f.path);
      return ArtifactState::kCorrupt;
    }
    if (static_cast<uint64_t>(st.st_size) != f.size) {
      *why = fmt::format("file out/{} is {} bytes, manifest says {} (truncated?)", f.path,
                         st.st_size, f.size);
      return ArtifactState::kCorrupt;
    }
    if (full || mtime_ns_of(st) != f.mtime_ns) {
      Digest128 d;
      std::string herr;
      if (!hash_file(path, &d, &herr)) {
        *why = herr;
        return ArtifactState::kCorrupt;
      }
      if (d.hex() != f.xxh3) {
        *why = fmt::format("file out/{} was modified (xxh3 {}, manifest says {})", f.path, d.hex(),
                           f.xxh3);
        return ArtifactState::kCorrupt;
      }
    }
  }
  if (m) *m = std::move(parsed);
  return ArtifactState::kValid;
}

bool Store::begin(std::string_view key, Pending* p, std::string* err) {
  if (!is_key_shape(key)) {
    if (err) *err = fmt::format("invalid artifact key '{}': expected 32 lowercase hex digits", key);
    return false;
  }
  fs::path tmp = root_ / "tmp";
  std::error_code ec;
  // Stale directories of this key (a killed run): the caller holds the key's lock.
  for (fs::directory_iterator it(tmp, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (tmp_entry_key(name) == key) {
      std::error_code rec;
      fs::remove_all(it->path(), rec);
    }
  }
  ec.clear();
  fs::path dir = tmp / fmt::format("{}.{}.{}.{}", key, host_name(), ::getpid(), g_counter++);
  fs::create_directories(dir / "out", ec);
  if (ec) {
    if (err) {
      *err = fmt::format("cannot create {}: {}; check the cache directory or {}",
                         (dir / "out").string(), ec.message(), k_cache_hint);
    }
    fs::remove_all(dir, ec);
    return false;
  }
  p->key = std::string(key);
  p->dir = std::move(dir);
  return true;
}

bool Store::publish(Pending& p, Manifest* m, std::string* err) {
  std::string local_err;
  if (!err) err = &local_err;
  auto fail = [&] {
    discard(p);
    return false;
  };
  if (m->key.empty()) m->key = p.key;
  if (m->key != p.key) {
    *err = fmt::format("manifest key {} differs from the pending artifact's key {}", m->key, p.key);
    return fail();
  }
  std::vector<ManifestFile> files;
  std::vector<fs::path> dirs;
  fs::path out = p.out_dir();
  struct stat st;
  if (::lstat(out.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    *err = fmt::format("{} is missing or not a directory; nothing was published", out.string());
    return fail();
  }
  if (!collect(out, "", &files, &dirs, err)) return fail();
  std::sort(files.begin(), files.end(),
            [](const ManifestFile& a, const ManifestFile& b) { return a.path < b.path; });
  m->files = std::move(files);
  if (!write_synced(p.dir / "manifest.json", manifest_to_json(*m), err)) return fail();
  dirs.push_back(p.dir);
  dirs.push_back(root_ / "tmp");
  for (const fs::path& d : dirs) {
    if (!fsync_path(d, true, err)) return fail();
  }

  fs::path dest = artifact_dir(m->key);
  fs::path shard = dest.parent_path();
  bool new_shard = ::mkdir(shard.c_str(), 0755) == 0;
  if (!new_shard && errno != EEXIST) {
    *err =
        fmt::format("cannot create {}: {}; nothing was published", shard.string(), err_str(errno));
    return fail();
  }
  if (new_shard && !fsync_path(root_ / "objects", true, err)) return fail();
  if (::rename(p.dir.c_str(), dest.c_str()) != 0) {
    if (errno == EEXIST || errno == ENOTEMPTY) {
      discard(p);  // published by another process meanwhile: same key, same content
      return true;
    }
    *err = fmt::format("cannot rename {} to {}: {}; nothing was published", p.dir.string(),
                       dest.string(), err_str(errno));
    return fail();
  }
  p.dir.clear();
  // The artifact is published; a failed fsync here only weakens durability.
  std::string ignored;
  fsync_path(shard, true, &ignored);
  return true;
}

void Store::discard(Pending& p) {
  if (p.dir.empty()) return;
  std::error_code ec;
  fs::remove_all(p.dir, ec);
  p.dir.clear();
}

bool Store::remove(std::string_view key, std::string* err) {
  if (!is_key_shape(key)) return true;  // no such artifact can exist
  fs::path src = artifact_dir(key);
  fs::path dst = root_ / "tmp" / fmt::format("{}.removing.{}.{}", key, ::getpid(), g_counter++);
  if (::rename(src.c_str(), dst.c_str()) != 0) {
    if (errno == ENOENT) return true;
    if (err) {
      *err = fmt::format("cannot move {} to {}: {}", src.string(), dst.string(), err_str(errno));
    }
    return false;
  }
  std::error_code ec;
  fs::remove_all(dst, ec);
  if (ec) {
    if (err) {
      *err = fmt::format(
          "artifact {} was unpublished but {} could not be removed: {}; delete it by hand", key,
          dst.string(), ec.message());
    }
    return false;
  }
  return true;
}

std::vector<std::string> Store::keys(std::string* err) const {
  std::vector<std::string> out;
  std::error_code ec;
  fs::path objects = root_ / "objects";
  for (fs::directory_iterator it(objects, ec), end; !ec && it != end; it.increment(ec)) {
    std::string shard = it->path().filename().string();
    if (shard.size() != 2) continue;
    std::error_code sec;
    for (fs::directory_iterator jt(it->path(), sec); !sec && jt != end; jt.increment(sec)) {
      std::string name = jt->path().filename().string();
      std::error_code dec;
      if (is_key_shape(name) && name.compare(0, 2, shard) == 0 && jt->is_directory(dec)) {
        out.push_back(std::move(name));
      }
    }
  }
  if (ec && err) *err = fmt::format("cannot list {}: {}", objects.string(), ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

size_t Store::clean_stale_tmp() {
  std::vector<fs::path> candidates;
  std::error_code ec;
  for (fs::directory_iterator it(root_ / "tmp", ec), end; !ec && it != end; it.increment(ec)) {
    if (!tmp_entry_key(it->path().filename().string()).empty()) candidates.push_back(it->path());
  }
  size_t removed = 0;
  for (const fs::path& dir : candidates) {
    std::string name = dir.filename().string();
    std::string lerr;
    auto lock = KeyLock::try_acquire(lock_path(tmp_entry_key(name)), &lerr);
    if (!lock) continue;  // a live run owns it (or the lock is unusable: leave it)
    std::error_code rec;
    if (fs::remove_all(dir, rec) > 0 && !rec) ++removed;
  }
  return removed;
}

size_t Store::clean_scratch(const std::set<std::string>& live, uint64_t* bytes) {
  return clean_per_key("scratch", live, bytes);
}

size_t Store::clean_per_key(const std::string& subdir, const std::set<std::string>& live, uint64_t* bytes) {
  std::vector<std::pair<fs::path, std::string>> candidates;
  std::error_code ec;
  for (fs::directory_iterator it(root_ / subdir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const std::string key = name.substr(0, name.find('.'));  // "<key>" or "<key>.json"
    if (is_key_shape(key) && !live.count(key)) candidates.emplace_back(it->path(), key);
  }
  size_t removed = 0;
  for (const auto& [dir, key] : candidates) {
    std::string lerr;
    auto lock = KeyLock::try_acquire(lock_path(key), &lerr);
    if (!lock) continue;  // a live run owns it
    uint64_t size = 0;
    std::error_code rec;
    for (fs::recursive_directory_iterator it(dir, rec), end; !rec && it != end; it.increment(rec))
      if (it->is_regular_file(rec)) size += it->file_size(rec);
    if (fs::remove_all(dir, rec) > 0 && !rec) {
      ++removed;
      if (bytes) *bytes += size;
    }
  }
  return removed;
}

}  // namespace qsweep::cache
