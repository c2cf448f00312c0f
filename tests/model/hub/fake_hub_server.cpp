#include "tests/model/hub/fake_hub_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace qsweep::testing {

using nlohmann::json;

std::string TestRequest::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

namespace {

std::string percent_decode(const std::string& s) {
  std::string r;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      r += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      r += s[i] == '+' ? ' ' : s[i];
    }
  }
  return r;
}

std::string digest_hex(const EVP_MD* md, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_Digest(data.data(), data.size(), out, &n, md, nullptr);
  static const char* k_hex = "0123456789abcdef";
  std::string r;
  for (unsigned i = 0; i < n; ++i) {
    r += k_hex[out[i] >> 4];
    r += k_hex[out[i] & 15];
  }
  return r;
}

bool send_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

const char* reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 206:
      return "Partial Content";
    case 302:
      return "Found";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 416:
      return "Range Not Satisfiable";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    default:
      return "Status";
  }
}

}  // namespace

std::string sha256_hex(const std::string& data) { return digest_hex(EVP_sha256(), data); }

std::string git_blob_id(const std::string& data) {
  std::string obj = "blob " + std::to_string(data.size());
  obj.push_back('\0');
  return digest_hex(EVP_sha1(), obj + data);
}

LoopbackServer::LoopbackServer(Handler handler) : handler_(std::move(handler)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error("socket() failed");
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 16) != 0)
    throw std::runtime_error("bind/listen on 127.0.0.1 failed");
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { serve(); });
}

LoopbackServer::~LoopbackServer() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
}

std::vector<TestRequest> LoopbackServer::requests() const {
  std::lock_guard<std::mutex> lk(mu_);
  return requests_;
}

void LoopbackServer::serve() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    handle(fd);
    ::close(fd);
  }
}

void LoopbackServer::handle(int fd) {
  std::string in;
  char buf[4096];
  while (in.find("\r\n\r\n") == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) return;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;
    in.append(buf, static_cast<size_t>(n));
  }
  TestRequest req;
  size_t eol = in.find("\r\n");
  std::string line = in.substr(0, eol);
  size_t s1 = line.find(' '), s2 = line.rfind(' ');
  req.method = line.substr(0, s1);
  req.target = line.substr(s1 + 1, s2 - s1 - 1);
  size_t q = req.target.find('?');
  req.path = percent_decode(req.target.substr(0, q));
  if (q != std::string::npos) {
    std::string qs = req.target.substr(q + 1);
    size_t start = 0;
    while (start <= qs.size()) {
      size_t amp = qs.find('&', start);
      std::string kv = qs.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
      size_t eq = kv.find('=');
      if (!kv.empty())
        req.query[percent_decode(kv.substr(0, eq))] =
            eq == std::string::npos ? "" : percent_decode(kv.substr(eq + 1));
      if (amp == std::string::npos) break;
      start = amp + 1;
    }
  }
  size_t pos = eol + 2;
  while (true) {
    size_t e = in.find("\r\n", pos);
    if (e == pos || e == std::string::npos) break;
    std::string h = in.substr(pos, e - pos);
    size_t colon = h.find(':');
    if (colon != std::string::npos) {
      size_t v = h.find_first_not_of(' ', colon + 1);
      req.headers[h.substr(0, colon)] = v == std::string::npos ? "" : h.substr(v);
    }
    pos = e + 2;
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    requests_.push_back(req);
  }
  TestResponse resp = handler_(req);
  std::string head = "HTTP/1.1 " + std::to_string(resp.status) + " " + reason(resp.status) + "\r\n";
  for (const auto& [k, v] : resp.headers) head += k + ": " + v + "\r\n";
  head += "Content-Length: " + std::to_string(resp.body.size()) + "\r\nConnection: close\r\n\r\n";
  if (!send_all(fd, head.data(), head.size()) || req.method == "HEAD") return;
  size_t n = std::min(resp.drop_after, resp.body.size());
  send_all(fd, resp.body.data(), n);
  if (n < resp.body.size()) ::shutdown(fd, SHUT_RDWR);  // a dropped connection mid-body
}

FakeHub::FakeHub()
    : cdn_([this](const TestRequest& r) { return handle_cdn(r); }),
      hub_([this](const TestRequest& r) { return handle(r); }) {}

std::string FakeHub::commit(const std::string& repo, const std::map<std::string, File>& files,
                            const std::string& ref) {
  std::lock_guard<std::mutex> lk(mu_);
  std::string sha = digest_hex(EVP_sha1(), repo + "#" + std::to_string(++n_commits_));
  repos_[repo].commits[sha].files = files;
  repos_[repo].refs[ref] = sha;
  for (const auto& [name, f] : files)
    if (f.lfs) cdn_blobs_[sha256_hex(f.content)] = f.content;
  return sha;
}

