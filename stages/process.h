#pragma once
// Launching one external program: the only place in stages/ that spawns
// processes (STYLE.md: side effects behind narrow interfaces).
//
// The child runs in its own process group with stdin from /dev/null; its
// stdout and stderr come through pipes that the parent tees into files.
// Signals always go to the whole group, so a shell script's children die with
// it. When the program exits, anything it left running in its group is
// killed (SIGKILL): a node's output folder must be complete when published.

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace qsweep {

/// What to run and where its output goes.
struct ProcessSpec {
  /// argv[0] is looked up in PATH (env_add's PATH if given) unless it has a
  /// '/'; a relative path with a '/' is relative to cwd.
  std::vector<std::string> argv;
  std::filesystem::path cwd;                   ///< working directory; empty = the parent's
  std::map<std::string, std::string> env_add;  ///< set in (or overriding) the parent's environment
  std::filesystem::path stdout_path;  ///< file that receives stdout (truncated); empty = discard
  std::filesystem::path stderr_path;  ///< file that receives stderr (truncated); empty = discard
  double timeout_s = 0;               ///< wall-clock limit in seconds; 0 = none
};

/// How a launched program ended.
struct ProcessResult {
  int exit_code = -1;       ///< exit status; -1 when killed by a signal or never started
  int term_signal = 0;      ///< signal that killed it; 0 if it exited
  bool timed_out = false;   ///< the timeout passed and SIGTERM (then SIGKILL after 5 s) was sent
  bool cancelled = false;   ///< *cancel became non-zero while it ran (or before it started)
  double seconds = 0;       ///< wall-clock seconds from spawn to reap
  std::string stderr_tail;  ///< the last ~20 lines of stderr, '\n'-terminated
};

/// Called with each stdout line, without its '\n' (lines over 64 KiB are split).
using LineCallback = std::function<void(const std::string& line)>;

/// Runs spec.argv to completion and fills *result. `cancel` (may be null) is
/// read every ~50 ms: 1 = SIGINT to the group once (let it checkpoint and
/// stop), 2 = SIGKILL to the group. Timeout: SIGTERM, then SIGKILL after 5 s.
/// The child is always reaped. Returns false + *err only when the program
/// could not be started ("cannot execute 'foo': No such file or directory")
/// or an output file could not be opened or written; a non-zero exit is not an
/// error here. An exception thrown by on_stdout_line kills the group (SIGKILL)
/// and is rethrown after the child is reaped.
bool run_process(const ProcessSpec& spec, const std::atomic<int>* cancel,
                 const LineCallback& on_stdout_line, ProcessResult* result, std::string* err);

/// Signature of run_process, so that stages can take a fake in tests.
using ProcessRunner = std::function<bool(const ProcessSpec&, const std::atomic<int>*,
                                         const LineCallback&, ProcessResult*, std::string*)>;

/// Sends sig to the process group of every program run_process is running
/// now. Async-signal-safe (lock-free atomics and kill(2) only), so it may be
/// called from a signal handler as well as from any thread.
void kill_all_children(int sig);

/// Number of programs run_process is running now (for tests and diagnostics).
int live_children();

}  // namespace qsweep
