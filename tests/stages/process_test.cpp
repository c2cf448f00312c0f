// run_process against real programs (sh, sleep, true): capture, exit codes,
// spawn errors, timeout, cancel, process-group kills and latency.

#include "stages/process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "tests/testutil.h"

namespace qsweep {
namespace {

using testing::read_file;
using testing::TempDir;
using testing::write_file;

// Runs argv and returns the result; fails the test on a spawn error.
ProcessResult run_ok(ProcessSpec spec, const std::atomic<int>* cancel = nullptr,
                     std::vector<std::string>* lines = nullptr, LineCallback cb = {}) {
  ProcessResult r;
  std::string err;
  if (!cb && lines) cb = [lines](const std::string& l) { lines->push_back(l); };
  EXPECT_TRUE(run_process(spec, cancel, cb, &r, &err)) << err;
  return r;
}

ProcessSpec sh(const std::string& script) {
  ProcessSpec s;
  s.argv = {"sh", "-c", script};
  return s;
}

// True while pid exists and is not a zombie.
bool alive(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(f, stat)) return false;
  size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

// Waits up to 3 s for pid to die.
bool dies(pid_t pid) {
  for (int i = 0; i < 300 && alive(pid); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return !alive(pid);
}

pid_t read_pid(const std::filesystem::path& p) {
  for (int i = 0; i < 300; ++i) {
    std::string s = read_file(p);
    if (!s.empty() && s.back() == '\n') return static_cast<pid_t>(std::stol(s));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return 0;
}

TEST(RunProcess, CapturesStdoutAndStderrToFiles) {
  TempDir t;
  auto spec = sh("echo out1; echo err1 >&2; printf 'out2'");
  spec.stdout_path = t / "stdout.txt";
  spec.stderr_path = t / "stderr.txt";
  std::vector<std::string> lines;
  auto r = run_ok(spec, nullptr, &lines);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.term_signal, 0);
  EXPECT_FALSE(r.timed_out);
  EXPECT_FALSE(r.cancelled);
  EXPECT_EQ(read_file(t / "stdout.txt"), "out1\nout2");
  EXPECT_EQ(read_file(t / "stderr.txt"), "err1\n");
  EXPECT_EQ(lines, (std::vector<std::string>{"out1", "out2"}));
  EXPECT_EQ(r.stderr_tail, "err1\n");
}

TEST(RunProcess, LargeOutputIsCapturedCompletely) {
  TempDir t;
  auto spec = sh("seq 1 200000; seq 1 50000 >&2");
  spec.stdout_path = t / "o";
  spec.stderr_path = t / "e";
  std::vector<std::string> lines;
  auto r = run_ok(spec, nullptr, &lines);
  EXPECT_EQ(r.exit_code, 0);
  ASSERT_EQ(lines.size(), 200000u);
  EXPECT_EQ(lines.back(), "200000");
  std::string err_text = read_file(t / "e");
  EXPECT_EQ(std::count(err_text.begin(), err_text.end(), '\n'), 50000);
}

TEST(RunProcess, StderrTailKeepsLastTwentyLines) {
  auto r = run_ok(sh("seq 1 100 >&2; printf 'abc\\rdef\\r\\n' >&2"));
  std::string expected;
  for (int i = 82; i <= 100; ++i) expected += std::to_string(i) + "\n";
  expected += "def\n";  // '\r' overwrites, as a terminal shows a progress bar
  EXPECT_EQ(r.stderr_tail, expected);
}

TEST(RunProcess, ReportsExitCode) {
  EXPECT_EQ(run_ok(sh("exit 3")).exit_code, 3);
  EXPECT_EQ(run_ok(sh("exit 0")).exit_code, 0);
}

TEST(RunProcess, ReportsTerminatingSignal) {
  auto r = run_ok(sh("kill -SEGV $$"));
  EXPECT_EQ(r.term_signal, SIGSEGV);
  EXPECT_EQ(r.exit_code, -1);
}

TEST(RunProcess, MissingProgramGivesClearError) {
  ProcessSpec spec;
  spec.argv = {"qsweep-no-such-program", "x"};
  ProcessResult r;
  std::string err;
  EXPECT_FALSE(run_process(spec, nullptr, {}, &r, &err));
  EXPECT_NE(err.find("cannot execute 'qsweep-no-such-program': No such file or directory"),
            std::string::npos)
      << err;

  spec.argv = {"/nonexistent/dir/prog"};
  EXPECT_FALSE(run_process(spec, nullptr, {}, &r, &err));
  EXPECT_NE(err.find("cannot execute '/nonexistent/dir/prog': No such file or directory"),
            std::string::npos)
      << err;
}

TEST(RunProcess, NonExecutableFileGivesPermissionError) {
  TempDir t;
  write_file(t / "script.sh", "#!/bin/sh\necho hi\n");
  ProcessSpec spec;
  spec.argv = {(t / "script.sh").string()};
  ProcessResult r;
  std::string err;
  EXPECT_FALSE(run_process(spec, nullptr, {}, &r, &err));
  EXPECT_NE(err.find("Permission denied"), std::string::npos) << err;

  ::chmod((t / "script.sh").c_str(), 0755);
  std::vector<std::string> lines;
  EXPECT_EQ(run_ok(spec, nullptr, &lines).exit_code, 0);
  EXPECT_EQ(lines, std::vector<std::string>{"hi"});
}

TEST(RunProcess, MissingWorkingDirectoryIsAnError) {
  auto spec = sh("true");
  spec.cwd = "/nonexistent/qsweep-dir";
  ProcessResult r;
  std::string err;
  EXPECT_FALSE(run_process(spec, nullptr, {}, &r, &err));
  EXPECT_NE(err.find("working directory '/nonexistent/qsweep-dir' does not exist"),
            std::string::npos)
      << err;
}

TEST(RunProcess, RunsInCwdWithEnvAndNullStdin) {
  TempDir t;
  std::filesystem::create_directories(t / "work");
  auto spec = sh("pwd; echo \"$QSWEEP_TEST_VAR\"; cat; echo \"$HOME_SEEN\"");
  spec.cwd = t / "work";
  spec.env_add = {{"QSWEEP_TEST_VAR", "a b=c"}, {"HOME_SEEN", "yes"}};
  std::vector<std::string> lines;
  auto r = run_ok(spec, nullptr, &lines);  // `cat` ends at once: stdin is /dev/null
  EXPECT_EQ(r.exit_code, 0);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(std::filesystem::canonical(lines[0]), std::filesystem::canonical(t / "work"));
  EXPECT_EQ(lines[1], "a b=c");
  EXPECT_EQ(lines[2], "yes");
}

TEST(RunProcess, EnvPathIsUsedForLookup) {
  TempDir t;
  write_file(t / "bin" / "qsweep-hello", "#!/bin/sh\necho hello from path\n");
  ::chmod((t / "bin" / "qsweep-hello").c_str(), 0755);
  ProcessSpec spec;
  spec.argv = {"qsweep-hello"};
  spec.env_add = {{"PATH", (t / "bin").string() + ":/usr/bin:/bin"}};
  std::vector<std::string> lines;
  EXPECT_EQ(run_ok(spec, nullptr, &lines).exit_code, 0);
  EXPECT_EQ(lines, std::vector<std::string>{"hello from path"});
}

TEST(RunProcess, TimeoutKillsSleep) {
  ProcessSpec spec;
  spec.argv = {"sleep", "30"};
  spec.timeout_s = 0.3;
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_ok(spec);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.term_signal, SIGTERM);
  EXPECT_GE(s, 0.3);
  EXPECT_LT(s, 1.0);
}

TEST(RunProcess, TimeoutEscalatesToSigkill) {
  // Ignores SIGTERM; the busy loop keeps sh itself in the foreground.
  auto spec = sh("trap '' TERM; while :; do :; done");
  spec.timeout_s = 0.2;
  auto r = run_ok(spec);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.term_signal, SIGKILL);
  EXPECT_GE(r.seconds, 5.2);
  EXPECT_LT(r.seconds, 6.5);
}

TEST(RunProcess, CancelOneSendsSigintForCheckpoint) {
  TempDir t;
  auto marker = t / "marker";
  auto spec =
      sh("trap 'echo checkpointed > \"$0\"; exit 0' INT; echo ready; "
         "while :; do sleep 0.05; done");
  spec.argv.push_back(marker.string());
  std::atomic<int> cancel{0};
  LineCallback cb = [&](const std::string& l) {
    if (l == "ready") cancel = 1;
  };
  auto r = run_ok(spec, &cancel, nullptr, cb);
  EXPECT_TRUE(r.cancelled);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(read_file(marker), "checkpointed\n");
  EXPECT_LT(r.seconds, 2.0);
}

TEST(RunProcess, CancelTwoKills) {
  // Ignores SIGINT: a second cancel (2) must still stop it.
  auto spec = sh("trap '' INT; echo ready; while :; do sleep 0.05; done");
  std::atomic<int> cancel{0};
  std::thread escalate;
  LineCallback cb = [&](const std::string& l) {
    if (l != "ready") return;
    cancel = 1;
    escalate = std::thread([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      cancel = 2;
    });
  };
  auto r = run_ok(spec, &cancel, nullptr, cb);
  escalate.join();
  EXPECT_TRUE(r.cancelled);
  EXPECT_EQ(r.term_signal, SIGKILL);
  EXPECT_GE(r.seconds, 0.3);
  EXPECT_LT(r.seconds, 2.0);
}

TEST(RunProcess, CancelledBeforeStartDoesNotSpawn) {
  TempDir t;
  std::atomic<int> cancel{1};
  auto spec = sh("touch \"$0\"");
  spec.argv.push_back((t / "touched").string());
  auto r = run_ok(spec, &cancel);
  EXPECT_TRUE(r.cancelled);
  EXPECT_FALSE(std::filesystem::exists(t / "touched"));
}

TEST(RunProcess, GrandchildrenAreKilledAsAGroup) {
  TempDir t;
  auto pidfile = t / "pid";
  auto spec = sh("sleep 30 & echo $! > \"$0\"; echo ready; wait");
  spec.argv.push_back(pidfile.string());
  std::atomic<int> cancel{0};
  LineCallback cb = [&](const std::string& l) {
    if (l == "ready") cancel = 2;
  };
  auto r = run_ok(spec, &cancel, nullptr, cb);
  EXPECT_TRUE(r.cancelled);
  pid_t grandchild = read_pid(pidfile);
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(dies(grandchild));
}

TEST(RunProcess, LeftoverBackgroundProcessIsKilledAfterExit) {
  // sh exits at once; its background sleep holds stdout open. run_process
  // must not wait 30 s for EOF, and must not leave the sleep running.
  TempDir t;
  auto pidfile = t / "pid";
  auto spec = sh("sleep 30 & echo $! > \"$0\"; exit 4");
  spec.argv.push_back(pidfile.string());
  auto r = run_ok(spec);
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_LT(r.seconds, 2.0);
  pid_t grandchild = read_pid(pidfile);
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(dies(grandchild));
}

TEST(RunProcess, KillAllChildrenReachesRunningPrograms) {
  ProcessResult r;
  std::string err;
  bool ok = false;
  std::thread th([&] {
    ProcessSpec spec;
    spec.argv = {"sleep", "30"};
    ok = run_process(spec, nullptr, {}, &r, &err);
  });
  for (int i = 0; i < 300 && live_children() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(live_children(), 1);
  kill_all_children(SIGKILL);
  th.join();
  EXPECT_TRUE(ok) << err;
  EXPECT_EQ(r.term_signal, SIGKILL);
  EXPECT_EQ(live_children(), 0);
}

TEST(RunProcess, CallbackExceptionKillsChildAndPropagates) {
  ProcessResult r;
  std::string err;
  auto spec = sh("echo first; sleep 30");
  LineCallback cb = [](const std::string&) { throw std::runtime_error("sink failed"); };
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(run_process(spec, nullptr, cb, &r, &err), std::runtime_error);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 2.0);
  EXPECT_EQ(live_children(), 0);
}

TEST(RunProcess, TrueCompletesWithoutPolling) {
  ProcessSpec spec;
  spec.argv = {"true"};
  std::vector<double> ms;
  for (int i = 0; i < 20; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = run_ok(spec);
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    EXPECT_EQ(r.exit_code, 0);
  }
  std::sort(ms.begin(), ms.end());
  EXPECT_LT(ms[ms.size() / 2], 10.0) << "median of 20 runs of `true`, ms";
  EXPECT_LT(ms.front(), 5.0) << "fastest of 20 runs of `true`, ms";
}

}  // namespace
}  // namespace qsweep