void FakeHub::add_listed_name(const std::string& repo, const std::string& name) {
  std::lock_guard<std::mutex> lk(mu_);
  repos_[repo].extra_names.push_back(name);
}

void FakeHub::set_rows(const std::string& dataset, const std::string& config,
                       const std::string& split, std::vector<json> rows) {
  std::lock_guard<std::mutex> lk(mu_);
  rows_[dataset + "\n" + config + "\n" + split] = std::move(rows);
}

void FakeHub::require_token(const std::string& token) {
  std::lock_guard<std::mutex> lk(mu_);
  token_ = token;
}

void FakeHub::fail_with(const std::string& file, int status, int times,
                        const std::string& retry_after) {
  std::lock_guard<std::mutex> lk(mu_);
  faults_[file] = {status, times, retry_after};
}

void FakeHub::drop_once_after(const std::string& file, size_t bytes) {
  std::lock_guard<std::mutex> lk(mu_);
  drops_[file] = bytes;
}

void FakeHub::lie_about_sha256(const std::string& file) {
  std::lock_guard<std::mutex> lk(mu_);
  lies_[file] = true;
}

int FakeHub::file_gets() const {
  int n = 0;
  for (const auto& r : hub_.requests())
    if (r.method == "GET" && r.path.find("/resolve/") != std::string::npos) ++n;
  return n;
}

TestResponse FakeHub::serve_bytes(const TestRequest& r, const std::string& content,
                                  std::vector<std::pair<std::string, std::string>> headers) {
  TestResponse resp;
  resp.headers = std::move(headers);
  resp.headers.push_back({"Accept-Ranges", "bytes"});
  std::string range = r.header("Range");
  if (range.rfind("bytes=", 0) == 0 && range.back() == '-') {
    size_t start = std::stoul(range.substr(6));
    if (start >= content.size()) {
      resp.status = 416;
      resp.headers.push_back({"Content-Range", "bytes */" + std::to_string(content.size())});
      return resp;
    }
    resp.status = 206;
    resp.headers.push_back({"Content-Range", "bytes " + std::to_string(start) + "-" +
                                                 std::to_string(content.size() - 1) + "/" +
                                                 std::to_string(content.size())});
    resp.body = content.substr(start);
    return resp;
  }
  resp.body = content;
  return resp;
}

TestResponse FakeHub::handle_cdn(const TestRequest& r) {
  std::lock_guard<std::mutex> lk(mu_);
  if (auto f = faults_.find("cdn"); f != faults_.end() && f->second.times > 0) {
    --f->second.times;
    return {f->second.status, {}, "<Error><Code>AccessDenied</Code></Error>"};
  }
  const std::string prefix = "/cdn/";
  if (r.path.rfind(prefix, 0) != 0) return {404, {}, "no such blob"};
  auto it = cdn_blobs_.find(r.path.substr(prefix.size()));
  if (it == cdn_blobs_.end()) return {404, {}, "no such blob"};
  return serve_bytes(r, it->second, {{"ETag", "\"cdn-" + it->first.substr(0, 8) + "\""}});
}

TestResponse FakeHub::handle(const TestRequest& r) {
  std::lock_guard<std::mutex> lk(mu_);
  if (!token_.empty() && r.header("Authorization") != "Bearer " + token_)
    return {
        401,
        {{"X-Error-Code", "GatedRepo"}, {"X-Error-Message", "Access to this repo is restricted."}},
        "{\"error\":\"Access to this repo is restricted.\"}"};
  // Fault injection, keyed by "api", "rows" or a repo file path.
  std::string fault_key = r.path.rfind("/api/", 0) == 0 ? "api" : r.path == "/rows" ? "rows" : "";
  if (fault_key.empty()) {
    size_t at = r.path.find("/resolve/");
    if (at != std::string::npos) {
      std::string rest = r.path.substr(at + 9);
      fault_key = rest.substr(rest.find('/') + 1);
    }
  }
  if (auto f = faults_.find(fault_key); f != faults_.end() && f->second.times > 0) {
    --f->second.times;
    TestResponse resp{f->second.status, {}, "{\"error\":\"injected fault\"}"};
    if (!f->second.retry_after.empty())
      resp.headers.push_back({"Retry-After", f->second.retry_after});
    return resp;
  }
  if (r.path == "/rows") return rows(r);
  // /api/{models|datasets}/ORG/NAME/revision/REV
  if (r.path.rfind("/api/", 0) == 0) {
    std::string rest = r.path.substr(5);
    bool dataset = rest.rfind("datasets/", 0) == 0;
    if (!dataset && rest.rfind("models/", 0) != 0) return {404, {}, "not found"};
    rest = rest.substr(dataset ? 9 : 7);
    size_t rev_at = rest.find("/revision/");
    if (rev_at == std::string::npos) return {404, {}, "not found"};
    return api((dataset ? "datasets/" : "") + rest.substr(0, rev_at), rest.substr(rev_at + 10));
  }
  // /[datasets/]ORG/NAME/resolve/REV/FILE
  size_t at = r.path.find("/resolve/");
  if (at == std::string::npos) return {404, {}, "not found"};
  std::string repo = r.path.substr(1, at - 1);
  std::string rest = r.path.substr(at + 9);
  size_t slash = rest.find('/');
  return resolve(r, repo, rest.substr(0, slash), rest.substr(slash + 1));
}

