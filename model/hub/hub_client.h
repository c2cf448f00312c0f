#pragma once
// The Hugging Face Hub protocol, as huggingface_hub speaks it:
//   GET {endpoint}/api/{models|datasets}/{repo}/revision/{rev}?blobs=true
//       -> {"sha": commit, "siblings": [{"rfilename", "size", "blobId", "lfs": {"sha256",
//       "size"}}]}
//   GET {endpoint}/[datasets/]{repo}/resolve/{commit}/{file}   (LFS files redirect to a CDN)
//   GET {datasets_server}/rows?dataset=&config=&split=&offset=&length=100
// Files land in the HF cache (hub_cache.h) and are reused from it; transfers
// resume from blobs/<etag>.incomplete with Range; LFS files are checked against
// their sha256; 429/5xx and dropped connections are retried with exponential
// backoff (Retry-After honoured). Errors never contain the token.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "model/hub/http.h"
#include "model/hub/hub_cache.h"
#include "model/hub/hub_source.h"

namespace qsweep::model {

struct RepoFile {
  std::string path;        ///< repo-relative, checked by check_repo_path
  int64_t size = -1;       ///< bytes; -1 = unknown
  std::string blob_id;     ///< git blob sha1; "" = unknown
  std::string lfs_sha256;  ///< "" for a file not in LFS
  /// Name of the file's blob in the HF cache ("" when the listing gives none).
  std::string etag() const { return lfs_sha256.empty() ? blob_id : lfs_sha256; }
};

struct RepoInfo {
  std::string sha;              ///< the commit (40 hex digits)
  std::vector<RepoFile> files;  ///< the whole listing, sorted by path
  bool from_cache = false;      ///< listed from the local snapshot (offline)
  std::vector<std::string> paths() const;
  const RepoFile* find(const std::string& path) const;
};

struct HubError {
  std::string message;     ///< what failed and what to do; never contains the token
  bool retryable = false;  ///< still failing after the client's own retries (429/5xx/network)
};

struct RetryPolicy {
  int max_attempts = 6;            ///< per request, including the first
  double base_delay_s = 1;         ///< then 2x per attempt
  double max_delay_s = 30;         ///< cap of the backoff
  double max_retry_after_s = 120;  ///< cap of a server's Retry-After
  /// Sleeps (tests record instead); empty = real sleep in slices, abortable.
  std::function<void(double seconds)> sleep;
};

struct TransferHooks {
  std::function<void(uint64_t done, uint64_t total)> on_bytes;  ///< overall bytes of this call
  std::function<bool()> should_abort;                           ///< true = stop now (cancel)
  std::function<void(const std::string&)> log;                  ///< one line (retries, reuse)
};

struct FetchedFile {
  std::string path;             ///< repo-relative
  std::filesystem::path local;  ///< the regular file (a blob of the HF cache, or the URL's target)
  uint64_t size = 0;
  std::string sha256;   ///< lowercase hex
  bool reused = false;  ///< was already in the cache; nothing transferred
};

class HubClient {
 public:
  HubClient(HttpClient& http, HubEnv env, RetryPolicy retry = {});

  const HubEnv& env() const { return env_; }

  /// The commit a revision names: one API request (none for a full sha that
  /// is cached); offline, refs/ of the HF cache.
  bool resolve_revision(const HubSource& src, std::string* sha, HubError* err);
  /// The commit and the file listing; offline, from the cached snapshot.
  bool repo_info(const HubSource& src, RepoInfo* info, HubError* err);
  /// Makes every file of `files` (paths of info) present in the HF cache at
  /// info.sha, downloading what is missing; out gets them in order.
  bool fetch_files(const HubSource& src, const RepoInfo& info,
                   const std::vector<std::string>& files, const TransferHooks& hooks,
                   std::vector<FetchedFile>* out, HubError* err);
  /// Downloads one URL to dest (resuming dest + ".incomplete"); no token is sent.
  bool fetch_url(const std::string& url, const std::filesystem::path& dest,
                 const TransferHooks& hooks, FetchedFile* out, HubError* err);
  /// Every row of a dataset split through the datasets-server rows API, one
  /// JSON object per line in dest; *n_rows = rows written.
  bool fetch_rows(const HubSource& src, const std::string& config, const std::string& split,
                  const std::filesystem::path& dest, const TransferHooks& hooks, uint64_t* n_rows,
                  HubError* err);

  /// {endpoint}/[datasets/]{repo}/resolve/{rev}/{path}
  std::string resolve_url(const HubSource& src, const std::string& rev,
                          const std::string& path) const;

 private:
  bool get_json(const HubSource& src, const std::string& url, const std::string& what,
                const TransferHooks& hooks, std::string* body, HubError* err);
  bool fetch_to(const HubSource* src, const HttpRequest& base, const std::filesystem::path& partial,
                int64_t expected_size, const std::string& what, const TransferHooks& hooks,
                uint64_t done_before, uint64_t total, HubError* err);
  bool fail(HubError* err, std::string message, bool retryable = false) const;
  std::string http_error(const HubSource* src, const HttpResponse& r,
                         const std::string& what) const;
  void wait(double seconds, const TransferHooks& hooks) const;
  /// After a failed attempt: false (and *err) when the attempts are used up,
  /// else logs, waits the backoff (or Retry-After) and returns true.
  bool wait_to_retry(const HttpResponse& r, int attempt, const std::string& what,
                     const TransferHooks& hooks, HubError* err) const;
  double backoff(int attempt) const;
  std::string redact(std::string s) const;

  HttpClient& http_;
  HubEnv env_;
  RetryPolicy retry_;
};

}  // namespace qsweep::model
