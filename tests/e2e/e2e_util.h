#pragma once
// End-to-end test helpers: run the qsweep executable (QSWEEP_BIN) on
// experiments written into a scratch directory, in the foreground or in the
// background, and read what it left behind (the journal, objects/, tmp/).

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/testutil.h"

namespace qsweep::testing {

using nlohmann::json;

/// The qsweep executable from $QSWEEP_BIN; empty when unset.
std::filesystem::path qsweep_bin();

/// How a process ended, with everything it printed.
struct ProcResult {
  int exit_code = -1;      ///< -1 when killed by a signal (or timed out)
  int term_signal = 0;     ///< the signal that killed it, 0 if it exited
  bool timed_out = false;  ///< the timeout passed; the process was SIGKILLed
  double seconds = 0;      ///< wall time from spawn to reap
  std::string out, err;    ///< stdout and stderr
  std::string all() const { return out + err; }
};

/// "exit 2 after 0.01 s\n--- stdout ---\n...\n--- stderr ---\n..." for assertion messages.
std::string describe(const ProcResult& r);

/// A process started in its own session with stdout and stderr captured to
/// files; waited for with a timeout. Anything still running in its session
/// (the stages it started, which live in their own process groups) is killed
/// when the object goes away.
class Process {
 public:
  /// Starts argv (argv[0] is a path). Extra environment variables override
  /// the test's own. cwd empty = the test's working directory.
  Process(const std::vector<std::string>& argv, const std::filesystem::path& cwd = {},
          const std::map<std::string, std::string>& env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  /// True while the process has not exited (reaps it when it has).
  bool running();
  /// Sends sig to the process itself (not to its group or session).
  void signal(int sig);
  /// Waits at most timeout_s; on timeout kills the whole session and reports
  /// timed_out. May be called once.
  ProcResult wait(double timeout_s);
  /// What it has printed on stderr so far.
  std::string err_so_far() const;
  /// What it has printed on stdout so far.
  std::string out_so_far() const;
  /// SIGKILL to every process of its session (the runner and all stages).
  void kill_session();

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  std::chrono::steady_clock::time_point start_;
  TempDir io_;  // stdout / stderr capture files
};

/// Runs argv to completion (or SIGKILL after timeout_s).
ProcResult run_command(const std::vector<std::string>& argv, double timeout_s = 60,
                       const std::filesystem::path& cwd = {},
                       const std::map<std::string, std::string>& env = {});

/// `qsweep model import` of ../shared/data's stories260K into `out` (a
/// Hugging Face folder); the caller has checked that the data exists.
ProcResult import_stories260k(const std::filesystem::path& out);

/// Polls pred every 10 ms until it holds (true) or timeout_s passes (false).
bool wait_until(const std::function<bool()>& pred, double timeout_s);

/// True while pid exists and is not a zombie.
bool process_alive(pid_t pid);

/// Replaces every "@KEY@" in text by its value.
std::string subst(std::string text, const std::map<std::string, std::string>& values);

/// Names of the entries of a directory (sorted; empty when it does not exist).
std::vector<std::string> list_dir(const std::filesystem::path& dir);

/// Keys of every artifact directory under <cache>/objects (sorted).
std::vector<std::string> object_keys(const std::filesystem::path& cache);

/// The run journal <cache>/journal.jsonl as parsed records.
struct Journal {
  std::vector<json> records;
  size_t bad_lines = 0;  ///< lines that are not a JSON object

  /// Run ids in order of their first record.
  std::vector<std::string> runs() const;
  std::string last_run() const;
  /// Records of one run ("" = all runs) with this event ("" = any event).
  std::vector<json> events(const std::string& run, const std::string& event) const;
  /// Sorted node ids of those records.
  std::vector<std::string> nodes(const std::string& run, const std::string& event) const;
  /// The first record of (run, event, node); null when there is none.
  json find(const std::string& run, const std::string& event, const std::string& node) const;
  /// node id -> key, from node_done / node_hit / node_start records of any run.
  std::map<std::string, std::string> keys() const;
};
Journal read_journal(const std::filesystem::path& cache);

/// Sorted copy, for exact set comparisons of node ids.
std::vector<std::string> sorted(std::vector<std::string> v);

/// A test with a scratch directory holding exp.yaml, its scripts and a cache
/// (<dir>/cache). Skips when QSWEEP_BIN is unset.
class E2ETest : public ::testing::Test {
 protected:
  void SetUp() override;

