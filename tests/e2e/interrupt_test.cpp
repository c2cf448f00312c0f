// A runner killed with SIGKILL, stopped with Ctrl-C (once, twice), and two
// runners sharing one cache.

#include <signal.h>

#include <filesystem>
#include <thread>

#include <gmock/gmock.h>

#include "tests/e2e/e2e_util.h"

namespace qsweep::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// a -> b -> slow -> d. slow writes its pid ($$, also its process group: the
// command stage makes each program a group leader) to state/slow.pid, then
// sleeps for state/sleep_s seconds.
constexpr const char* k_chain = R"~(version: 1
name: e2e-chain
stages:
  - name: a
    kind: command
    params: {argv: [sh, -c, 'echo a > "$0/a.txt"', "${output_dir}"]}
  - name: b
    kind: command
    inputs: {a: a}
    params: {argv: [sh, -c, 'cat "$0/a.txt" > "$1/b.txt"', "${inputs.a}", "${output_dir}"]}
  - name: slow
    kind: command
    inputs: {b: b, script: "file:slow.sh"}
    params: {argv: [sh, "${inputs.script}", "${output_dir}", "@DIR@/state"], outputs: [slow.txt]}
  - name: d
    kind: command
    inputs: {slow: slow}
    params: {argv: [sh, -c, 'cat "$0/slow.txt" > "$1/d.txt"', "${inputs.slow}", "${output_dir}"]}
)~";

constexpr const char* k_slow = R"~(echo $$ > "$2/slow.pid"
echo partial > "$1/partial.txt"
sleep "$(cat "$2/sleep_s")"
echo slow > "$1/slow.txt"
)~";

class InterruptTest : public E2ETest {
 protected:
  void SetUp() override {
    E2ETest::SetUp();
    if (IsSkipped()) return;
    write_exp(k_chain);
    write("slow.sh", k_slow);
    write_file(path("state/sleep_s"), "5\n");
  }
  bool slow_started() {
    Journal j = journal();
    return !j.find("", "node_start", "slow").is_null() && fs::exists(path("state/slow.pid")) &&
           !read_file(path("state/slow.pid")).empty();
  }
  pid_t slow_pid() { return static_cast<pid_t>(std::stol(read_file(path("state/slow.pid")))); }
};

TEST_F(InterruptTest, SigkillMidRunThenRerunResumes) {
  auto p = start_run();
  ASSERT_TRUE(wait_until([&] { return slow_started(); }, 10)) << p->err_so_far();
  Journal j = journal();
  const std::string first = j.last_run();
  EXPECT_THAT(j.nodes(first, "node_done"), ElementsAre("a", "b"));

  // Crash: the runner and the stage's process group, at once.
  const pid_t group = slow_pid();
  p->signal(SIGKILL);
  ::kill(-group, SIGKILL);
  ProcResult r = p->wait(10);
  EXPECT_EQ(r.term_signal, SIGKILL) << describe(r);
  EXPECT_TRUE(wait_until([&] { return !process_alive(group); }, 5)) << "slow.sh survived";
  EXPECT_FALSE(list_dir(cache() / "tmp").empty()) << "a killed run should leave its tmp dir (test premise)";
  EXPECT_TRUE(journal().events(first, "run_end").empty());
  EXPECT_EQ(journal().bad_lines, 0u);

  write_file(path("state/sleep_s"), "0\n");
  ProcResult again = run();
  ASSERT_EQ(again.exit_code, 0) << describe(again);
  j = journal();
  const std::string second = j.last_run();
  ASSERT_NE(second, first);
  EXPECT_THAT(j.nodes(second, "node_start"), ElementsAre("d", "slow"));
  EXPECT_THAT(j.nodes(second, "node_done"), ElementsAre("d", "slow"));
  EXPECT_EQ(list_dir(cache() / "tmp"), std::vector<std::string>{}) << "leftovers in tmp/";

  ProcResult st = qsweep({"status", exp().string()});
  ASSERT_EQ(st.exit_code, 0) << describe(st);
  EXPECT_THAT(st.out, HasSubstr("run " + first + "  e2e-chain")) << st.out;
  size_t line = st.out.find("run " + first);
  ASSERT_NE(line, std::string::npos);
  EXPECT_THAT(st.out.substr(line, st.out.find('\n', line) - line), HasSubstr("interrupted")) << st.out;
  EXPECT_THAT(st.out, HasSubstr("interrupted slow")) << st.out;

  ProcResult v = qsweep({"cache", "verify"});
  EXPECT_EQ(v.exit_code, 0) << describe(v);
  EXPECT_THAT(v.out, HasSubstr("verified 4 artifact(s): 0 corrupt")) << v.out;
}

