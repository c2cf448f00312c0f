#pragma once
// Inference servers that qsweep starts itself (`backend: {kind: vllm|qsweep,
// launch: ...}` of the infer stage): one per (launch command, model folder),
// started on first use, waited for until GET /health answers 200, shared by
// every infer node of that model artifact running in this process, and
// stopped (SIGINT, then SIGKILL after 10 s) when the last node using it is
// done and keep_alive_s has passed, when the runner is cancelled (the node
// ends), and at process exit. The server's stdout and stderr go to log
// files beside the journal; a server that exits or never becomes healthy is
// an error carrying the end of its log.
//
// Launch templates: {model_dir}, {port}, {host}, {model} (the served model
// id) and {qsweep} (this executable) are replaced; the result runs with
// `sh -c` (exec'd when it is a simple command) under `setpriv --pdeathsig
// KILL` (util-linux), so a server also dies when qsweep is SIGKILLed. The
// port is a free one chosen by qsweep.

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

namespace qsweep {

struct ManagedServerSpec {
  std::string launch;                  ///< command template (see above)
  std::filesystem::path model_dir;
  std::string model;                   ///< served model id
  std::filesystem::path log_dir;       ///< where server-<port>.{out,err}.log go
  double health_timeout_s = 600;
  double keep_alive_s = 0;             ///< idle time before stopping (0 = at once)
};

/// A running server while held; releasing the last lease (destructor)
/// schedules its stop.
class ManagedServerLease {
 public:
  virtual ~ManagedServerLease() = default;
  virtual std::string base_url() const = 0;  ///< "http://127.0.0.1:PORT/v1"
  virtual std::string command() const = 0;   ///< the launched command line
};

/// Starts or reuses the server of `spec`; blocks until it is healthy. cancel
/// (may be null) aborts the wait. log receives progress lines. Throws
/// std::runtime_error with the server's log tail on failure.
std::shared_ptr<ManagedServerLease> acquire_managed_server(const ManagedServerSpec& spec,
                                                           const std::atomic<int>* cancel,
                                                           const std::function<void(const std::string&)>& log);

/// Servers running now (tests).
int managed_servers_running();

/// Stops every server now (process exit; also registered with atexit).
void stop_managed_servers();

}  // namespace qsweep
