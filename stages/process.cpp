#include "stages/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <exception>
#include <thread>

extern char** environ;

namespace qsweep {

namespace {

using Clock = std::chrono::steady_clock;

constexpr double k_kill_after_term_s = 5.0;  // timeout: SIGTERM, then SIGKILL this much later
constexpr double k_stray_grace_s =
    1.0;                       // after exit: wait this long for pipe EOF, then stop reading
constexpr int k_tick_ms = 50;  // how often cancel and deadlines are checked
constexpr size_t k_max_line = 64 * 1024;  // longer stdout lines are split (bytes)
constexpr size_t k_tail_lines = 20;       // lines kept in ProcessResult::stderr_tail
constexpr size_t k_tail_line_max = 4096;  // a tail line is cut after this many bytes

// Process groups of running children: 0 = free slot, else a pgid (= the
// child's pid). Fixed-size and lock-free so that kill_all_children() may run
// in a signal handler. A child beyond k_max_live is not registered.
constexpr int k_max_live = 1024;
std::atomic<pid_t> g_live[k_max_live];
static_assert(std::atomic<pid_t>::is_always_lock_free);

int register_group(pid_t pgid) {
  for (int i = 0; i < k_max_live; ++i) {
    pid_t expected = 0;
    if (g_live[i].compare_exchange_strong(expected, pgid)) return i;
  }
  return -1;
}

void unregister_group(int slot) {
  if (slot >= 0) g_live[slot].store(0);
}

std::string errno_text(int e) { return std::strerror(e); }

// Closes an fd on scope exit; -1 = none.
struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

// A capture file: every byte read from a pipe is appended here.
struct CaptureFile {
  Fd fd;
  int write_errno = 0;  // first write error, 0 if none
  void write_all(const char* p, size_t n) {
    while (fd.fd >= 0 && n > 0 && write_errno == 0) {
      ssize_t w = ::write(fd.fd, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        write_errno = errno;
        return;
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
  }
};

// Splits stdout into lines for the callback. A trailing '\r' is dropped.
class LineSplitter {
 public:
  explicit LineSplitter(const LineCallback& cb) : cb_(cb) {}
  void feed(const char* p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      if (p[i] == '\n') {
        emit();
      } else {
        partial_ += p[i];
        if (partial_.size() >= k_max_line) emit();
      }
    }
  }
  void finish() {
    if (!partial_.empty()) emit();
  }

 private:
  void emit() {
    if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
    if (cb_) cb_(partial_);
    partial_.clear();
  }
  const LineCallback& cb_;
  std::string partial_;
};

// Keeps the last k_tail_lines lines of stderr. A lone '\r' (progress bars)
// overwrites the current line, as a terminal would show it.
class TailKeeper {
 public:
  void feed(const char* p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      char c = p[i];
      if (pending_cr_ && c != '\n') partial_.clear();
      pending_cr_ = false;
      if (c == '\n') {
        lines_.push_back(std::move(partial_));
        partial_.clear();
        if (lines_.size() > k_tail_lines) lines_.pop_front();
      } else if (c == '\r') {
        pending_cr_ = true;
      } else if (partial_.size() < k_tail_line_max) {
        partial_ += c;
      }
    }
  }
  std::string text() const {
    std::string r;
    size_t skip = (!partial_.empty() && lines_.size() == k_tail_lines) ? 1 : 0;
    for (size_t i = skip; i < lines_.size(); ++i) r += lines_[i] + "\n";
    if (!partial_.empty()) r += partial_ + "\n";
    return r;
  }

 private:
  std::deque<std::string> lines_;
  std::string partial_;
  bool pending_cr_ = false;
};

// The parent's environment with env_add set on top, as "K=V" strings.
std::vector<std::string> child_environment(const std::map<std::string, std::string>& env_add) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    size_t eq = kv.find('=');
    if (eq != std::string::npos && env_add.count(kv.substr(0, eq))) continue;
    env.push_back(std::move(kv));
  }
  for (const auto& [k, v] : env_add) env.push_back(k + "=" + v);
  return env;
}

