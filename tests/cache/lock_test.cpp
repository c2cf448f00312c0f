#include "cache/lock.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/testutil.h"

namespace qsweep::cache {
namespace {

namespace fs = std::filesystem;
using qsweep::testing::TempDir;
using qsweep::testing::write_file;

TEST(KeyLock, ConflictsWithinOneProcessUntilReleased) {
  TempDir t;
  fs::path f = t / "locks" / "k.lock";  // locks/ does not exist yet
  std::string err;
  auto a = KeyLock::try_acquire(f, &err);
  ASSERT_TRUE(a) << err;
  EXPECT_TRUE(std::filesystem::exists(f));
  err = "stale";
  auto b = KeyLock::try_acquire(f, &err);
  EXPECT_FALSE(b);
  EXPECT_EQ(err, "") << "a busy lock is not an error";
  auto other = KeyLock::try_acquire(t / "locks" / "other.lock", &err);
  EXPECT_TRUE(other) << "locks of other keys are independent: " << err;
  a.reset();
  auto c = KeyLock::try_acquire(f, &err);
  EXPECT_TRUE(c) << err;
  EXPECT_TRUE(std::filesystem::exists(f)) << "the lock file stays";
}

TEST(KeyLock, ReleasedWhenHolderIsKilled) {
  TempDir t;
  fs::path f = t / "k.lock";
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(pipe_fds[0]);
    std::string err;
    auto lock = KeyLock::try_acquire(f, &err);
    char c = lock ? 'L' : 'E';
    (void)!::write(pipe_fds[1], &c, 1);
    for (;;) ::pause();  // hold the lock until killed
  }
  ::close(pipe_fds[1]);
  char c = 0;
  ASSERT_EQ(::read(pipe_fds[0], &c, 1), 1);
  ::close(pipe_fds[0]);
  std::string err;
  EXPECT_EQ(c, 'L') << "the child could not take the lock";
  EXPECT_FALSE(KeyLock::try_acquire(f, &err)) << "the child holds it";
  EXPECT_EQ(err, "");
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  auto lock = KeyLock::try_acquire(f, &err);
  EXPECT_TRUE(lock) << "the kernel released the dead holder's lock: " << err;
}

TEST(KeyLock, IoErrorNamesTheFile) {
  TempDir t;
  write_file(t / "afile", "x");
  std::string err;
  EXPECT_FALSE(KeyLock::try_acquire(t / "afile" / "k.lock", &err));
  EXPECT_NE(err.find((t / "afile" / "k.lock").string()), std::string::npos) << err;
}

}  // namespace
}  // namespace qsweep::cache
