#include "tests/e2e/e2e_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace qsweep::testing {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

fs::path qsweep_bin() {
  const char* v = std::getenv("QSWEEP_BIN");
  return v && *v ? fs::path(v) : fs::path{};
}

std::string describe(const ProcResult& r) {
  std::ostringstream s;
  if (r.timed_out)
    s << "TIMED OUT (killed)";
  else if (r.term_signal)
    s << "killed by signal " << r.term_signal;
  else
    s << "exit " << r.exit_code;
  s << " after " << r.seconds << " s\n--- stdout ---\n" << r.out << "--- stderr ---\n" << r.err;
  return s.str();
}

// ---------------------------------------------------------------------------
// Process

Process::Process(const std::vector<std::string>& argv, const fs::path& cwd,
                 const std::map<std::string, std::string>& env) {
  // Everything the child needs is built before fork(): only async-signal-safe
  // calls happen between fork and exec.
  std::vector<std::string> env_strings;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    if (env.count(kv.substr(0, kv.find('=')))) continue;
    env_strings.push_back(std::move(kv));
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& a : argv_copy) args.push_back(a.data());
  args.push_back(nullptr);
  const std::string out_path = (io_ / "stdout").string();
  const std::string err_path = (io_ / "stderr").string();
  const std::string dir = cwd.string();

  start_ = Clock::now();
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid_ == 0) {
    ::setsid();  // own session: kill_session() finds every process it starts
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT}) ::signal(sig, SIG_DFL);
    int in = ::open("/dev/null", O_RDONLY);
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || err < 0) ::_exit(126);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    if (!dir.empty() && ::chdir(dir.c_str()) != 0) ::_exit(126);
    ::execve(args[0], args.data(), envp.data());
    const char msg[] = "e2e: exec failed\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
}

Process::~Process() {
  if (!reaped_) {
    kill_session();
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, &status_, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
  }
  kill_session();  // stages orphaned by a killed runner
}

bool Process::running() {
  if (reaped_) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = st;
    reaped_ = true;
    return false;
  }
  return true;
}

void Process::signal(int sig) {
  if (!reaped_) ::kill(pid_, sig);
}

std::string Process::err_so_far() const { return read_file(io_ / "stderr"); }
std::string Process::out_so_far() const { return read_file(io_ / "stdout"); }

ProcResult import_stories260k(const std::filesystem::path& out) {
  const std::filesystem::path stories = shared_data_dir() / "models" / "stories260K";
  return run_command({qsweep_bin().string(), "model", "import", (stories / "stories260K.bin").string(),
                      (stories / "tok512.bin").string(), out.string()});
}

void Process::kill_session() {
  // Two passes: a process may fork while we scan.
  for (int pass = 0; pass < 2; ++pass) {
    DIR* d = ::opendir("/proc");
    if (!d) return;
    while (struct dirent* e = ::readdir(d)) {
      char* end = nullptr;
      long pid = std::strtol(e->d_name, &end, 10);
      if (!end || *end || pid <= 0 || pid == pid_) continue;
      std::string stat = read_file(fs::path("/proc") / e->d_name / "stat");
      size_t rp = stat.rfind(')');
      if (rp == std::string::npos) continue;
      std::istringstream fields(stat.substr(rp + 1));
      std::string state;
      long ppid = 0, pgrp = 0, session = 0;
      fields >> state >> ppid >> pgrp >> session;
      if (session == pid_) ::kill(static_cast<pid_t>(pid), SIGKILL);
    }
    ::closedir(d);
  }
  if (!reaped_) ::kill(pid_, SIGKILL);
}

ProcResult Process::wait(double timeout_s) {
  ProcResult r;
  const auto deadline = start_ + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(timeout_s));
  while (running()) {
    if (Clock::now() >= deadline) {
      r.timed_out = true;
      kill_session();
      while (::waitpid(pid_, &status_, 0) < 0 && errno == EINTR) {
      }
      reaped_ = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - start_).count();
  if (WIFEXITED(status_)) r.exit_code = WEXITSTATUS(status_);
  if (WIFSIGNALED(status_)) r.term_signal = WTERMSIG(status_);
  r.out = read_file(io_ / "stdout");
  r.err = read_file(io_ / "stderr");
  return r;
}

ProcResult run_command(const std::vector<std::string>& argv, double timeout_s, const fs::path& cwd,
                       const std::map<std::string, std::string>& env) {
  Process p(argv, cwd, env);
  return p.wait(timeout_s);
}

// ---------------------------------------------------------------------------
// Small helpers

