#include "stages/managed_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "model/hub/http.h"
#include "stages/process.h"

namespace qsweep {

namespace fs = std::filesystem;

namespace {

struct Server {
  std::string key, url, command;
  fs::path out_log, err_log;
  std::atomic<int> stop{0};  // run_process's cancel: 1 = SIGINT, 2 = SIGKILL
  std::atomic<bool> exited{false};
  std::thread thread;
  ProcessResult result;
  std::string start_error;
  int users = 0;
  uint64_t releases = 0;  // a delayed stop only applies if no lease came and went since
};

struct Registry {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<Server>> servers;
};

Registry& registry() {
  static Registry* r = [] {
    auto* reg = new Registry();  // never destroyed: atexit handlers may still use it
    std::atexit(stop_managed_servers);
    return reg;
  }();
  return *r;
}

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("cannot open a socket to find a free port");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    throw std::runtime_error("cannot find a free port on 127.0.0.1");
  }
  const int port = ntohs(a.sin_port);
  close(fd);
  return port;
}

std::string expand(std::string t, const std::map<std::string, std::string>& vars) {
  for (const auto& [k, v] : vars) {
    const std::string ph = "{" + k + "}";
    for (size_t p = t.find(ph); p != std::string::npos; p = t.find(ph, p + v.size())) t.replace(p, ph.size(), v);
  }
  return t;
}

bool setpriv_available() {
  static const bool ok = [] {
    for (const char* d : {"/usr/bin/setpriv", "/bin/setpriv"})
      if (access(d, X_OK) == 0) return true;
    return false;
  }();
  return ok;
}

std::string self_exe() {
  std::error_code ec;
  const fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("qsweep") : p.string();
}

std::string tail_of(const fs::path& p, size_t lines) {
  std::ifstream f(p);
  std::vector<std::string> all;
  for (std::string l; std::getline(f, l);) all.push_back(l);
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) out += all[i] + "\n";
  return out;
}

void stop_server(const std::shared_ptr<Server>& s) {
  s->stop = 1;  // SIGINT to its process group: a graceful shutdown
  for (int i = 0; i < 200 && !s->exited; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  s->stop = 2;  // SIGKILL
  if (s->thread.joinable()) s->thread.join();
}

class Lease : public ManagedServerLease {
 public:
  Lease(std::shared_ptr<Server> s, double keep_alive) : s_(std::move(s)), keep_alive_(keep_alive) {}
  ~Lease() override {
    std::shared_ptr<Server> stop_now;
    uint64_t mark = 0;
    {
      std::lock_guard<std::mutex> lk(registry().mu);
      if (--s_->users > 0) return;
      mark = ++s_->releases;
      if (keep_alive_ <= 0) {
        auto it = registry().servers.find(s_->key);
        if (it != registry().servers.end() && it->second == s_) registry().servers.erase(it);
        stop_now = s_;
      }
    }
    if (stop_now) {
      stop_server(stop_now);
      return;
    }
    std::thread([s = s_, mark, wait = keep_alive_] {
      std::this_thread::sleep_for(std::chrono::duration<double>(wait));
      {
        std::lock_guard<std::mutex> lk(registry().mu);
        if (s->users > 0 || s->releases != mark) return;  // in use again
        auto it = registry().servers.find(s->key);
        if (it != registry().servers.end() && it->second == s) registry().servers.erase(it);
      }
      stop_server(s);
    }).detach();
  }
  std::string base_url() const override { return s_->url; }
  std::string command() const override { return s_->command; }

 private:
  std::shared_ptr<Server> s_;
  double keep_alive_;
};

}  // namespace

