// Failing stages: exit codes, signals, retries, missing outputs, fail-fast
// versus --keep-going.

#include <filesystem>

#include <gmock/gmock.h>

#include "tests/e2e/e2e_util.h"

namespace qsweep::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// bad fails (exit 3) once slowish has started; down needs it. slowish (0.6 s)
// runs beside it, and later waits for slowish: fail-fast must not start later.
constexpr const char* k_fail = R"~(version: 1
name: e2e-fail
stages:
  - name: bad
    kind: command
    inputs: {script: "file:bad.sh"}
    params: {argv: [sh, "${inputs.script}", "${output_dir}", "@DIR@/slowish.started"]}
  - name: down
    kind: command
    inputs: {bad: bad}
    params: {argv: [sh, -c, 'echo down > "$0/d.txt"', "${output_dir}"]}
  - name: slowish
    kind: command
    params: {argv: [sh, -c, 'touch "$1"; sleep 0.6; echo ok > "$0/s.txt"', "${output_dir}", "@DIR@/slowish.started"]}
  - name: later
    kind: command
    inputs: {s: slowish}
    params: {argv: [sh, -c, 'echo later > "$0/l.txt"', "${output_dir}"]}
)~";

constexpr const char* k_bad = R"~(echo "some output"
echo partial > "$1/partial.txt"
i=0
while [ ! -f "$2" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
echo "first stderr line" >&2
echo "boom: disk on fire" >&2
exit 3
)~";

class FailureTest : public E2ETest {
 protected:
  void SetUp() override {
    E2ETest::SetUp();
    if (IsSkipped()) return;
    write_exp(k_fail);
    write("bad.sh", k_bad);
  }
};

TEST_F(FailureTest, FailedNodeFailsFastAndCleansUp) {
  ProcResult r = run({"-j", "2", "--threads", "2"});
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("FAILED bad")) << describe(r);

  Journal j = journal();
  const std::string run_id = j.last_run();
  json failed = j.find(run_id, "node_failed", "bad");
  ASSERT_FALSE(failed.is_null()) << "no node_failed for bad";
  const std::string error = failed.value("error", "");
  EXPECT_THAT(error, HasSubstr("exited with code 3"));
  EXPECT_THAT(error, HasSubstr("first stderr line\nboom: disk on fire"));
  EXPECT_THAT(j.nodes(run_id, "node_failed"), ElementsAre("bad"));

  json down = j.find(run_id, "node_skipped", "down");
  ASSERT_FALSE(down.is_null());
  EXPECT_THAT(down.value("reason", ""), HasSubstr("upstream bad"));
  EXPECT_TRUE(j.find(run_id, "node_start", "down").is_null());
  // slowish was running when bad failed: it finishes. later was queued: it never starts.
  EXPECT_FALSE(j.find(run_id, "node_done", "slowish").is_null());
  EXPECT_TRUE(j.find(run_id, "node_start", "later").is_null());
  json later = j.find(run_id, "node_skipped", "later");
  ASSERT_FALSE(later.is_null());
  EXPECT_THAT(later.value("reason", ""), HasSubstr("keep-going"));
  EXPECT_EQ(j.events(run_id, "run_end").at(0).value("status", ""), "failed");

  EXPECT_EQ(list_dir(cache() / "tmp"), std::vector<std::string>{}) << "the failed node's tmp dir was left";
  EXPECT_EQ(object_keys(cache()), std::vector<std::string>{j.keys()["slowish"]});
  auto states = plan_states();
  EXPECT_EQ(states["bad"], "to-run");
  EXPECT_EQ(states["slowish"], "cached");

  ProcResult st = qsweep({"status", exp().string()});
  EXPECT_THAT(st.out, HasSubstr("failed      bad: 'sh' exited with code 3")) << st.out;
  EXPECT_THAT(st.out, HasSubstr("skipped     down: upstream bad")) << st.out;
  EXPECT_THAT(st.out, HasSubstr("done        slowish")) << st.out;
}

TEST_F(FailureTest, KeepGoingRunsEverythingIndependentOfTheFailure) {
  ProcResult r = run({"--keep-going", "-j", "2"});
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  Journal j = journal();
  const std::string run_id = j.last_run();
  EXPECT_THAT(j.nodes(run_id, "node_failed"), ElementsAre("bad"));
  EXPECT_THAT(j.nodes(run_id, "node_done"), ElementsAre("later", "slowish"));
  EXPECT_THAT(j.nodes(run_id, "node_skipped"), ElementsAre("down"));
  EXPECT_EQ(list_dir(cache() / "tmp"), std::vector<std::string>{});
}

