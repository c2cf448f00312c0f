#include "cache/file_digest.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <thread>
#include <vector>

#include "tests/testutil.h"

namespace qsweep::cache {
namespace {

using qsweep::testing::read_file;
using qsweep::testing::TempDir;
using qsweep::testing::write_file;

// Sets a file's mtime to sec seconds since the epoch.
void set_mtime(const std::filesystem::path& p, time_t sec) {
  struct timespec ts[2] = {{sec, 0}, {sec, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), ts, 0), 0);
}

TEST(FileDigestCache, ServesUnchangedFilesFromStatCache) {
  TempDir t;
  write_file(t / "in.bin", "hello world");
  FileDigestCache c(t / "stat-cache.jsonl");
  Digest128 d1, d2;
  std::string err;
  ASSERT_TRUE(c.digest(t / "in.bin", &d1, &err)) << err;
  EXPECT_EQ(c.hashed_count(), 1u);
  EXPECT_EQ(d1, hash_bytes("hello world", 11));
  // A non-normalized spelling of the same path is the same entry.
  ASSERT_TRUE(c.digest(t.path() / "." / "in.bin", &d2, &err)) << err;
  EXPECT_EQ(c.hashed_count(), 1u);
  EXPECT_EQ(d1, d2);
}

TEST(FileDigestCache, PersistsAcrossInstances) {
  TempDir t;
  write_file(t / "in.bin", "abc");
  Digest128 d1, d2;
  std::string err;
  {
    FileDigestCache c(t / "stat-cache.jsonl");
    ASSERT_TRUE(c.digest(t / "in.bin", &d1, &err)) << err;
    EXPECT_EQ(c.hashed_count(), 1u);
  }
  FileDigestCache c2(t / "stat-cache.jsonl");
  ASSERT_TRUE(c2.digest(t / "in.bin", &d2, &err)) << err;
  EXPECT_EQ(c2.hashed_count(), 0u);
  EXPECT_EQ(d1, d2);
}

TEST(FileDigestCache, RehashesAfterChange) {
  TempDir t;
  write_file(t / "in.bin", "version one");
  set_mtime(t / "in.bin", 1000);
  FileDigestCache c(t / "stat-cache.jsonl");
  Digest128 d1, d2, d3;
  std::string err;
  ASSERT_TRUE(c.digest(t / "in.bin", &d1, &err)) << err;
  // Same size, different mtime.
  write_file(t / "in.bin", "version two");
  set_mtime(t / "in.bin", 2000);
  ASSERT_TRUE(c.digest(t / "in.bin", &d2, &err)) << err;
  EXPECT_EQ(c.hashed_count(), 2u);
  EXPECT_NE(d1, d2);
  EXPECT_EQ(d2, hash_bytes("version two", 11));
  // Different size, same mtime.
  write_file(t / "in.bin", "version three");
  set_mtime(t / "in.bin", 2000);
  ASSERT_TRUE(c.digest(t / "in.bin", &d3, &err)) << err;
  EXPECT_EQ(c.hashed_count(), 3u);
  EXPECT_EQ(d3, hash_bytes("version three", 13));
  // A new instance sees the latest line for the path.
  FileDigestCache c2(t / "stat-cache.jsonl");
  Digest128 d4;
  ASSERT_TRUE(c2.digest(t / "in.bin", &d4, &err)) << err;
  EXPECT_EQ(c2.hashed_count(), 0u);
  EXPECT_EQ(d4, d3);
}

TEST(FileDigestCache, IgnoresTornLastLineAndKeepsAppending) {
  TempDir t;
  write_file(t / "a", "aaa");
  write_file(t / "b", "bbb");
  std::string err;
  Digest128 d;
  {
    FileDigestCache c(t / "stat-cache.jsonl");
    ASSERT_TRUE(c.digest(t / "a", &d, &err)) << err;
  }
  {
    std::ofstream f(t / "stat-cache.jsonl", std::ios::app);
    f << "garbage line\n{\"v\":1,\"path\":\"/x\",\"dev\":1,\"ino";  // torn, no newline
  }
  {
    FileDigestCache c(t / "stat-cache.jsonl");
    ASSERT_TRUE(c.digest(t / "a", &d, &err)) << err;
    EXPECT_EQ(c.hashed_count(), 0u);
    ASSERT_TRUE(c.digest(t / "b", &d, &err)) << err;  // appended after the torn line
    EXPECT_EQ(c.hashed_count(), 1u);
  }
  FileDigestCache c(t / "stat-cache.jsonl");
  ASSERT_TRUE(c.digest(t / "b", &d, &err)) << err;
  EXPECT_EQ(c.hashed_count(), 0u) << read_file(t / "stat-cache.jsonl");
  EXPECT_EQ(d, hash_bytes("bbb", 3));
}

TEST(FileDigestCache, InMemoryWhenLogPathEmpty) {
  TempDir t;
  write_file(t / "a", "aaa");
  FileDigestCache c{std::filesystem::path{}};
  Digest128 d;
  std::string err;
  ASSERT_TRUE(c.digest(t / "a", &d, &err)) << err;
  ASSERT_TRUE(c.digest(t / "a", &d, &err)) << err;
  EXPECT_EQ(c.hashed_count(), 1u);
}

TEST(FileDigestCache, ThreadSafe) {
  TempDir t;
  constexpr int k_files = 8, k_threads = 4;
  for (int i = 0; i < k_files; ++i) write_file(t / std::to_string(i), std::string(1000 + i, 'x'));
  FileDigestCache c(t / "stat-cache.jsonl");
  std::vector<std::thread> threads;
  for (int n = 0; n < k_threads; ++n) {
    threads.emplace_back([&] {
      for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < k_files; ++i) {
          Digest128 d;
          std::string err, content(1000 + i, 'x');
          EXPECT_TRUE(c.digest(t / std::to_string(i), &d, &err)) << err;
          EXPECT_EQ(d, hash_bytes(content.data(), content.size()));
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_GE(c.hashed_count(), uint64_t{k_files});
  EXPECT_LE(c.hashed_count(), uint64_t{k_files * k_threads});
  FileDigestCache c2(t / "stat-cache.jsonl");
  for (int i = 0; i < k_files; ++i) {
    Digest128 d;
    std::string err;
    ASSERT_TRUE(c2.digest(t / std::to_string(i), &d, &err)) << err;
  }
  EXPECT_EQ(c2.hashed_count(), 0u) << "every file was logged as a whole line";
}

TEST(FileDigestCache, MissingFileIsAnErrorNamingIt) {
  TempDir t;
  FileDigestCache c(t / "stat-cache.jsonl");
  Digest128 d;
  std::string err;
  EXPECT_FALSE(c.digest(t / "missing.bin", &d, &err));
  EXPECT_NE(err.find("missing.bin"), std::string::npos) << err;
}

}  // namespace
}  // namespace qsweep::cache
