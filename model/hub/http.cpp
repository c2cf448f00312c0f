#include "model/hub/http.h"

#include <curl/curl.h>
#include <strings.h>

#include <algorithm>
#include <cctype>
#include <mutex>

namespace qsweep::model {

bool HeaderNameLess::operator()(const std::string& a, const std::string& b) const {
  return strcasecmp(a.c_str(), b.c_str()) < 0;
}

std::string HttpResponse::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

std::string url_origin(const std::string& url) {
  size_t p = url.find("://");
  if (p == std::string::npos) return {};
  std::string scheme = url.substr(0, p);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(), ::tolower);
  size_t start = p + 3;
  size_t end = url.find_first_of("/?#", start);
  std::string auth = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (size_t at = auth.rfind('@'); at != std::string::npos) auth = auth.substr(at + 1);
  std::transform(auth.begin(), auth.end(), auth.begin(), ::tolower);
  if (auth.empty()) return {};
  // A port is present when the last ':' comes after any IPv6 ']'.
  size_t colon = auth.rfind(':');
  size_t bracket = auth.rfind(']');
  bool has_port = colon != std::string::npos && (bracket == std::string::npos || colon > bracket);
  if (!has_port) auth += scheme == "https" ? ":443" : scheme == "http" ? ":80" : "";
  return scheme + "://" + auth;
}

std::string url_encode(const std::string& s, bool keep_slash) {
  static const char* k_hex = "0123456789ABCDEF";
  std::string r;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      r += static_cast<char>(c);
    } else {
      r += '%';
      r += k_hex[c >> 4];
      r += k_hex[c & 15];
    }
  }
  return r;
}

HttpResponse http_get_string(HttpClient& http, const HttpRequest& req, std::string* body) {
  body->clear();
  return http.send(req, [body](const char* d, size_t n) {
    body->append(d, n);
    return true;
  });
}

namespace {

constexpr size_t k_max_error_body = 64 * 1024;

bool is_redirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// State of one hop, shared with curl's callbacks.
struct Hop {
  CURL* curl = nullptr;
  const HttpRequest* req = nullptr;
  const BodySink* sink = nullptr;
  bool following = false;  // 3xx bodies are discarded when the redirect will be followed
  HttpResponse* resp = nullptr;
  bool sink_stopped = false;
  bool started = false;  // on_response was called
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* hop = static_cast<Hop*>(user);
  std::string line(data, size * n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  if (line.rfind("HTTP/", 0) == 0) {
    hop->resp->headers.clear();  // a new response (e.g. after 100 Continue)
  } else if (size_t colon = line.find(':'); colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    size_t v = line.find_first_not_of(" \t", colon + 1);
    hop->resp->headers[name] = v == std::string::npos ? std::string() : line.substr(v);
  }
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* hop = static_cast<Hop*>(user);
  size_t bytes = size * n;
  long code = 0;
  curl_easy_getinfo(hop->curl, CURLINFO_RESPONSE_CODE, &code);
  if (is_redirect(static_cast<int>(code)) && hop->following) return bytes;
  if (code >= 200 && code < 300) {
    if (hop->req->should_abort && hop->req->should_abort()) {
      hop->sink_stopped = true;
      return 0;
    }
    if (!hop->started) {
      hop->started = true;
      if (hop->req->on_response &&
          !hop->req->on_response(static_cast<int>(code), hop->resp->headers)) {
        hop->sink_stopped = true;
        return 0;
      }
    }
    if (*hop->sink && !(*hop->sink)(data, bytes)) {
      hop->sink_stopped = true;
      return 0;
    }
    hop->resp->body_bytes += bytes;
    return bytes;
  }
  std::string& eb = hop->resp->error_body;
  if (eb.size() < k_max_error_body) eb.append(data, std::min(bytes, k_max_error_body - eb.size()));
  return bytes;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* hop = static_cast<Hop*>(user);
  if (hop->req->should_abort && hop->req->should_abort()) {
    hop->sink_stopped = true;
    return 1;
  }
  return 0;
}

class CurlHttpClient : public HttpClient {
 public:
  CurlHttpClient() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  }

  HttpResponse send(const HttpRequest& req, const BodySink& sink) override {
    const std::string origin = url_origin(req.url);
    std::string url = req.url;
    for (int hop_no = 0;; ++hop_no) {
      HttpResponse resp;
      std::string next;
      bool follow = hop_no < req.max_redirects;
      perform(req, url, url_origin(url) == origin, follow, sink, &resp, &next);
      if (resp.error.empty() && is_redirect(resp.status) && follow && !next.empty()) {
        if (url.rfind("https://", 0) == 0 && next.rfind("https://", 0) != 0) {
          resp.error = "refusing a redirect from https to a non-https URL";
          resp.final_url = url;
          return resp;
        }
        url = next;
        continue;
      }
      if (resp.error.empty() && is_redirect(resp.status) && follow)
        resp.error = "redirect (HTTP " + std::to_string(resp.status) + ") without a Location";
      resp.final_url = url;
      return resp;
    }
  }

 private:
  static void perform(const HttpRequest& req, const std::string& url, bool same_origin, bool follow,
                      const BodySink& sink, HttpResponse* resp, std::string* next) {
    CURL* c = curl_easy_init();
    if (!c) {
      resp->error = "cannot initialise libcurl";
      return;
    }
    Hop hop{c, &req, &sink, follow, resp};
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_slist* hdrs = nullptr;
    for (const auto& [k, v] : req.headers) hdrs = curl_slist_append(hdrs, (k + ": " + v).c_str());
    if (same_origin && !req.bearer_token.empty())
      hdrs = curl_slist_append(hdrs, ("Authorization: Bearer " + req.bearer_token).c_str());
    if (req.range_start > 0)
      hdrs = curl_slist_append(hdrs,
                               ("Range: bytes=" + std::to_string(req.range_start) + "-").c_str());
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    if (req.method == "HEAD") curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (req.method == "POST") {
      curl_easy_setopt(c, CURLOPT_POST, 1L);
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.data());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    }
    if (req.timeout_s > 0) curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout_s * 1000));
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "qsweep/1 (hub client)");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(req.connect_timeout_s * 1000));
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
                     std::max(1L, static_cast<long>(req.stall_timeout_s)));
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &hop);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &hop);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &hop);
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    resp->status = static_cast<int>(code);
    if (is_redirect(resp->status)) {
      char* loc = nullptr;
      if (curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc) *next = loc;
    }
    if (rc != CURLE_OK) {
      if (hop.sink_stopped) {
        resp->aborted = true;
        resp->error = "transfer aborted";
      } else {
        resp->error =
            std::string(curl_easy_strerror(rc)) + (errbuf[0] ? std::string(": ") + errbuf : "");
      }
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
  }
};

}  // namespace

std::unique_ptr<HttpClient> make_curl_http_client() { return std::make_unique<CurlHttpClient>(); }

}  // namespace qsweep::model