std::shared_ptr<ManagedServerLease> acquire_managed_server(const ManagedServerSpec& spec,
                                                           const std::atomic<int>* cancel,
                                                           const std::function<void(const std::string&)>& log) {
  const std::string key = spec.launch + "\n" + spec.model_dir.string() + "\n" + spec.model;
  std::shared_ptr<Server> s;
  bool fresh = false;
  {
    std::lock_guard<std::mutex> lk(registry().mu);
    auto it = registry().servers.find(key);
    if (it != registry().servers.end() && !it->second->exited) {
      s = it->second;
    } else {
      s = std::make_shared<Server>();
      s->key = key;
      registry().servers[key] = s;
      fresh = true;
    }
    ++s->users;
  }
  auto lease = std::make_shared<Lease>(s, spec.keep_alive_s);
  if (fresh) {
    const int port = free_port();
    s->url = "http://127.0.0.1:" + std::to_string(port) + "/v1";
    s->command = expand(spec.launch, {{"model_dir", spec.model_dir.string()},
                                      {"port", std::to_string(port)},
                                      {"host", "127.0.0.1"},
                                      {"model", spec.model},
                                      {"qsweep", self_exe()}});
    fs::create_directories(spec.log_dir);
    s->out_log = spec.log_dir / ("server-" + std::to_string(port) + ".out.log");
    s->err_log = spec.log_dir / ("server-" + std::to_string(port) + ".err.log");
    log("starting inference server: " + s->command + " (logs " + s->err_log.string() + ")");
    ProcessSpec ps;
    // setpriv --pdeathsig: the server dies with this process even when it
    // is SIGKILLed (no chance to stop it); a simple command is exec'd by the
    // shell so that the server itself, not only `sh`, carries the signal.
    const bool simple = s->command.find_first_of(";&|<>`$()\n") == std::string::npos;
    ps.argv = {"sh", "-c", simple ? "exec " + s->command : s->command};
    if (setpriv_available()) ps.argv.insert(ps.argv.begin(), {"setpriv", "--pdeathsig", "KILL", "--"});
    ps.stdout_path = s->out_log;
    ps.stderr_path = s->err_log;
    s->thread = std::thread([s, ps] {
      std::string err;
      if (!run_process(ps, &s->stop, nullptr, &s->result, &err)) s->start_error = err;
      s->exited = true;
    });
  }
  // Healthy: GET /health answers 200.
  auto http = model::make_curl_http_client();
  const std::string health = s->url.substr(0, s->url.size() - 3) + "/health";
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0;; ++i) {
    if (s->exited) {
      const std::string why = !s->start_error.empty() ? s->start_error
                              : s->result.term_signal ? "killed by signal " + std::to_string(s->result.term_signal)
                                                      : "exit code " + std::to_string(s->result.exit_code);
      throw std::runtime_error("the inference server (" + s->command + ") exited before it was healthy (" + why +
                               "); the end of its log:\n" + tail_of(s->err_log, 20) + tail_of(s->out_log, 5));
    }
    model::HttpRequest req;
    req.url = health;
    req.connect_timeout_s = 2;
    req.timeout_s = 5;
    req.max_redirects = 0;
    std::string body;
    if (model::http_get_string(*http, req, &body).ok()) break;
    if (cancel && cancel->load()) throw std::runtime_error("cancelled while waiting for the inference server");
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (waited > spec.health_timeout_s)
      throw std::runtime_error("the inference server (" + s->command + ") did not answer " + health + " within " +
                               std::to_string(int(spec.health_timeout_s)) + " s; the end of its log:\n" +
                               tail_of(s->err_log, 20));
    std::this_thread::sleep_for(std::chrono::milliseconds(i < 40 ? 100 : 500));
  }
  if (fresh) log("inference server ready at " + s->url);
  return lease;
}

int managed_servers_running() {
  std::lock_guard<std::mutex> lk(registry().mu);
  int n = 0;
  for (const auto& [k, s] : registry().servers) n += !s->exited;
  return n;
}

void stop_managed_servers() {
  std::map<std::string, std::shared_ptr<Server>> all;
  {
    std::lock_guard<std::mutex> lk(registry().mu);
    all.swap(registry().servers);
  }
  for (auto& [k, s] : all) stop_server(s);
}

}  // namespace qsweep
