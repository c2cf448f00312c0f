// A damaged cache: truncated or edited artifacts, a cache path that cannot
// be a directory, and a full disk while publishing.

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>

#include <gmock/gmock.h>

#include "tests/e2e/e2e_util.h"

namespace qsweep::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class CacheFaultTest : public SweepTest {
 protected:
  fs::path out_file(const std::string& node, const std::string& file) {
    std::string key = journal().keys()[node];
    return cache() / "objects" / key.substr(0, 2) / key / "out" / file;
  }
  // Overwrites one byte of f in place, keeping its size (and, when asked, its mtime).
  void flip_byte(const fs::path& f, bool keep_mtime) {
    struct stat st;
    ASSERT_EQ(::stat(f.c_str(), &st), 0) << f;
    std::string text = read_file(f);
    ASSERT_FALSE(text.empty());
    text[0] = text[0] == 'X' ? 'Y' : 'X';
    write_file(f, text);
    if (keep_mtime) {
      struct timespec times[2] = {st.st_atim, st.st_mtim};
      ASSERT_EQ(::utimensat(AT_FDCWD, f.c_str(), times, 0), 0);
    }
    ASSERT_EQ(fs::file_size(f), static_cast<uintmax_t>(st.st_size));
  }
};

TEST_F(CacheFaultTest, TruncatedArtifactIsCorruptAndRecomputed) {
  ASSERT_EQ(run().exit_code, 0);
  const std::string key = journal().keys()["quant[r2]"];
  const fs::path f = out_file("quant[r2]", "q.txt");
  const std::string good = read_file(f);
  fs::resize_file(f, 3);

  ProcResult v = qsweep({"cache", "verify"});
  EXPECT_EQ(v.exit_code, 1) << describe(v);
  EXPECT_THAT(v.out, HasSubstr("CORRUPT " + key)) << v.out;
  EXPECT_THAT(v.out, HasSubstr("truncated")) << v.out;
  EXPECT_THAT(v.out, HasSubstr("1 corrupt")) << v.out;

  auto states = plan_states();
  EXPECT_EQ(states["quant[r2]"], "corrupt");
  for (const auto& n : {"gen", "quant[r1]", "quant[r3]", "table"}) EXPECT_EQ(states[n], "cached") << n;
  ProcResult plan = qsweep({"plan", exp().string()});
  EXPECT_THAT(plan.out, HasSubstr("corrupt  quant[r2]")) << plan.out;

  ProcResult r = run();
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  Journal j = journal();
  EXPECT_THAT(j.nodes(j.last_run(), "node_start"), ElementsAre("quant[r2]"));
  EXPECT_EQ(read_file(f), good);
  ProcResult v2 = qsweep({"cache", "verify"});
  EXPECT_EQ(v2.exit_code, 0) << describe(v2);
}

TEST_F(CacheFaultTest, SameSizeEditWithOldMtimeIsCaughtByVerify) {
  ASSERT_EQ(run().exit_code, 0);
  const std::string key = journal().keys()["table"];
  flip_byte(out_file("table", "table.txt"), /*keep_mtime=*/true);

  // The cheap check of plan/run trusts size + mtime (cache/store.h); verify re-hashes.
  ProcResult v = qsweep({"cache", "verify"});
  EXPECT_EQ(v.exit_code, 1) << describe(v);
  EXPECT_THAT(v.out, HasSubstr("CORRUPT " + key + " table")) << v.out;
  EXPECT_THAT(v.out, HasSubstr("was modified")) << v.out;

  ProcResult del = qsweep({"cache", "verify", "--delete"});
  EXPECT_EQ(del.exit_code, 1) << describe(del);
  EXPECT_THAT(del.out, HasSubstr("removed")) << del.out;
  EXPECT_EQ(plan_states()["table"], "to-run");

  ProcResult r = run();
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  Journal j = journal();
  EXPECT_THAT(j.nodes(j.last_run(), "node_start"), ElementsAre("table"));
  ProcResult v2 = qsweep({"cache", "verify"});
  EXPECT_EQ(v2.exit_code, 0) << describe(v2);
}

TEST_F(CacheFaultTest, SameSizeEditWithNewMtimeIsCorruptInPlan) {
  ASSERT_EQ(run().exit_code, 0);
  flip_byte(out_file("gen", "data.txt"), /*keep_mtime=*/false);
  EXPECT_EQ(plan_states()["gen"], "corrupt");
  ProcResult r = run();
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  Journal j = journal();
  EXPECT_THAT(j.nodes(j.last_run(), "node_start"), ElementsAre("gen"));
  EXPECT_EQ(qsweep({"cache", "verify"}).exit_code, 0);
}