// execvp's PATH search, but over the child's PATH and relative to its cwd.
// Returns the path to execute, or empty with *error_number set.
std::string find_program(const std::string& name, const std::map<std::string, std::string>& env_add,
                         const std::filesystem::path& cwd, int* error_number) {
  if (name.find('/') != std::string::npos) return name;  // resolved by exec after the chdir
  std::string path_var;
  if (auto it = env_add.find("PATH"); it != env_add.end()) {
    path_var = it->second;
  } else if (const char* p = ::getenv("PATH")) {
    path_var = p;
  } else {
    path_var = "/usr/local/bin:/usr/bin:/bin";
  }
  *error_number = ENOENT;
  size_t start = 0;
  while (start <= path_var.size()) {
    size_t colon = path_var.find(':', start);
    std::string dir =
        path_var.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    std::filesystem::path cand = std::filesystem::path(dir.empty() ? "." : dir) / name;
    // Absolute, so that it still names the same file after the child's chdir.
    std::filesystem::path rel = cand.is_relative() && !cwd.empty() ? cwd / cand : cand;
    std::error_code ec;
    std::filesystem::path probe = std::filesystem::absolute(rel, ec);
    if (ec) probe = rel;
    struct stat st;
    if (::stat(probe.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      if (::access(probe.c_str(), X_OK) == 0) return probe.string();
      *error_number = EACCES;
    }
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return {};
}

std::string exec_error(const std::string& name, int e, bool searched_path) {
  std::string msg = "cannot execute '" + name + "': " + errno_text(e);
  if (e == ENOENT && searched_path) msg += " (not found in PATH; is it installed?)";
  if (e == EACCES) msg += " (is it executable? try chmod +x)";
  if (e == ENOEXEC) msg += " (a script needs a '#!' first line)";
  return msg;
}

// True once the child has exited; leaves it a zombie so that its pid (our
// pgid) cannot be reused before we reap it.
bool leader_exited(pid_t pid) {
  siginfo_t info;
  std::memset(&info, 0, sizeof info);
  if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0)
    return errno == ECHILD;  // already reaped by someone else: treat as exited
  return info.si_pid != 0;
}

bool open_capture(const std::filesystem::path& p, CaptureFile* f, std::string* err) {
  if (p.empty()) return true;
  f->fd.fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (f->fd.fd < 0) {
    *err = "cannot open '" + p.string() + "' for writing: " + errno_text(errno);
    return false;
  }
  return true;
}

// posix_spawn attributes: own process group, empty signal mask, default
// dispositions (the parent may ignore SIGPIPE or handle SIGINT).
struct SpawnSetup {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  SpawnSetup() {
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
  }
  int init(const std::filesystem::path& cwd, int out_w, int err_w) {
    int rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (!rc) rc = posix_spawn_file_actions_adddup2(&fa, out_w, 1);
    if (!rc) rc = posix_spawn_file_actions_adddup2(&fa, err_w, 2);
    if (!rc && !cwd.empty()) rc = posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    if (!rc)
      rc = posix_spawnattr_setflags(
          &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (!rc) rc = posix_spawnattr_setpgroup(&attr, 0);
    if (!rc) rc = posix_spawnattr_setsigmask(&attr, &none);
    if (!rc) rc = posix_spawnattr_setsigdefault(&attr, &all);
    return rc;
  }
};

// A spawned child, reaped exactly once: by reap(), or by the destructor
// (SIGKILL to the group first) when an exception leaves run_process early.
class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid), slot_(register_group(pid)) {}
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (!reaped_) reap();
  }
  pid_t pid() const { return pid_; }
  /// Kills what is left in the group (the leader is a zombie or about to
  /// be), then waits for the leader; returns its wait status.
  int reap() {
    unregister_group(slot_);
    ::kill(-pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
    return status;
  }

 private:
  pid_t pid_;
  int slot_;  // in g_live; -1 when the table was full
  bool reaped_ = false;
};

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

