#pragma once
// Per-key locks shared by every qsweep process on one cache, also across hosts
// on a shared filesystem: open-file-description fcntl locks (F_OFD_SETLK) on
// <root>/locks/<key>.lock. They conflict between processes *and* between two
// acquisitions in one process, and the kernel releases them when the holder
// dies (SIGKILL, power cut on NFS: when the lease expires).

#include <filesystem>
#include <memory>
#include <string>

namespace qsweep::cache {

class KeyLock {
 public:
  /// Non-blocking. A held lock; nullptr when another holder has it (then *err
  /// stays empty) or on an I/O error (then *err names the lock file).
  static std::unique_ptr<KeyLock> try_acquire(const std::filesystem::path& lock_file,
                                              std::string* err);
  ~KeyLock();  ///< releases the lock (the lock file itself stays)
  KeyLock(const KeyLock&) = delete;
  KeyLock& operator=(const KeyLock&) = delete;

 private:
  explicit KeyLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace qsweep::cache