// slow traps SIGINT: records it and exits 130, as a stage that saved a
// checkpoint and stopped would.
constexpr const char* k_slow_trap = R"~(trap 'echo INT > "$2/got_int"; exit 130' INT
echo $$ > "$2/slow.pid"
sleep "$(cat "$2/sleep_s")"
echo slow > "$1/slow.txt"
)~";

TEST_F(InterruptTest, SigintStopsSchedulingAndCancelsTheRunningStage) {
  write("slow.sh", k_slow_trap);
  auto p = start_run({"-j", "1"});
  ASSERT_TRUE(wait_until([&] { return slow_started(); }, 10)) << p->err_so_far();
  const size_t started = journal().events("", "node_start").size();
  p->signal(SIGINT);
  ProcResult r = p->wait(10);
  EXPECT_EQ(r.exit_code, 130) << describe(r);
  EXPECT_LT(r.seconds, 4.5) << "the stage did not stop on SIGINT\n" << describe(r);
  EXPECT_THAT(r.err, HasSubstr("no new nodes start")) << describe(r);
  EXPECT_TRUE(fs::exists(path("state/got_int"))) << "the running stage did not get SIGINT";

  Journal j = journal();
  const std::string run_id = j.last_run();
  EXPECT_EQ(j.events("", "node_start").size(), started) << "a node started after SIGINT";
  EXPECT_THAT(j.nodes(run_id, "node_done"), ElementsAre("a", "b"));
  json slow = j.find(run_id, "node_skipped", "slow");
  ASSERT_FALSE(slow.is_null()) << "no node_skipped for the cancelled node";
  EXPECT_THAT(slow.value("reason", ""), HasSubstr("cancel"));
  EXPECT_TRUE(j.find(run_id, "node_start", "d").is_null());
  ASSERT_EQ(j.events(run_id, "run_end").size(), 1u);
  EXPECT_EQ(j.events(run_id, "run_end")[0].value("status", ""), "cancelled");
  // A cancelled stage publishes nothing.
  EXPECT_EQ(plan_states()["slow"], "to-run");
  EXPECT_EQ(list_dir(cache() / "tmp"), std::vector<std::string>{});

  write_file(path("state/sleep_s"), "0\n");
  ProcResult again = run();
  ASSERT_EQ(again.exit_code, 0) << describe(again);
  j = journal();
  EXPECT_THAT(j.nodes(j.last_run(), "node_done"), ElementsAre("d", "slow"));
}

// slow traps SIGINT, finishes its work (a final checkpoint) and exits 0.
constexpr const char* k_slow_finish = R"~(trap 'echo slow > "$1/slow.txt"; exit 0' INT
echo $$ > "$2/slow.pid"
sleep "$(cat "$2/sleep_s")"
echo slow > "$1/slow.txt"
)~";

TEST_F(InterruptTest, StageThatFinishesAfterSigintIsPublished) {
  write("slow.sh", k_slow_finish);
  auto p = start_run({"-j", "1"});
  ASSERT_TRUE(wait_until([&] { return slow_started(); }, 10)) << p->err_so_far();
  p->signal(SIGINT);
  ProcResult r = p->wait(10);
  EXPECT_EQ(r.exit_code, 130) << describe(r);
  Journal j = journal();
  const std::string run_id = j.last_run();
  EXPECT_THAT(j.nodes(run_id, "node_done"), ElementsAre("a", "b", "slow"));
  EXPECT_TRUE(j.find(run_id, "node_start", "d").is_null()) << "no new node starts after SIGINT";
  EXPECT_EQ(plan_states()["slow"], "cached");
  ProcResult again = run();
  ASSERT_EQ(again.exit_code, 0) << describe(again);
  j = journal();
  EXPECT_THAT(j.nodes(j.last_run(), "node_done"), ElementsAre("d"));
}

// Ignores SIGINT: only the second Ctrl-C (SIGKILL to the group) stops it.
constexpr const char* k_slow_deaf = R"~(trap '' INT
echo $$ > "$2/slow.pid"
sleep 30
echo slow > "$1/slow.txt"
)~";

TEST_F(InterruptTest, SecondSigintAbortsQuickly) {
  write("slow.sh", k_slow_deaf);
  auto p = start_run();
  ASSERT_TRUE(wait_until([&] { return slow_started(); }, 10)) << p->err_so_far();
  const pid_t group = slow_pid();
  p->signal(SIGINT);
  // The first one lets the running stage finish: qsweep keeps waiting.
  ASSERT_TRUE(wait_until([&] { return p->err_so_far().find("stopping") != std::string::npos; }, 5))
      << p->err_so_far();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_TRUE(p->running()) << "qsweep exited after one SIGINT although the stage ignores it";

  const auto t0 = std::chrono::steady_clock::now();
  p->signal(SIGINT);
  ProcResult r = p->wait(15);
  const double after_second =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.exit_code, 130) << describe(r);
  EXPECT_LT(after_second, 3.0) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("aborting")) << describe(r);
  EXPECT_TRUE(wait_until([&] { return !process_alive(group); }, 3)) << "the stage outlived the abort";
  EXPECT_EQ(plan_states()["slow"], "to-run");
  EXPECT_EQ(list_dir(cache() / "tmp"), std::vector<std::string>{});
}