TEST_F(FailureTest, StageKilledBySignalIsAFailedNodeNamingTheSignal) {
  write("bad.sh", "echo 'about to die' >&2\nkill -9 $$\n");
  ProcResult r = run();
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  Journal j = journal();
  json failed = j.find(j.last_run(), "node_failed", "bad");
  ASSERT_FALSE(failed.is_null()) << describe(r);
  EXPECT_THAT(failed.value("error", ""), HasSubstr("killed by signal 9 (SIGKILL"));
  EXPECT_THAT(failed.value("error", ""), HasSubstr("about to die"));
  EXPECT_EQ(list_dir(cache() / "tmp"), std::vector<std::string>{});
}

// Exits 75 on its first attempt (after leaving junk in its output folder),
// succeeds on the second. The attempt count lives outside the cache.
constexpr const char* k_flaky_yaml = R"~(version: 1
name: e2e-retry
stages:
  - name: flaky
    kind: command
    retries: 2
    inputs: {script: "file:flaky.sh"}
    params: {argv: [sh, "${inputs.script}", "${output_dir}", "@DIR@/state"], outputs: [ok.txt]}
)~";
constexpr const char* k_flaky = R"~(n=$(cat "$2/count" 2>/dev/null || echo 0)
n=$((n + 1))
echo $n > "$2/count"
if [ $n -lt 2 ]; then
  echo junk > "$1/junk.txt"
  echo "transient failure $n" >&2
  exit 75
fi
echo ok > "$1/ok.txt"
)~";

TEST_F(FailureTest, RetryableExitIsRetried) {
  write_exp(k_flaky_yaml);
  write("flaky.sh", k_flaky);
  fs::create_directories(path("state"));
  ProcResult r = run();
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(read_file(path("state/count")), "2\n");
  Journal j = journal();
  const std::string run_id = j.last_run();
  json retry = j.find(run_id, "node_retry", "flaky");
  ASSERT_FALSE(retry.is_null()) << "no node_retry record";
  EXPECT_EQ(retry.value("attempt", 0), 1);
  EXPECT_THAT(retry.value("error", ""), HasSubstr("code 75"));
  EXPECT_THAT(retry.value("error", ""), HasSubstr("transient failure 1"));
  EXPECT_THAT(j.nodes(run_id, "node_done"), ElementsAre("flaky"));
  EXPECT_TRUE(j.events(run_id, "node_failed").empty());
  // The second attempt started from an empty output folder.
  std::string key = j.keys()["flaky"];
  EXPECT_TRUE(fs::exists(cache() / "objects" / key.substr(0, 2) / key / "out" / "ok.txt"));
  EXPECT_FALSE(fs::exists(cache() / "objects" / key.substr(0, 2) / key / "out" / "junk.txt"));
}

TEST_F(FailureTest, RetryableExitWithoutRetriesFails) {
  std::string yaml = k_flaky_yaml;
  yaml.erase(yaml.find("    retries: 2\n"), 15);
  write_exp(yaml);
  write("flaky.sh", k_flaky);
  fs::create_directories(path("state"));
  ProcResult r = run();
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_EQ(read_file(path("state/count")), "1\n") << "retried without `retries`";
  Journal j = journal();
  json failed = j.find(j.last_run(), "node_failed", "flaky");
  ASSERT_FALSE(failed.is_null()) << describe(r);
  EXPECT_THAT(failed.value("error", ""), HasSubstr("exited with code 75"));
  EXPECT_TRUE(j.events("", "node_retry").empty());
}

TEST_F(FailureTest, MissingDeclaredOutputFailsNamingIt) {
  write_exp(R"~(version: 1
name: e2e-outputs
stages:
  - name: partial
    kind: command
    params:
      argv: [sh, -c, 'echo x > "$0/other.txt"', "${output_dir}"]
      outputs: [other.txt, result.json]
)~");
  ProcResult r = run();
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  Journal j = journal();
  json failed = j.find(j.last_run(), "node_failed", "partial");
  ASSERT_FALSE(failed.is_null()) << describe(r);
  EXPECT_THAT(failed.value("error", ""), HasSubstr("declared output 'result.json' was not written"));
  EXPECT_THAT(r.err, HasSubstr("result.json")) << describe(r);
  EXPECT_TRUE(object_keys(cache()).empty());
  EXPECT_EQ(list_dir(cache() / "tmp"), std::vector<std::string>{});
}

TEST_F(FailureTest, TimeoutKillsTheStage) {
  write_exp(R"~(version: 1
name: e2e-timeout
stages:
  - name: hang
    kind: command
    params: {argv: [sh, -c, 'echo started >&2; sleep 20'], timeout_s: 0.5}
)~");
  ProcResult r = run();
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_LT(r.seconds, 5.0) << describe(r);
  Journal j = journal();
  json failed = j.find(j.last_run(), "node_failed", "hang");
  ASSERT_FALSE(failed.is_null()) << describe(r);
  EXPECT_THAT(failed.value("error", ""), HasSubstr("timed out after 0.5 s"));
  EXPECT_THAT(failed.value("error", ""), HasSubstr("started"));
  EXPECT_EQ(list_dir(cache() / "tmp"), std::vector<std::string>{});
}

}  // namespace
}  // namespace qsweep::testing