  std::filesystem::path exp() const { return dir_ / "exp.yaml"; }
  std::filesystem::path cache() const { return dir_ / "cache"; }
  std::filesystem::path path(const std::string& rel) const { return dir_ / rel; }
  /// Writes exp.yaml (after subst() with @DIR@ = the scratch directory).
  void write_exp(const std::string& yaml, std::map<std::string, std::string> values = {});
  /// Writes a file relative to the scratch directory (executable, for scripts).
  void write(const std::string& rel, const std::string& content);

  /// qsweep ARGS... --cache <cache> (unless ARGS name another --cache)
  ProcResult qsweep(std::vector<std::string> args, double timeout_s = 60);
  /// qsweep run exp.yaml --progress lines EXTRA... --cache <cache>
  ProcResult run(std::vector<std::string> extra = {}, double timeout_s = 60);
  /// The same in the background.
  std::unique_ptr<Process> start_run(std::vector<std::string> extra = {});
  /// `qsweep plan --json`: node id -> state (cached / to-run / blocked / corrupt / unneeded).
  std::map<std::string, std::string> plan_states(std::vector<std::string> targets = {});
  Journal journal() const { return read_journal(cache()); }

  TempDir dir_;
};

}  // namespace qsweep::testing

namespace qsweep::testing {

/// A small sweep without shared data: gen -> quant[r1|r2|r3] -> table.
///   gen      writes data.txt from file:gen.sh and ${vars.greeting}
///   quant[*] one per recipe: bits/group from the recipe, data from gen (file:quant.sh)
///   table    concatenates every quant[*] output (file:table.sh)
class SweepTest : public E2ETest {
 protected:
  static constexpr const char* k_yaml = R"~(version: 1
name: e2e-sweep
vars:
  greeting: hello
recipes:
  r1: {bits: 8, group: 0}
  r2: {bits: 4, group: 32}
  r3: {bits: 4, group: 128}
stages:
  - name: gen
    kind: command
    inputs: {script: "file:gen.sh"}
    params:
      argv: [sh, "${inputs.script}", "${output_dir}", "${vars.greeting}"]
      outputs: [data.txt]
  - name: quant
    kind: command
    matrix: {recipe: "*"}
    inputs:
      data: gen
      script: "file:quant.sh"
    params:
      argv: [sh, "${inputs.script}", "${inputs.data}/data.txt", "${recipe.bits}", "${recipe.group}", "${output_dir}"]
      outputs: [q.txt]
  - name: table
    kind: command
    inputs:
      runs: ["quant[*]"]
      script: "file:table.sh"
    params:
      argv: [sh, "${inputs.script}", "${output_dir}/table.txt", "${inputs.runs}"]
      outputs: [table.txt]
)~";
  static constexpr const char* k_gen = "echo \"$2 world\" > \"$1/data.txt\"\n";
  static constexpr const char* k_quant =
      "printf 'bits=%s group=%s data=%s\\n' \"$2\" \"$3\" \"$(cat \"$1\")\" > \"$4/q.txt\"\n";
  static constexpr const char* k_table = "out=$1; shift\nfor d; do cat \"$d/q.txt\"; done > \"$out\"\n";

  void SetUp() override {
    E2ETest::SetUp();
    if (IsSkipped()) return;
    write_exp(k_yaml);
    write("gen.sh", k_gen);
    write("quant.sh", k_quant);
    write("table.sh", k_table);
  }
  static std::vector<std::string> all_nodes() {
    return {"gen", "quant[r1]", "quant[r2]", "quant[r3]", "table"};
  }
};

}  // namespace qsweep::testing
