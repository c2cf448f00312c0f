#pragma once
// A loopback HTTP/1.1 server for the Hub tests (plain sockets, one thread,
// one connection at a time, "Connection: close"), and on it a fake Hugging
// Face Hub: repos with commits and refs, the revision API, resolve URLs with
// Range, LFS redirects to a second "CDN" server, the datasets-server rows API,
// and fault injection (429, 500, a dropped connection, a wrong sha256, 401).

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "model/hub/http.h"

namespace qsweep::testing {

struct TestRequest {
  std::string method;
  std::string target;                        ///< path + query, as sent
  std::string path;                          ///< percent-decoded path
  std::map<std::string, std::string> query;  ///< decoded
  model::HttpHeaders headers;
  std::string header(const std::string& name) const;
};

struct TestResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  size_t drop_after = std::string::npos;  ///< close the socket after this many body bytes
};

/// Listens on 127.0.0.1 (port chosen by the kernel) and answers with handler.
class LoopbackServer {
 public:
  using Handler = std::function<TestResponse(const TestRequest&)>;
  explicit LoopbackServer(Handler handler);
  ~LoopbackServer();
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<TestRequest> requests() const;  ///< every request so far, in order

 private:
  void serve();
  void handle(int fd);

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<TestRequest> requests_;
  std::thread thread_;
};

std::string sha256_hex(const std::string& data);
/// git's blob id: sha1("blob <size>\0" + data).
std::string git_blob_id(const std::string& data);

class FakeHub {
 public:
  struct File {
    std::string content;
    bool lfs = false;
  };
  FakeHub();

  std::string url() const { return hub_.url(); }
  /// Adds a commit of `files` to repo ("org/name" or "datasets/org/name") and
  /// points `ref` at it; returns the commit sha.
  std::string commit(const std::string& repo, const std::map<std::string, File>& files,
                     const std::string& ref = "main");
  /// Extra names in the listing of repo's commits (hostile names), not served.
  void add_listed_name(const std::string& repo, const std::string& name);
  /// Rows served by /rows for dataset (org/name), config, split.
  void set_rows(const std::string& dataset, const std::string& config, const std::string& split,
                std::vector<nlohmann::json> rows);

  // Faults and options (set before the requests).
  void require_token(const std::string& token);  ///< 401 without "Bearer token"
  /// Answers `times` requests for file ("api", "rows", "cdn" or a repo path) with status.
  void fail_with(const std::string& file, int status, int times,
                 const std::string& retry_after = "");
  void drop_once_after(const std::string& file, size_t bytes);  ///< first GET closes mid-body
  void lie_about_sha256(
      const std::string& file);  ///< listing gives a wrong sha256 (LFS) or blobId (git)
  void redirect_lfs_to_cdn(bool on) { cdn_on_ = on; }

  std::vector<TestRequest> requests() const { return hub_.requests(); }
  std::vector<TestRequest> cdn_requests() const { return cdn_.requests(); }
  /// GETs of /resolve/ URLs so far (file downloads).
  int file_gets() const;

 private:
  struct Commit {
    std::map<std::string, File> files;
  };
  struct Repo {
    std::map<std::string, std::string> refs;  // ref -> sha
    std::map<std::string, Commit> commits;    // sha -> commit
    std::vector<std::string> extra_names;
  };
  struct Fault {
    int status = 0;
    int times = 0;
    std::string retry_after;
  };

  TestResponse handle(const TestRequest& r);
  TestResponse handle_cdn(const TestRequest& r);
  TestResponse api(const std::string& repo, const std::string& rev);
  TestResponse resolve(const TestRequest& r, const std::string& repo, const std::string& rev,
                       const std::string& file);
  TestResponse rows(const TestRequest& r);
  static TestResponse serve_bytes(const TestRequest& r, const std::string& content,
                                  std::vector<std::pair<std::string, std::string>> headers);

  mutable std::mutex mu_;
  std::map<std::string, Repo> repos_;
  std::map<std::string, std::vector<nlohmann::json>> rows_;  // "dataset\nconfig\nsplit"
  std::map<std::string, std::string> cdn_blobs_;             // sha256 -> content
  std::string token_;
  std::map<std::string, Fault> faults_;
  std::map<std::string, size_t> drops_;
  std::map<std::string, bool> lies_;
  bool cdn_on_ = false;
  int n_commits_ = 0;
  LoopbackServer cdn_;
  LoopbackServer hub_;
};

}  // namespace qsweep::testing