bool wait_until(const std::function<bool()>& pred, double timeout_s) {
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(timeout_s));
  while (true) {
    if (pred()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

bool process_alive(pid_t pid) {
  std::string stat = read_file(fs::path("/proc") / std::to_string(pid) / "stat");
  size_t rp = stat.rfind(')');
  if (rp == std::string::npos || rp + 2 >= stat.size()) return false;
  return stat[rp + 2] != 'Z' && stat[rp + 2] != 'X';
}

std::string subst(std::string text, const std::map<std::string, std::string>& values) {
  for (const auto& [k, v] : values) {
    const std::string pat = "@" + k + "@";
    for (size_t p = text.find(pat); p != std::string::npos; p = text.find(pat, p + v.size()))
      text.replace(p, pat.size(), v);
  }
  return text;
}

std::vector<std::string> list_dir(const fs::path& dir) {
  std::vector<std::string> r;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    r.push_back(it->path().filename().string());
  std::sort(r.begin(), r.end());
  return r;
}

std::vector<std::string> object_keys(const fs::path& cache) {
  std::vector<std::string> r;
  for (const auto& shard : list_dir(cache / "objects"))
    for (const auto& key : list_dir(cache / "objects" / shard)) r.push_back(key);
  std::sort(r.begin(), r.end());
  return r;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// ---------------------------------------------------------------------------
// Journal

Journal read_journal(const fs::path& cache) {
  Journal j;
  std::ifstream f(cache / "journal.jsonl");
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    auto rec = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (rec.is_object())
      j.records.push_back(std::move(rec));
    else
      ++j.bad_lines;
  }
  return j;
}

std::vector<std::string> Journal::runs() const {
  std::vector<std::string> r;
  for (const auto& rec : records) {
    std::string id = rec.value("run", "");
    if (!id.empty() && std::find(r.begin(), r.end(), id) == r.end()) r.push_back(id);
  }
  return r;
}

std::string Journal::last_run() const {
  auto r = runs();
  return r.empty() ? std::string{} : r.back();
}

std::vector<json> Journal::events(const std::string& run, const std::string& event) const {
  std::vector<json> r;
  for (const auto& rec : records)
    if ((run.empty() || rec.value("run", "") == run) &&
        (event.empty() || rec.value("event", "") == event))
      r.push_back(rec);
  return r;
}

std::vector<std::string> Journal::nodes(const std::string& run, const std::string& event) const {
  std::vector<std::string> r;
  for (const auto& rec : events(run, event)) r.push_back(rec.value("node", ""));
  return sorted(std::move(r));
}

json Journal::find(const std::string& run, const std::string& event, const std::string& node) const {
  for (const auto& rec : events(run, event))
    if (rec.value("node", "") == node) return rec;
  return nullptr;
}

std::map<std::string, std::string> Journal::keys() const {
  std::map<std::string, std::string> r;
  for (const auto& rec : records) {
    std::string ev = rec.value("event", "");
    if (ev == "node_done" || ev == "node_hit" || ev == "node_start")
      r[rec.value("node", "")] = rec.value("key", "");
  }
  return r;
}

// ---------------------------------------------------------------------------
// E2ETest

void E2ETest::SetUp() {
  if (qsweep_bin().empty())
    GTEST_SKIP() << "QSWEEP_BIN is not set: run through ctest, or export "
                    "QSWEEP_BIN=/path/to/build/qsweep";
  ASSERT_TRUE(fs::is_regular_file(qsweep_bin())) << "QSWEEP_BIN=" << qsweep_bin() << " does not exist";
}

void E2ETest::write_exp(const std::string& yaml, std::map<std::string, std::string> values) {
  values.emplace("DIR", dir_.path().string());
  write_file(exp(), subst(yaml, values));
}

void E2ETest::write(const std::string& rel, const std::string& content) {
  write_file(dir_ / rel, content);
  fs::permissions(dir_ / rel, fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec,
                  fs::perm_options::add);
}

ProcResult E2ETest::qsweep(std::vector<std::string> args, double timeout_s) {
  const bool has_cache = std::find(args.begin(), args.end(), "--cache") != args.end();
  args.insert(args.begin(), qsweep_bin().string());
  if (!has_cache) {
    args.push_back("--cache");
    args.push_back(cache().string());
  }
  return run_command(args, timeout_s, dir_.path());
}

ProcResult E2ETest::run(std::vector<std::string> extra, double timeout_s) {
  std::vector<std::string> args = {"run", exp().string(), "--progress", "lines"};
  args.insert(args.end(), extra.begin(), extra.end());
  return qsweep(std::move(args), timeout_s);
}

std::unique_ptr<Process> E2ETest::start_run(std::vector<std::string> extra) {
  std::vector<std::string> args = {qsweep_bin().string(), "run", exp().string(), "--progress", "lines"};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back("--cache");
  args.push_back(cache().string());
  return std::make_unique<Process>(args, dir_.path());
}

std::map<std::string, std::string> E2ETest::plan_states(std::vector<std::string> targets) {
  std::vector<std::string> args = {"plan", exp().string(), "--json"};
  args.insert(args.end(), targets.begin(), targets.end());
  ProcResult r = qsweep(args);
  std::map<std::string, std::string> states;
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  auto j = json::parse(r.out, nullptr, false);
  EXPECT_TRUE(j.is_object()) << "plan --json printed no JSON object:\n" << r.out;
  if (!j.is_object()) return states;
  for (const auto& n : j["nodes"]) states[n.value("id", "")] = n.value("state", "");
  return states;
}

}  // namespace qsweep::testing
