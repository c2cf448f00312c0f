// A publish that runs out of disk space must fail cleanly: false, an error that
// says "no space left", nothing under objects/, nothing left in tmp/.
//
// The full disk is a 64 KiB tmpfs mounted in a private mount namespace of a
// forked child (needs CAP_SYS_ADMIN; skipped with the reason otherwise).

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "cache/store.h"
#include "tests/testutil.h"

namespace qsweep::cache {
namespace {

namespace fs = std::filesystem;

constexpr int k_skip = 77;  // child exit code: the environment cannot run the test
constexpr char k_key[] = "0123456789abcdef0123456789abcdef";

// Runs in the forked child; returns its exit code. Reports the skip reason on report_fd.
int full_disk_child(const fs::path& mnt, int report_fd) {
  auto skip = [&](const char* what) {
    std::string msg = std::string(what) + ": " + std::strerror(errno);
    (void)!::write(report_fd, msg.data(), msg.size());
    return k_skip;
  };
  auto fail = [](const std::string& msg) {
    std::fprintf(stderr, "full_disk_child: %s\n", msg.c_str());
    return 1;
  };
  if (::unshare(CLONE_NEWNS) != 0) return skip("unshare(CLONE_NEWNS)");
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return skip("mount --make-rprivate /");
  }
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=64k") != 0) return skip("mount tmpfs");

  std::string err;
  auto store = Store::open(mnt / "cache", &err);
  if (!store) return fail("open: " + err);
  Store::Pending p;
  if (!store->begin(k_key, &p, &err)) return fail("begin: " + err);
  // Empty files take no pages on tmpfs, but their manifest entries (~150
  // bytes each, ~45 KB in all) need pages that the filler below takes away.
  for (int i = 0; i < 300; ++i) {
    char name[96];
    std::snprintf(name, sizeof name, "a-file-with-a-rather-long-name-to-grow-the-manifest-%03d", i);
    int fd = ::open((p.out_dir() / name).c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) return fail(std::string("create ") + name + ": " + std::strerror(errno));
    ::close(fd);
  }
  int filler = ::open((mnt / "filler").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (filler < 0) return fail(std::string("create filler: ") + std::strerror(errno));
  char block[4096] = {};
  for (;;) {
    ssize_t n = ::write(filler, block, sizeof block);
    if (n < 0 && errno == ENOSPC) break;
    if (n <= 0) return fail(std::string("fill: ") + std::strerror(errno));
  }
  ::close(filler);

  Manifest m;
  m.node = "full-disk";
  if (store->publish(p, &m, &err)) return fail("publish succeeded on a full disk");
  if (err.find("no space left on device while writing") == std::string::npos ||
      err.find("manifest.json") == std::string::npos ||
      err.find("nothing was published") == std::string::npos) {
    return fail("unexpected error: " + err);
  }
  if (!store->keys(&err).empty()) return fail("an artifact is listed under objects/");
  if (!fs::is_empty(store->root() / "objects")) return fail("objects/ is not empty");
  if (!fs::is_empty(store->root() / "tmp")) return fail("tmp/ is not empty");
  if (store->check(k_key, nullptr, nullptr) != ArtifactState::kMissing) {
    return fail("check() does not report kMissing");
  }
  return 0;
}

TEST(StoreFullDisk, PublishFailsCleanlyOnEnospc) {
  qsweep::testing::TempDir t;
  fs::path mnt = t / "mnt";
  fs::create_directory(mnt);
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0) << std::strerror(errno);
  if (pid == 0) {
    ::close(pipe_fds[0]);
    ::_exit(full_disk_child(mnt, pipe_fds[1]));  // _exit: no destructors of the parent's objects
  }
  ::close(pipe_fds[1]);
  std::string reason;
  char buf[256];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) > 0;) reason.append(buf, n);
  ::close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child died with signal " << WTERMSIG(status);
  if (WEXITSTATUS(status) == k_skip) {
    GTEST_SKIP() << "cannot mount a small tmpfs in a private mount namespace (" << reason
                 << "); run as root or with CAP_SYS_ADMIN to test ENOSPC handling";
  }
  EXPECT_EQ(WEXITSTATUS(status), 0) << "see the child's stderr above";
}

}  // namespace
}  // namespace qsweep::cache
