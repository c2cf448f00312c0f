#include "cache/lock.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace qsweep::cache {

std::unique_ptr<KeyLock> KeyLock::try_acquire(const std::filesystem::path& lock_file,
                                              std::string* err) {
  if (err) err->clear();
  int fd = ::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 && errno == ENOENT && lock_file.has_parent_path()) {
    std::error_code ec;  // the locks/ directory is missing: create it and retry once
    std::filesystem::create_directories(lock_file.parent_path(), ec);
    fd = ::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  }
  if (fd < 0) {
    if (err) {
      *err = fmt::format("cannot open lock file '{}': {}; check permissions of the cache directory",
                         lock_file.string(), std::strerror(errno));
    }
    return nullptr;
  }
  struct flock fl = {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 0;  // the whole file
  fl.l_pid = 0;  // required for OFD locks
  int rc;
  do {
    rc = ::fcntl(fd, F_OFD_SETLK, &fl);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int e = errno;
    ::close(fd);
    if (e == EAGAIN || e == EACCES) return nullptr;  // held by someone else
    if (err) {
      *err = fmt::format("cannot lock '{}': {}; the filesystem may not support fcntl locks",
                         lock_file.string(), std::strerror(e));
    }
    return nullptr;
  }
  return std::unique_ptr<KeyLock>(new KeyLock(fd));
}

KeyLock::~KeyLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the only descriptor of the OFD releases the lock
}

}  // namespace qsweep::cache