TEST_F(InterruptTest, SigintWhileWaitingForAnotherRunnersKey) {
  write_file(path("state/sleep_s"), "2\n");
  auto a = start_run();
  ASSERT_TRUE(wait_until([&] { return slow_started(); }, 10)) << a->err_so_far();
  // B plans slow too and waits for A's lock on its key.
  auto b = start_run({"-v"});
  ASSERT_TRUE(wait_until([&] { return b->err_so_far().find("another qsweep process") != std::string::npos; }, 10))
      << b->err_so_far();
  b->signal(SIGINT);
  ProcResult rb = b->wait(10);
  EXPECT_EQ(rb.exit_code, 130) << describe(rb);
  EXPECT_LT(rb.seconds, 1.9) << "B waited for A's node instead of stopping\n" << describe(rb);
  ProcResult ra = a->wait(20);
  EXPECT_EQ(ra.exit_code, 0) << describe(ra);

  Journal j = journal();
  const auto runs = j.runs();
  ASSERT_EQ(runs.size(), 2u);
  const std::string run_b = runs[1];
  EXPECT_TRUE(j.events(run_b, "node_start").empty());
  EXPECT_EQ(j.events(run_b, "run_end").at(0).value("status", ""), "cancelled");
  // Every node B planned ends with a record in B's run, including the one it waited for.
  json slow = j.find(run_b, "node_skipped", "slow");
  ASSERT_FALSE(slow.is_null()) << "no record of slow in the cancelled run " << run_b;
  EXPECT_THAT(slow.value("reason", ""), HasSubstr("cancelled"));
  EXPECT_THAT(j.nodes(runs[0], "node_done"), ElementsAre("a", "b", "d", "slow"));
}

// Six independent nodes of 0.3 s and one that joins them.
constexpr const char* k_parallel = R"~(version: 1
name: e2e-parallel
recipes: {r1: {}, r2: {}, r3: {}, r4: {}, r5: {}, r6: {}}
stages:
  - name: work
    kind: command
    matrix: {recipe: "*"}
    params: {argv: [sh, -c, 'sleep 0.3; echo "$0" > "$1/w.txt"', "${recipe}", "${output_dir}"]}
  - name: join
    kind: command
    inputs: {all: ["work[*]"]}
    params: {argv: [sh, -c, 'for d; do cat "$d/w.txt"; done > "$0/join.txt"', "${output_dir}", "${inputs.all}"]}
)~";

TEST_F(InterruptTest, TwoRunnersOnOneCacheComputeEachKeyOnce) {
  write_exp(k_parallel);
  auto p1 = start_run({"-j", "3"});
  auto p2 = start_run({"-j", "3"});
  ProcResult r1 = p1->wait(30);
  ProcResult r2 = p2->wait(30);
  ASSERT_EQ(r1.exit_code, 0) << describe(r1);
  ASSERT_EQ(r2.exit_code, 0) << describe(r2);

  Journal j = journal();
  EXPECT_EQ(j.bad_lines, 0u);
  std::map<std::string, int> starts;  // key -> node_start count, over both runs
  for (const auto& rec : j.events("", "node_start")) ++starts[rec.value("key", "")];
  EXPECT_EQ(starts.size(), 7u);
  for (const auto& [key, n] : starts) EXPECT_EQ(n, 1) << "key " << key << " computed " << n << " times";
  EXPECT_TRUE(j.events("", "node_failed").empty());
  for (const auto& run : j.runs()) {
    auto end = j.events(run, "run_end");
    ASSERT_EQ(end.size(), 1u) << run;
    EXPECT_EQ(end[0].value("status", ""), "ok") << run;
  }
  EXPECT_EQ(object_keys(cache()).size(), 7u);
  EXPECT_EQ(list_dir(cache() / "tmp"), std::vector<std::string>{});
  ProcResult v = qsweep({"cache", "verify"});
  EXPECT_EQ(v.exit_code, 0) << describe(v);
  std::string join = j.keys()["join"];
  EXPECT_EQ(read_file(cache() / "objects" / join.substr(0, 2) / join / "out" / "join.txt"),
            "r1\nr2\nr3\nr4\nr5\nr6\n");
}

}  // namespace
}  // namespace qsweep::testing
