#include "cache/store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/lock.h"
#include "tests/testutil.h"

namespace qsweep::cache {
namespace {

namespace fs = std::filesystem;
using qsweep::testing::read_file;
using qsweep::testing::TempDir;
using qsweep::testing::write_file;

constexpr char k_key[] = "0123456789abcdef0123456789abcdef";
constexpr char k_key2[] = "fedcba9876543210fedcba9876543210";

std::unique_ptr<Store> open_store(const fs::path& root) {
  std::string err;
  auto s = Store::open(root, &err);
  EXPECT_TRUE(s) << err;
  return s;
}

// Publishes an artifact for key holding out/a.txt and out/sub/b.txt.
void publish_sample(Store& s, const std::string& key) {
  Store::Pending p;
  std::string err;
  ASSERT_TRUE(s.begin(key, &p, &err)) << err;
  write_file(p.out_dir() / "a.txt", "alpha");
  write_file(p.out_dir() / "sub" / "b.txt", "bravo!");
  Manifest m;
  m.node = "node[" + key + "]";
  ASSERT_TRUE(s.publish(p, &m, &err)) << err;
}

size_t count_entries(const fs::path& dir) {
  size_t n = 0;
  for (auto it = fs::directory_iterator(dir); it != fs::directory_iterator(); ++it) ++n;
  return n;
}

int64_t mtime_ns(const fs::path& p) {
  struct stat st;
  EXPECT_EQ(::stat(p.c_str(), &st), 0);
  return int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
}

void set_mtime_ns(const fs::path& p, int64_t ns) {
  struct timespec ts[2] = {{ns / 1'000'000'000, ns % 1'000'000'000},
                           {ns / 1'000'000'000, ns % 1'000'000'000}};
  ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), ts, 0), 0);
}

TEST(Store, OpenCreatesLayout) {
  TempDir t;
  auto s = open_store(t / "cache");
  ASSERT_TRUE(s);
  EXPECT_EQ(read_file(t / "cache" / "VERSION"), "qsweep-cache 1\n");
  for (const char* d : {"objects", "tmp", "locks"}) EXPECT_TRUE(fs::is_directory(t / "cache" / d));
  EXPECT_EQ(count_entries(t / "cache"), 4u);  // no probe file left behind
  EXPECT_TRUE(open_store(t / "cache"));       // reopening is fine
}

TEST(Store, OpenRejectsOtherVersion) {
  TempDir t;
  write_file(t / "cache" / "VERSION", "qsweep-cache 2\n");
  std::string err;
  EXPECT_FALSE(Store::open(t / "cache", &err));
  EXPECT_NE(err.find("qsweep-cache 2"), std::string::npos) << err;
  EXPECT_NE(err.find((t / "cache").string()), std::string::npos) << err;
}

TEST(Store, OpenFailsUnderARegularFile) {
  TempDir t;
  write_file(t / "afile", "x");
  std::string err;
  EXPECT_FALSE(Store::open(t / "afile" / "cache", &err));
  EXPECT_NE(err.find((t / "afile" / "cache").string()), std::string::npos) << err;
  EXPECT_NE(err.find("--cache DIR"), std::string::npos) << err;
}

TEST(Store, OpenFailsOnReadOnlyDirectory) {
  TempDir t;
  fs::create_directory(t / "ro");
  ASSERT_EQ(::chmod((t / "ro").c_str(), 0500), 0);
  int fd = ::open((t / "ro" / "probe").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd >= 0) {
    ::close(fd);
    ::unlink((t / "ro" / "probe").c_str());
    GTEST_SKIP() << "running with CAP_DAC_OVERRIDE (root): chmod 0500 does not stop writes";
  }
  std::string err;
  EXPECT_FALSE(Store::open(t / "ro", &err));
  EXPECT_NE(err.find("is not writable: Permission denied"), std::string::npos) << err;
  EXPECT_NE(err.find("pass --cache DIR or set QSWEEP_CACHE"), std::string::npos) << err;
}