TestResponse FakeHub::api(const std::string& repo, const std::string& rev) {
  auto it = repos_.find(repo);
  if (it == repos_.end())
    return {404, {{"X-Error-Code", "RepoNotFound"}}, "{\"error\":\"Repository not found\"}"};
  const Repo& rp = it->second;
  std::string sha = rp.refs.count(rev) ? rp.refs.at(rev) : rev;
  auto c = rp.commits.find(sha);
  if (c == rp.commits.end())
    return {
        404, {{"X-Error-Code", "RevisionNotFound"}}, "{\"error\":\"Invalid rev id: " + rev + "\"}"};
  json siblings = json::array();
  for (const auto& [name, f] : c->second.files) {
    std::string oid = git_blob_id(lies_.count(name) && !f.lfs ? f.content + "x" : f.content);
    json s = {{"rfilename", name}, {"size", f.content.size()}, {"blobId", oid}};
    if (f.lfs) {
      std::string sha256 = lies_.count(name) ? sha256_hex(f.content + "x") : sha256_hex(f.content);
      s["lfs"] = {{"sha256", sha256}, {"size", f.content.size()}, {"pointerSize", 134}};
    }
    siblings.push_back(s);
  }
  for (const auto& name : rp.extra_names) siblings.push_back({{"rfilename", name}, {"size", 1}});
  std::string id = repo.rfind("datasets/", 0) == 0 ? repo.substr(9) : repo;
  json j = {{"id", id}, {"sha", sha}, {"private", false}, {"siblings", siblings}};
  return {200, {{"Content-Type", "application/json"}}, j.dump()};
}

TestResponse FakeHub::resolve(const TestRequest& r, const std::string& repo, const std::string& rev,
                              const std::string& file) {
  auto it = repos_.find(repo);
  if (it == repos_.end()) return {404, {{"X-Error-Code", "RepoNotFound"}}, "Repository not found"};
  std::string sha = it->second.refs.count(rev) ? it->second.refs.at(rev) : rev;
  auto c = it->second.commits.find(sha);
  if (c == it->second.commits.end())
    return {404, {{"X-Error-Code", "RevisionNotFound"}}, "Revision not found"};
  auto f = c->second.files.find(file);
  if (f == c->second.files.end())
    return {404, {{"X-Error-Code", "EntryNotFound"}}, "Entry not found"};
  const std::string& content = f->second.content;
  std::vector<std::pair<std::string, std::string>> headers = {{"X-Repo-Commit", sha}};
  if (f->second.lfs) {
    std::string sha256 = sha256_hex(content);
    headers.push_back({"X-Linked-Etag", "\"" + sha256 + "\""});
    headers.push_back({"X-Linked-Size", std::to_string(content.size())});
    headers.push_back({"ETag", "\"" + sha256 + "\""});
    if (cdn_on_) {
      headers.push_back({"Location", cdn_.url() + "/cdn/" + sha256 + "?expires=1"});
      return {302, headers, "Found. Redirecting"};
    }
  } else {
    headers.push_back({"ETag", "\"" + git_blob_id(content) + "\""});
  }
  TestResponse resp = serve_bytes(r, content, headers);
  if (auto d = drops_.find(file); d != drops_.end() && resp.status / 100 == 2) {
    resp.drop_after = d->second;
    drops_.erase(d);
  }
  return resp;
}

TestResponse FakeHub::rows(const TestRequest& r) {
  auto q = [&](const char* k) { return r.query.count(k) ? r.query.at(k) : std::string(); };
  auto it = rows_.find(q("dataset") + "\n" + q("config") + "\n" + q("split"));
  if (it == rows_.end()) return {404, {}, "{\"error\":\"Not found.\"}"};
  size_t offset = std::stoul(q("offset").empty() ? "0" : q("offset"));
  size_t length = std::stoul(q("length").empty() ? "100" : q("length"));
  if (length > 100) return {422, {}, "{\"error\":\"length must be <= 100\"}"};
  json rows = json::array();
  for (size_t i = offset; i < std::min(it->second.size(), offset + length); ++i)
    rows.push_back({{"row_idx", i}, {"row", it->second[i]}, {"truncated_cells", json::array()}});
  json j = {{"features", json::array()},
            {"rows", rows},
            {"num_rows_total", it->second.size()},
            {"num_rows_per_page", 100},
            {"partial", false}};
  return {200, {{"Content-Type", "application/json"}}, j.dump()};
}

}  // namespace qsweep::testing