bool run_process(const ProcessSpec& spec, const std::atomic<int>* cancel,
                 const LineCallback& on_stdout_line, ProcessResult* result, std::string* err) {
  *result = ProcessResult{};
  if (spec.argv.empty() || spec.argv[0].empty()) {
    *err = "cannot execute an empty command line";
    return false;
  }
  const std::string& name = spec.argv[0];
  if (cancel && cancel->load() != 0) {
    result->cancelled = true;
    return true;
  }
  std::error_code ec;
  if (!spec.cwd.empty() && !std::filesystem::is_directory(spec.cwd, ec)) {
    *err = "cannot execute '" + name + "': working directory '" + spec.cwd.string() +
           "' does not exist";
    return false;
  }
  CaptureFile out_file, err_file;
  if (!open_capture(spec.stdout_path, &out_file, err) ||
      !open_capture(spec.stderr_path, &err_file, err))
    return false;

  int find_errno = 0;
  std::string program = find_program(name, spec.env_add, spec.cwd, &find_errno);
  if (program.empty()) {
    *err = exec_error(name, find_errno, true);
    return false;
  }
  std::vector<std::string> env = child_environment(spec.env_add);
  std::vector<char*> envp, argv;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = spec.argv;
  for (auto& a : argv_copy) argv.push_back(a.data());
  argv.push_back(nullptr);

  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    *err = "cannot create a pipe: " + errno_text(errno);
    return false;
  }
  Fd out_r(out_pipe[0]), out_w(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    *err = "cannot create a pipe: " + errno_text(errno);
    return false;
  }
  Fd err_r(err_pipe[0]), err_w(err_pipe[1]);

  SpawnSetup setup;
  if (int rc = setup.init(spec.cwd, out_w.fd, err_w.fd); rc != 0) {
    *err = "cannot execute '" + name + "': posix_spawn setup failed: " + errno_text(rc);
    return false;
  }
  const auto start = Clock::now();
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, program.c_str(), &setup.fa, &setup.attr, argv.data(), envp.data());
  out_w.reset();
  err_w.reset();
  if (rc != 0) {  // glibc reports exec and chdir failures of the child here (and reaps it)
    *err = exec_error(name, rc, false);
    return false;
  }
  Child child(pid);
  Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));  // -1 on old kernels: tick instead

  LineSplitter splitter(on_stdout_line);
  TailKeeper tail;
  std::exception_ptr callback_error;
  bool exited = false, sent_int = false, sent_term = false, sent_kill = false;
  bool strays_killed = false;
  Clock::time_point term_at, stray_deadline;
  const bool has_timeout = spec.timeout_s > 0;
  const auto deadline =
      start + std::chrono::duration_cast<Clock::duration>(
                  std::chrono::duration<double>(has_timeout ? spec.timeout_s : 0));
  const auto kill_delay = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(k_kill_after_term_s));
  int backoff_ms = 1;  // no pidfd, pipes closed, child alive: 1, 2, 4 .. k_tick_ms
  std::vector<char> buf(64 * 1024);

  for (;;) {
    const auto now = Clock::now();
    // Signals: cancel, timeout, and a callback that threw.
    // Once the leader has exited, a late cancel or deadline changes nothing.
    int c = cancel && !exited ? cancel->load() : 0;
    if ((c >= 2 || callback_error) && !sent_kill && !exited) {
      ::kill(-pid, SIGKILL);
      sent_kill = true;
    } else if (c == 1 && !sent_int) {
      ::kill(-pid, SIGINT);
      sent_int = true;
    }
    if (c != 0) result->cancelled = true;
    if (has_timeout && !sent_term && !exited && now >= deadline) {
      ::kill(-pid, SIGTERM);
      sent_term = true;
      result->timed_out = true;
      term_at = now;
    }
    if (sent_term && !sent_kill && !exited && now >= term_at + kill_delay) {
      ::kill(-pid, SIGKILL);
      sent_kill = true;
    }

    const bool pipes_open = out_r.fd >= 0 || err_r.fd >= 0;
    if (exited && !pipes_open) break;
    if (exited) {  // something left in the group still holds our pipes
      if (!strays_killed) {
        ::kill(-pid, SIGKILL);
        strays_killed = true;
        stray_deadline = now + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(k_stray_grace_s));
      } else if (now >= stray_deadline) {
        break;  // a process that left our group holds them; stop reading
      }
    }

    // Sleep until output, exit, or the next deadline, whichever is first.
    auto wake = now + std::chrono::milliseconds(k_tick_ms);
    if (!pipes_open && pidfd.fd < 0) wake = now + std::chrono::milliseconds(backoff_ms);
    if (has_timeout && !sent_term) wake = std::min(wake, deadline);
    if (sent_term && !sent_kill) wake = std::min(wake, term_at + kill_delay);
    if (strays_killed) wake = std::min(wake, stray_deadline);
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(wake - now).count();
    pollfd fds[3];
    int nfds = 0, i_out = -1, i_err = -1, i_pid = -1;
    if (out_r.fd >= 0) i_out = nfds, fds[nfds++] = {out_r.fd, POLLIN, 0};
    if (err_r.fd >= 0) i_err = nfds, fds[nfds++] = {err_r.fd, POLLIN, 0};
    if (pidfd.fd >= 0 && !exited) i_pid = nfds, fds[nfds++] = {pidfd.fd, POLLIN, 0};
    int n = ::poll(fds, static_cast<nfds_t>(nfds), static_cast<int>(std::max<int64_t>(wait, 0)));
    if (n < 0 && errno != EINTR) {  // poll failure (ENOMEM): wait a tick, then retry
      std::this_thread::sleep_for(std::chrono::milliseconds(k_tick_ms));
      continue;
    }
    if (n < 0) continue;

    auto drain = [&](int idx, Fd& fd, bool is_out) {
      if (idx < 0 || !(fds[idx].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL))) return;
      ssize_t r = ::read(fd.fd, buf.data(), buf.size());
      if (r < 0 && (errno == EINTR || errno == EAGAIN)) return;
      if (r <= 0) {
        fd.reset();
        return;
      }
      auto len = static_cast<size_t>(r);
      if (is_out) {
        out_file.write_all(buf.data(), len);
        if (!callback_error) {
          try {
            splitter.feed(buf.data(), len);
          } catch (...) {
            callback_error = std::current_exception();
          }
        }
      } else {
        err_file.write_all(buf.data(), len);
        tail.feed(buf.data(), len);
      }
    };
    drain(i_out, out_r, true);
    drain(i_err, err_r, false);

    bool check_exit = i_pid >= 0 ? (fds[i_pid].revents != 0)
                                 : (pidfd.fd < 0 && (n == 0 || (out_r.fd < 0 && err_r.fd < 0)));
    if (!exited && check_exit) exited = leader_exited(pid);
    if (pidfd.fd < 0 && out_r.fd < 0 && err_r.fd < 0 && !exited)
      backoff_ms = std::min(backoff_ms * 2, k_tick_ms);
  }

  // The leader is a zombie now: kill what it left in its group, then reap.
  const int status = child.reap();
  result->seconds = seconds_since(start);
  if (!callback_error) {
    try {
      splitter.finish();
    } catch (...) {
      callback_error = std::current_exception();
    }
  }
  result->stderr_tail = tail.text();
  if (WIFEXITED(status)) {
    result->exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result->term_signal = WTERMSIG(status);
  }
  if (callback_error) std::rethrow_exception(callback_error);
  for (auto* f : {&out_file, &err_file}) {
    if (f->write_errno != 0) {
      const auto& p = f == &out_file ? spec.stdout_path : spec.stderr_path;
      *err = "cannot write '" + p.string() + "': " + errno_text(f->write_errno);
      return false;
    }
  }
  return true;
}

void kill_all_children(int sig) {
  for (int i = 0; i < k_max_live; ++i) {
    pid_t pgid = g_live[i].load();
    if (pgid > 0) ::kill(-pgid, sig);
  }
}

int live_children() {
  int n = 0;
  for (int i = 0; i < k_max_live; ++i) n += g_live[i].load() != 0;
  return n;
}

}  // namespace qsweep