TEST(Store, PublishThenCheckValid) {
  TempDir t;
  auto s = open_store(t / "cache");
  EXPECT_EQ(s->check(k_key, nullptr, nullptr), ArtifactState::kMissing);
  Store::Pending p;
  std::string err;
  ASSERT_TRUE(s->begin(k_key, &p, &err)) << err;
  EXPECT_EQ(p.key, k_key);
  EXPECT_EQ(p.dir.parent_path(), s->root() / "tmp");
  write_file(p.out_dir() / "a.txt", "alpha");
  write_file(p.out_dir() / "sub" / "b.txt", "bravo!");
  write_file(p.out_dir() / "empty", "");
  Manifest m;
  m.node = "n";
  m.outputs = {{"exit_code", 0}};
  ASSERT_TRUE(s->publish(p, &m, &err)) << err;
  EXPECT_EQ(m.key, k_key);
  ASSERT_EQ(m.files.size(), 3u);
  EXPECT_EQ(m.files[0].path, "a.txt");
  EXPECT_EQ(m.files[1].path, "empty");
  EXPECT_EQ(m.files[2].path, "sub/b.txt");
  EXPECT_EQ(m.files[2].size, 6u);
  EXPECT_EQ(m.files[2].xxh3, hash_bytes("bravo!", 6).hex());

  EXPECT_EQ(read_file(s->output_dir(k_key) / "a.txt"), "alpha");
  EXPECT_EQ(read_file(s->output_dir(k_key) / "sub" / "b.txt"), "bravo!");
  EXPECT_TRUE(fs::exists(s->artifact_dir(k_key) / "manifest.json"));
  EXPECT_EQ(count_entries(s->root() / "tmp"), 0u);

  Manifest got;
  std::string why;
  EXPECT_EQ(s->check(k_key, &got, &why), ArtifactState::kValid) << why;
  EXPECT_EQ(got.node, "n");
  ASSERT_EQ(got.files.size(), 3u);
  EXPECT_EQ(got.files[0].mtime_ns, m.files[0].mtime_ns);
  EXPECT_EQ(got.outputs, m.outputs);
  EXPECT_EQ(s->verify(k_key, nullptr, &why), ArtifactState::kValid) << why;
}

