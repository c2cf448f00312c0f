#pragma once
// Ctrl-C handling shared by `qsweep run` and `qsweep exec-node`: SIGINT,
// SIGTERM and SIGHUP are blocked in every thread and taken by one sigwait()
// thread: the first asks running stages to stop at a checkpoint, the second
// aborts them (SIGKILL to their process groups), a third exits. Construct it
// before any other thread exists.

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "pipeline/cli/session.h"
#include "stages/process.h"

namespace qsweep::cli {

class SignalWatcher {
 public:
  /// first / second: what to print on the first and second signal.
  SignalWatcher(std::atomic<int>* cancel, std::string first, std::string second)
      : cancel_(cancel), first_(std::move(first)), second_(std::move(second)) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    std::thread([this] { loop(); }).detach();
  }

 private:
  void loop() {
    while (true) {
      int sig = 0;
      if (sigwait(&set_, &sig) != 0) continue;
      int level = ++*cancel_;
      if (level == 1) {
        std::fprintf(stderr, "\nqsweep: %s: %s\n", strsignal(sig), first_.c_str());
      } else if (level == 2) {
        std::fprintf(stderr, "\nqsweep: %s\n", second_.c_str());
        kill_all_children(SIGKILL);
      } else {
        std::fprintf(stderr, "\nqsweep: exiting now\n");
        kill_all_children(SIGKILL);
        _exit(k_exit_cancelled);
      }
    }
  }
  std::atomic<int>* cancel_;
  std::string first_, second_;
  sigset_t set_;
};

}  // namespace qsweep::cli
