#pragma once
// A narrow HTTP client interface (GET/HEAD/POST, streaming bodies, redirects)
// with a libcurl implementation; tests may pass their own. Used by the Hub
// client and the OpenAI-compatible backend.
//
// Redirects are followed by this layer, hop by hop, so that the rule for
// credentials is explicit: the bearer token is sent only to the scheme, host
// and port of the original URL, never to a host a redirect points at (the Hub
// redirects LFS files to a CDN), and a redirect from https to plain http is
// refused. Nothing here logs, and no error text contains
// a request header.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace qsweep::model {

/// Case-insensitive ordering for header names.
struct HeaderNameLess {
  bool operator()(const std::string& a, const std::string& b) const;
};

/// Response headers by name (case-insensitive); a repeated header keeps the last value.
using HttpHeaders = std::map<std::string, std::string, HeaderNameLess>;

struct HttpRequest {
  std::string url;
  std::string method = "GET";  ///< "GET", "HEAD" or "POST"
  std::string body;            ///< POST body (send a Content-Type header with it)
  HttpHeaders headers;         ///< sent on every hop (never put credentials here)
  std::string
      bearer_token;  ///< "Authorization: Bearer ..." to the original origin only; empty = none
  uint64_t range_start = 0;            ///< > 0: "Range: bytes=N-"
  int max_redirects = 10;              ///< 0 = return the 3xx response itself
  double connect_timeout_s = 15;       ///< TCP/TLS connect limit
  double stall_timeout_s = 60;         ///< abort when no byte arrives for this long
  double timeout_s = 0;                ///< whole-transfer limit (0 = none)
  std::function<bool()> should_abort;  ///< polled during the transfer; true = abort (cancel)
  /// Called once with the status and headers of a final 2xx response, before
  /// its first body byte (not called for an empty body); false = abort.
  std::function<bool(int status, const HttpHeaders& headers)> on_response;
};

struct HttpResponse {
  int status = 0;         ///< final HTTP status; 0 = no response at all
  HttpHeaders headers;    ///< of the final response
  std::string final_url;  ///< after redirects
  std::string error;  ///< transport error (connect failed, connection dropped, timeout, aborted);
                      ///< empty = complete
  bool aborted = false;     ///< should_abort or the sink asked to stop
  uint64_t body_bytes = 0;  ///< bytes of a 2xx body passed to the sink
  std::string error_body;   ///< first 64 KiB of a non-2xx body (for messages)

  bool ok() const { return error.empty() && status >= 200 && status < 300; }
  /// The header's value, or "" when absent.
  std::string header(const std::string& name) const;
};

/// Receives a 2xx body in chunks; returns false to abort the transfer.
using BodySink = std::function<bool(const char* data, size_t n)>;

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  /// Performs the request, following redirects. Bodies of 2xx responses go to
  /// sink (may be empty for HEAD); other bodies go to HttpResponse::error_body.
  virtual HttpResponse send(const HttpRequest& req, const BodySink& sink) = 0;
};

/// The production client, on libcurl (HTTP/1.1 and HTTP/2, TLS, proxies from the environment).
std::unique_ptr<HttpClient> make_curl_http_client();

/// GET into a string (convenience over send()).
HttpResponse http_get_string(HttpClient& http, const HttpRequest& req, std::string* body);

/// "scheme://host:port" of an absolute URL (default port filled in), "" when unparsable.
std::string url_origin(const std::string& url);

/// Percent-encodes everything except unreserved characters and, when keep_slash, '/'.
std::string url_encode(const std::string& s, bool keep_slash);

}  // namespace qsweep::model
