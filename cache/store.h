#pragma once
// The content-addressed artifact store: a directory tree keyed by node key.
//
// Layout (format version 1, written in <root>/VERSION as "qsweep-cache 1"):
//   <root>/VERSION
//   <root>/objects/<k[0:2]>/<key>/manifest.json   published artifacts (never modified)
//   <root>/objects/<k[0:2]>/<key>/out/...         the files the stage produced
//   <root>/tmp/<key>.<host>.<pid>.<n>/            in-progress artifacts (same layout)
//   <root>/locks/<key>.lock                       per-key locks (see lock.h)
//   <root>/scratch/<key>/                         a stage's internal checkpoints of an
//                                                 unfinished key (kept across failed or
//                                                 killed attempts; removed once published)
//   <root>/journal.jsonl                          run journal (see journal.h)
//   <root>/journal/<stage kind>/*.jsonl           request journals of long stages (infer),
//                                                 shared by nodes and kept across runs
//                                                 (record_log.h); safe to delete
//   <root>/stat-cache.jsonl                       file digest stat cache (file_digest.h)
//
// Invariants:
// - An artifact is visible under objects/ only after its files and manifest
//   were fsynced in tmp/ and the directory was renamed there (atomic on POSIX).
// - A tmp/ directory for key K is only written while the lock of K is held, so
//   whoever holds K's lock may delete any tmp/ directory of K.
// - A corrupt artifact (manifest unreadable, a file missing, truncated or with
//   other content) is reported as kCorrupt and is never served as a hit.

#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cache/manifest.h"

namespace qsweep::cache {

enum class ArtifactState { kMissing, kValid, kCorrupt };

class Store {
 public:
  /// Opens (creating if needed) the store at root. False + *err naming the
  /// directory when it cannot be created or written, or has another VERSION.
  static std::unique_ptr<Store> open(const std::filesystem::path& root, std::string* err);

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path artifact_dir(std::string_view key) const;
  /// What consumers read: artifact_dir(key)/out.
  std::filesystem::path output_dir(std::string_view key) const;
  std::filesystem::path lock_path(std::string_view key) const;
  /// <root>/scratch/<key> (not created here). Only written under key's lock.
  std::filesystem::path scratch_dir(std::string_view key) const;
  std::filesystem::path journal_path() const { return root_ / "journal.jsonl"; }
  std::filesystem::path stat_cache_path() const { return root_ / "stat-cache.jsonl"; }

  /// Cheap check (every plan): the manifest parses and names this key; every
  /// listed file exists with its recorded size; a file whose mtime differs
  /// from the recorded one is re-hashed and compared. *m is filled when valid,
  /// *why says what is wrong when corrupt.
  ArtifactState check(std::string_view key, Manifest* m, std::string* why) const;

  /// Full check (`qsweep cache verify`): like check(), and re-hashes every file.
  ArtifactState verify(std::string_view key, Manifest* m, std::string* why) const;

  /// An artifact being built. The stage writes into out_dir().
  struct Pending {
    std::string key;
    std::filesystem::path dir;  ///< <root>/tmp/<key>.<host>.<pid>.<n>
    std::filesystem::path out_dir() const { return dir / "out"; }
  };

  /// Creates a fresh tmp directory for key (removing stale ones of the same
  /// key: the caller holds the key's lock). False + *err on I/O errors.
  bool begin(std::string_view key, Pending* p, std::string* err);

  /// Hashes every regular file under p.out_dir() into m->files, writes
  /// manifest.json, fsyncs files and directories and renames p.dir to
  /// artifact_dir(m->key). Symlinks and special files under out/ are an error.
  /// On any failure (e.g. ENOSPC) the tmp directory is removed, nothing is
  /// published, and *err says what failed and where.
  bool publish(Pending& p, Manifest* m, std::string* err);

  /// Removes a pending tmp directory (stage failed or was cancelled).
  void discard(Pending& p);

  /// Removes a published artifact (corrupt, or collected by gc): renamed into
  /// tmp/ first so that a half-removed artifact is never visible.
  bool remove(std::string_view key, std::string* err);

  /// Keys of all published artifacts, sorted.
  std::vector<std::string> keys(std::string* err) const;

  /// Removes tmp/ directories whose key lock is not held (leftovers of killed
  /// runs). Returns how many were removed.
  size_t clean_stale_tmp();

  /// Removes scratch/<key> directories of keys not in `live` whose lock is
  /// not held (internal checkpoints of nodes no experiment refers to any
  /// more). Returns how many were removed; *bytes (optional) their size.
  size_t clean_scratch(const std::set<std::string>& live, uint64_t* bytes = nullptr);
  /// The same for any per-key entry <root>/<subdir>/<key>[.ext] (file or
  /// directory): the Slurm executor's plans/<key>.json and slurm/<key>/.
  size_t clean_per_key(const std::string& subdir, const std::set<std::string>& live, uint64_t* bytes = nullptr);

 private:
  explicit Store(std::filesystem::path root) : root_(std::move(root)) {}
  ArtifactState check_impl(std::string_view key, bool full, Manifest* m, std::string* why) const;

  std::filesystem::path root_;
};

}  // namespace qsweep::cache