TEST_F(CacheFaultTest, CacheUnderARegularFileIsAUsageError) {
  write_file(path("file"), "not a directory\n");
  const std::string bad = path("file/cache").string();
  const std::vector<std::vector<std::string>> commands = {
      {"run", exp().string()}, {"plan", exp().string()}, {"cache", "ls"}, {"cache", "verify"},
      {"status"}};
  for (auto args : commands) {
    args.push_back("--cache");
    args.push_back(bad);
    ProcResult r = qsweep(args);
    EXPECT_EQ(r.exit_code, 2) << args[0] << "\n" << describe(r);
    EXPECT_THAT(r.err, HasSubstr("'" + bad + "'")) << args[0] << "\n" << describe(r);
    EXPECT_THAT(r.err, HasSubstr("error")) << args[0];
  }
  EXPECT_EQ(read_file(path("file")), "not a directory\n");
}

TEST_F(CacheFaultTest, ReadOnlyCommandsDoNotCreateACache) {
  const std::string missing = path("never-ran/cache").string();
  for (std::vector<std::string> args :
       std::vector<std::vector<std::string>>{{"status"}, {"cache", "ls"}, {"cache", "verify"}, {"show", "abc"}}) {
    args.push_back("--cache");
    args.push_back(missing);
    ProcResult r = qsweep(args);
    EXPECT_EQ(r.exit_code, 2) << args[0] << "\n" << describe(r);
    EXPECT_THAT(r.err, HasSubstr("no cache at '" + missing + "'")) << describe(r);
  }
  EXPECT_FALSE(fs::exists(path("never-ran"))) << "a read-only command created the cache";
}

// The full path of a program in PATH; empty when absent.
std::string which(const std::string& name) {
  const char* p = std::getenv("PATH");
  std::string path = p ? p : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= path.size()) {
    size_t colon = path.find(':', start);
    fs::path cand = fs::path(path.substr(start, colon == std::string::npos ? std::string::npos : colon - start)) / name;
    if (::access(cand.c_str(), X_OK) == 0) return cand.string();
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return {};
}

// small, then big (a 1 MiB file on a 256 KiB filesystem). big's program
// ignores its write error and exits 0, so the failure happens in publish.
constexpr const char* k_full = R"~(version: 1
name: e2e-full
stages:
  - name: small
    kind: command
    params: {argv: [sh, -c, 'echo small > "$0/small.txt"', "${output_dir}"]}
  - name: big
    kind: command
    inputs: {small: small}
    params: {argv: [sh, -c, 'head -c 1048576 /dev/zero > "$0/big.bin" 2>/dev/null; exit 0', "${output_dir}"]}
)~";

TEST_F(E2ETest, FullDiskWhilePublishingFailsTheNodeAndPublishesNothing) {
  const std::string unshare = which("unshare");
  if (unshare.empty()) GTEST_SKIP() << "unshare(1) is not installed";
  fs::create_directories(path("mnt"));
  ProcResult probe = run_command({unshare, "-m", "/bin/sh", "-c",
                                  "mount -t tmpfs -o size=256k tmpfs \"$0\"", path("mnt").string()});
  if (probe.exit_code != 0)
    GTEST_SKIP() << "cannot mount a small tmpfs in a private mount namespace (needs root or "
                    "user namespaces): `unshare -m mount -t tmpfs ...` said:\n"
                 << probe.err;

  write_exp(k_full);
  // The tmpfs disappears with the namespace: copy the cache out before leaving it.
  const char* script =
      "mount -t tmpfs -o size=256k tmpfs \"$0\" || exit 99\n"
      "\"$1\" run \"$2\" --progress lines --cache \"$0/cache\"\n"
      "rc=$?\n"
      "cp -a \"$0/cache\" \"$3\" || exit 98\n"
      "exit $rc\n";
  ProcResult r = run_command({unshare, "-m", "/bin/sh", "-c", script, path("mnt").string(),
                              qsweep_bin().string(), exp().string(), cache().string()},
                             60, dir_.path());
  ASSERT_NE(r.exit_code, 99) << describe(r);
  ASSERT_NE(r.exit_code, 98) << describe(r);
  EXPECT_EQ(r.exit_code, 1) << describe(r);

  Journal j = journal();
  const std::string run_id = j.last_run();
  EXPECT_THAT(j.nodes(run_id, "node_done"), ElementsAre("small"));
  json failed = j.find(run_id, "node_failed", "big");
  ASSERT_FALSE(failed.is_null()) << describe(r);
  std::string error = failed.value("error", "");
  std::transform(error.begin(), error.end(), error.begin(), [](unsigned char c) { return std::tolower(c); });
  EXPECT_THAT(error, HasSubstr("publishing the artifact failed")) << failed.dump();
  EXPECT_THAT(error, HasSubstr("no space left")) << failed.dump();

  EXPECT_EQ(object_keys(cache()), std::vector<std::string>{j.keys()["small"]});
  EXPECT_EQ(list_dir(cache() / "tmp"), std::vector<std::string>{});
  ProcResult v = qsweep({"cache", "verify"});
  EXPECT_EQ(v.exit_code, 0) << describe(v);
}

}  // namespace
}  // namespace qsweep::testing
