#pragma once
// Content digests of local files with a stat cache (ccache's "cheap stat before
// expensive hash"): (device, inode, size, mtime_ns) is stored beside each
// digest, and a file is re-hashed only when one of them changes, so unchanged
// multi-GB inputs are not re-read on every `qsweep plan`.
//
// On-disk format, <cache>/stat-cache.jsonl, version 1: one JSON object per
// line, appended and flushed; on load the latest line for a path wins:
//   {"v":1,"path":ABS,"dev":N,"ino":N,"size":N,"mtime_ns":N,"xxh3":HEX32}
// Lines that do not parse (a torn last line after a crash) are ignored.

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <unordered_map>

#include "cache/hash.h"

namespace qsweep::cache {

class FileDigestCache {
 public:
  /// log_path may be empty: then nothing is persisted (an in-memory cache).
  explicit FileDigestCache(std::filesystem::path log_path);

  /// Digest of the file's content; thread-safe. False + *err (naming the
  /// file) when it does not exist or cannot be read.
  bool digest(const std::filesystem::path& file, Digest128* out, std::string* err);

  /// Number of files actually hashed (not served from the stat cache) so far.
  uint64_t hashed_count() const { return hashed_; }

 private:
  struct Entry {
    uint64_t dev = 0, ino = 0, size = 0;
    int64_t mtime_ns = 0;
    Digest128 digest;
  };
  void load();

  std::filesystem::path log_path_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;  // key: absolute path
  uint64_t hashed_ = 0;
};

}  // namespace qsweep::cache