TEST(Store, PublishRejectsSymlinkAndCleansUp) {
  TempDir t;
  auto s = open_store(t / "cache");
  Store::Pending p;
  std::string err;
  ASSERT_TRUE(s->begin(k_key, &p, &err)) << err;
  write_file(p.out_dir() / "a.txt", "alpha");
  fs::create_directories(p.out_dir() / "d");
  fs::create_symlink("../a.txt", p.out_dir() / "d" / "link");
  fs::path tmp_dir = p.dir;
  Manifest m;
  EXPECT_FALSE(s->publish(p, &m, &err));
  EXPECT_NE(err.find((tmp_dir / "out" / "d" / "link").string()), std::string::npos) << err;
  EXPECT_NE(err.find("symbolic link"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(tmp_dir));
  EXPECT_EQ(s->check(k_key, nullptr, nullptr), ArtifactState::kMissing);
}

TEST(Store, PublishRejectsFifo) {
  TempDir t;
  auto s = open_store(t / "cache");
  Store::Pending p;
  std::string err;
  ASSERT_TRUE(s->begin(k_key, &p, &err)) << err;
  ASSERT_EQ(::mkfifo((p.out_dir() / "pipe").c_str(), 0644), 0);
  Manifest m;
  EXPECT_FALSE(s->publish(p, &m, &err));
  EXPECT_NE(err.find("named pipe"), std::string::npos) << err;
  EXPECT_EQ(count_entries(s->root() / "tmp"), 0u);
}

TEST(Store, PublishRejectsKeyMismatch) {
  TempDir t;
  auto s = open_store(t / "cache");
  Store::Pending p;
  std::string err;
  ASSERT_TRUE(s->begin(k_key, &p, &err)) << err;
  Manifest m;
  m.key = k_key2;
  EXPECT_FALSE(s->publish(p, &m, &err));
  EXPECT_EQ(count_entries(s->root() / "tmp"), 0u);
}

TEST(Store, BeginRejectsMalformedKey) {
  TempDir t;
  auto s = open_store(t / "cache");
  Store::Pending p;
  std::string err;
  EXPECT_FALSE(s->begin("../../etc", &p, &err));
  EXPECT_NE(err.find("32 lowercase hex"), std::string::npos) << err;
}

TEST(Store, CheckDetectsDeletedFile) {
  TempDir t;
  auto s = open_store(t / "cache");
  publish_sample(*s, k_key);
  fs::remove(s->output_dir(k_key) / "sub" / "b.txt");
  std::string why;
  EXPECT_EQ(s->check(k_key, nullptr, &why), ArtifactState::kCorrupt);
  EXPECT_EQ(why, "file out/sub/b.txt missing");
}

TEST(Store, CheckDetectsTruncatedFile) {
  TempDir t;
  auto s = open_store(t / "cache");
  publish_sample(*s, k_key);
  fs::resize_file(s->output_dir(k_key) / "a.txt", 2);
  std::string why;
  EXPECT_EQ(s->check(k_key, nullptr, &why), ArtifactState::kCorrupt);
  EXPECT_EQ(why, "file out/a.txt is 2 bytes, manifest says 5 (truncated?)");
}

TEST(Store, CheckDetectsSameSizeEditWithNewMtime) {
  TempDir t;
  auto s = open_store(t / "cache");
  publish_sample(*s, k_key);
  fs::path f = s->output_dir(k_key) / "a.txt";
  int64_t old = mtime_ns(f);
  write_file(f, "ALPHA");
  set_mtime_ns(f, old + 5'000'000'000);
  std::string why;
  EXPECT_EQ(s->check(k_key, nullptr, &why), ArtifactState::kCorrupt);
  EXPECT_NE(why.find("file out/a.txt was modified"), std::string::npos) << why;
}

TEST(Store, CheckAcceptsTouchedButUnchangedFile) {
  TempDir t;
  auto s = open_store(t / "cache");
  publish_sample(*s, k_key);
  fs::path f = s->output_dir(k_key) / "a.txt";
  set_mtime_ns(f, mtime_ns(f) + 5'000'000'000);
  std::string why;
  EXPECT_EQ(s->check(k_key, nullptr, &why), ArtifactState::kValid) << why;
}

TEST(Store, CheckDetectsGarbageManifest) {
  TempDir t;
  auto s = open_store(t / "cache");
  publish_sample(*s, k_key);
  write_file(s->artifact_dir(k_key) / "manifest.json", "{not json");
  std::string why;
  Manifest m;
  EXPECT_EQ(s->check(k_key, &m, &why), ArtifactState::kCorrupt);
  EXPECT_NE(why.find("manifest.json: manifest is not valid JSON"), std::string::npos) << why;
  fs::remove(s->artifact_dir(k_key) / "manifest.json");
  EXPECT_EQ(s->check(k_key, &m, &why), ArtifactState::kCorrupt);
  EXPECT_EQ(why, "manifest.json missing");
}

TEST(Store, CheckDetectsManifestOfAnotherKey) {
  TempDir t;
  auto s = open_store(t / "cache");
  publish_sample(*s, k_key);
  publish_sample(*s, k_key2);
  fs::copy_file(s->artifact_dir(k_key2) / "manifest.json", s->artifact_dir(k_key) / "manifest.json",
                fs::copy_options::overwrite_existing);
  std::string why;
  EXPECT_EQ(s->check(k_key, nullptr, &why), ArtifactState::kCorrupt);
  EXPECT_NE(why.find("names key " + std::string(k_key2)), std::string::npos) << why;
}

TEST(Store, VerifyDetectsEditWithRestoredMtime) {
  TempDir t;
  auto s = open_store(t / "cache");
  publish_sample(*s, k_key);
  fs::path f = s->output_dir(k_key) / "sub" / "b.txt";
  int64_t old = mtime_ns(f);
  write_file(f, "BRAVO!");
  set_mtime_ns(f, old);
  std::string why;
  EXPECT_EQ(s->check(k_key, nullptr, &why), ArtifactState::kValid) << "check() trusts the stat";
  EXPECT_EQ(s->verify(k_key, nullptr, &why), ArtifactState::kCorrupt);
  EXPECT_NE(why.find("file out/sub/b.txt was modified"), std::string::npos) << why;
}

TEST(Store, DiscardRemovesTmp) {
  TempDir t;
  auto s = open_store(t / "cache");
  Store::Pending p;
  std::string err;
  ASSERT_TRUE(s->begin(k_key, &p, &err)) << err;
  write_file(p.out_dir() / "x", "x");
  fs::path dir = p.dir;
  s->discard(p);
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_EQ(count_entries(s->root() / "tmp"), 0u);
}

TEST(Store, RemoveAndKeys) {
  TempDir t;
  auto s = open_store(t / "cache");
  std::string err;
  EXPECT_TRUE(s->keys(&err).empty());
  publish_sample(*s, k_key2);
  publish_sample(*s, k_key);
  fs::create_directories(s->root() / "objects" / "zz" / "not-a-key");
  EXPECT_EQ(s->keys(&err), (std::vector<std::string>{k_key, k_key2})) << err;
  ASSERT_TRUE(s->remove(k_key, &err)) << err;
  EXPECT_EQ(s->check(k_key, nullptr, nullptr), ArtifactState::kMissing);
  EXPECT_FALSE(fs::exists(s->artifact_dir(k_key)));
  EXPECT_EQ(count_entries(s->root() / "tmp"), 0u);
  EXPECT_EQ(s->keys(&err), (std::vector<std::string>{k_key2}));
  EXPECT_TRUE(s->remove(k_key, &err)) << "removing a missing artifact is a no-op";
}

TEST(Store, BeginRemovesStaleTmpOfSameKey) {
  TempDir t;
  auto s = open_store(t / "cache");
  fs::create_directories(s->root() / "tmp" / (std::string(k_key) + ".deadhost.1.0") / "out");
  fs::create_directories(s->root() / "tmp" / (std::string(k_key2) + ".deadhost.1.0") / "out");
  Store::Pending p;
  std::string err;
  ASSERT_TRUE(s->begin(k_key, &p, &err)) << err;
  EXPECT_FALSE(fs::exists(s->root() / "tmp" / (std::string(k_key) + ".deadhost.1.0")));
  EXPECT_TRUE(fs::exists(s->root() / "tmp" / (std::string(k_key2) + ".deadhost.1.0")));
  EXPECT_TRUE(fs::is_directory(p.out_dir()));
}

TEST(Store, CleanStaleTmpSkipsLockedKeys) {
  TempDir t;
  auto s = open_store(t / "cache");
  fs::path stale = s->root() / "tmp" / (std::string(k_key) + ".deadhost.1.0");
  fs::path live = s->root() / "tmp" / (std::string(k_key2) + ".host.2.0");
  fs::create_directories(stale / "out");
  fs::create_directories(live / "out");
  write_file(stale / "out" / "f", "x");
  std::string err;
  auto held = KeyLock::try_acquire(s->lock_path(k_key2), &err);
  ASSERT_TRUE(held) << err;
  EXPECT_EQ(s->clean_stale_tmp(), 1u);
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(live));
  held.reset();
  EXPECT_EQ(s->clean_stale_tmp(), 1u);
  EXPECT_FALSE(fs::exists(live));
}

TEST(Store, CleanScratchKeepsLiveAndLockedKeys) {
  TempDir t;
  auto s = open_store(t / "cache");
  const std::string k3(32, 'c');
  for (const std::string& k : {std::string(k_key), std::string(k_key2), k3}) {
    fs::create_directories(s->scratch_dir(k));
    write_file(s->scratch_dir(k) / "layer-0.safetensors", "12345");
  }
  fs::create_directories(s->root() / "scratch" / "not-a-key");
  std::string err;
  auto held = KeyLock::try_acquire(s->lock_path(k3), &err);
  ASSERT_TRUE(held) << err;
  uint64_t bytes = 0;
  EXPECT_EQ(s->clean_scratch({std::string(k_key)}, &bytes), 1u);  // k_key live, k3 locked
  EXPECT_EQ(bytes, 5u);
  EXPECT_TRUE(fs::exists(s->scratch_dir(k_key)));
  EXPECT_FALSE(fs::exists(s->scratch_dir(k_key2)));
  EXPECT_TRUE(fs::exists(s->scratch_dir(k3)));
  EXPECT_TRUE(fs::exists(s->root() / "scratch" / "not-a-key"));
  held.reset();
  EXPECT_EQ(s->clean_scratch({}), 2u);
  EXPECT_EQ(s->scratch_dir(k3), s->root() / "scratch" / k3);
}

TEST(Store, PublishOverExistingArtifactKeepsIt) {
  TempDir t;
  auto s = open_store(t / "cache");
  publish_sample(*s, k_key);
  Store::Pending p;
  std::string err;
  ASSERT_TRUE(s->begin(k_key, &p, &err)) << err;
  write_file(p.out_dir() / "other.txt", "other");
  Manifest m;
  EXPECT_TRUE(s->publish(p, &m, &err)) << err;
  EXPECT_EQ(count_entries(s->root() / "tmp"), 0u);
  EXPECT_TRUE(fs::exists(s->output_dir(k_key) / "a.txt"));
  EXPECT_EQ(s->check(k_key, nullptr, nullptr), ArtifactState::kValid);
}

}  // namespace
}  // namespace qsweep::cache
