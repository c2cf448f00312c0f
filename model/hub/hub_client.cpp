#include "model/hub/hub_client.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

namespace qsweep::model {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<std::string> RepoInfo::paths() const {
  std::vector<std::string> r;
  for (const auto& f : files) r.push_back(f.path);
  return r;
}

const RepoFile* RepoInfo::find(const std::string& path) const {
  for (const auto& f : files)
    if (f.path == path) return &f;
  return nullptr;
}

namespace {

std::string repo_label(const HubSource& src) {
  return (src.repo_type == RepoType::kDataset ? "datasets/" : "") + src.repo_id;
}

bool retryable_status(int status) { return status == 408 || status == 429 || status >= 500; }

// A URL for a message: without its query (a CDN's signed URL carries a signature).
std::string shown_url(const std::string& url) { return url.substr(0, url.find('?')); }

// Retry-After in seconds (the delta form); -1 when absent or an HTTP date.
double retry_after_s(const HttpResponse& r) {
  std::string v = r.header("Retry-After");
  if (v.empty() || !std::all_of(v.begin(), v.end(), ::isdigit) || v.size() > 6) return -1;
  return std::stod(v);
}

std::string short_body(const std::string& body) {
  std::string s = body.substr(0, 300);
  auto j = json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_string())
    s = j["error"].get<std::string>();
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

// An exclusive flock on a lock file, held while a blob is written (the same
// lock file huggingface_hub uses: <hub_cache>/.locks/<repo folder>/<etag>.lock).
class BlobLock {
 public:
  explicit BlobLock(const fs::path& p) {
    std::error_code ec;
    fs::create_directories(p.parent_path(), ec);
    fd_ = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ >= 0) ::flock(fd_, LOCK_EX);
  }
  ~BlobLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  BlobLock(const BlobLock&) = delete;
  BlobLock& operator=(const BlobLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace

HubClient::HubClient(HttpClient& http, HubEnv env, RetryPolicy retry)
    : http_(http), env_(std::move(env)), retry_(std::move(retry)) {}

std::string HubClient::redact(std::string s) const {
  if (env_.token.size() >= 4)
    for (size_t p; (p = s.find(env_.token)) != std::string::npos;)
      s.replace(p, env_.token.size(), "***");
  return s;
}

bool HubClient::fail(HubError* err, std::string message, bool retryable) const {
  err->message = redact(std::move(message));
  err->retryable = retryable;
  return false;
}

double HubClient::backoff(int attempt) const {
  return std::min(retry_.max_delay_s, retry_.base_delay_s * std::pow(2.0, attempt - 1));
}

void HubClient::wait(double seconds, const TransferHooks& hooks) const {
  if (retry_.sleep) return retry_.sleep(seconds);
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (hooks.should_abort && hooks.should_abort()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::string HubClient::resolve_url(const HubSource& src, const std::string& rev,
                                   const std::string& path) const {
  return env_.endpoint + "/" + (src.repo_type == RepoType::kDataset ? "datasets/" : "") +
         src.repo_id + "/resolve/" + url_encode(rev, false) + "/" + url_encode(path, true);
}

std::string HubClient::http_error(const HubSource* src, const HttpResponse& r,
                                  const std::string& what) const {
  std::string repo = src ? src->repo_id : std::string();
  std::string code = r.header("X-Error-Code");
  std::string server_msg = r.header("X-Error-Message");
  if (server_msg.empty()) server_msg = short_body(r.error_body);
  std::string tail = server_msg.empty() ? "" : " (server: " + server_msg + ")";
  const bool from_hub = url_origin(r.final_url) == url_origin(env_.endpoint) ||
                        url_origin(r.final_url) == url_origin(env_.datasets_server);
  if ((r.status == 401 || r.status == 403) && src && from_hub) {
    std::string why =
        code == "GatedRepo" || r.status == 403 ? "gated or private" : "gated, private or missing";
    std::string fix =
        env_.token.empty()
            ? "set HF_TOKEN to a token with access to " + repo
            : "the token in HF_TOKEN has no access to " + repo +
                  ": request access on the Hub, or set HF_TOKEN to a token that has it";
    return what + ": HTTP " + std::to_string(r.status) + ": " + repo_label(*src) + " is " + why +
           ": " + fix + tail;
  }
  if (r.status == 404) {
    std::string which = code == "RepoNotFound"       ? "no such repo"
                        : code == "RevisionNotFound" ? "no such revision"
                        : code == "EntryNotFound"    ? "no such file"
                                                     : "no such repo/revision/file";
    return what + ": HTTP 404: " + which +
           (src ? " (" + repo_label(*src) + "@" + src->revision + ")" : "") + " at " +
           shown_url(r.final_url) +
           tail;
  }
  return what + ": HTTP " + std::to_string(r.status) + " from " + shown_url(r.final_url) + tail;
}

bool HubClient::wait_to_retry(const HttpResponse& r, int attempt, const std::string& what,
                              const TransferHooks& hooks, HubError* err) const {
  std::string reason = r.error.empty() ? "HTTP " + std::to_string(r.status) : r.error;
  if (attempt >= retry_.max_attempts)
    return fail(err, what + ": giving up after " + std::to_string(attempt) + " attempts: " + reason,
                true);
  double delay = backoff(attempt);
  if (double ra = retry_after_s(r); ra >= 0) delay = std::min(ra, retry_.max_retry_after_s);
  if (hooks.log)
    hooks.log(redact(what + ": " + reason + "; retrying in " + std::to_string(delay) + " s"));
  wait(delay, hooks);
  return true;
}

bool HubClient::get_json(const HubSource& src, const std::string& url, const std::string& what,
                         const TransferHooks& hooks, std::string* body, HubError* err) {
  for (int attempt = 1;; ++attempt) {
    if (hooks.should_abort && hooks.should_abort()) return fail(err, what + ": cancelled");
    HttpRequest req;
    req.url = url;
    req.bearer_token = env_.token;
    req.headers["Accept"] = "application/json";
    req.should_abort = hooks.should_abort;
    HttpResponse r = http_get_string(http_, req, body);
    if (r.ok()) return true;
    if (r.aborted) return fail(err, what + ": cancelled");
    if (r.error.empty() && !retryable_status(r.status)) return fail(err, http_error(&src, r, what));
    if (!wait_to_retry(r, attempt, what, hooks, err)) return false;
  }
}

bool HubClient::resolve_revision(const HubSource& src, std::string* sha, HubError* err) {
  HubCacheRepo cache(env_.hub_cache, src.repo_type, src.repo_id);
  if (env_.offline) {
    *sha = cache.read_ref(src.revision);
    if (sha->empty())
      return fail(err, "HF_HUB_OFFLINE is set and " + repo_label(src) + "@" + src.revision +
                           " is not in the Hugging Face cache (" + cache.dir().string() +
                           "): download it once online, or unset HF_HUB_OFFLINE");
    return true;
  }
  if (is_commit_sha(src.revision)) {
    *sha = src.revision;
    return true;
  }
  RepoInfo info;
  if (!repo_info(src, &info, err)) return false;
  *sha = info.sha;
  return true;
}

bool HubClient::repo_info(const HubSource& src, RepoInfo* info, HubError* err) {
  *info = RepoInfo{};
  HubCacheRepo cache(env_.hub_cache, src.repo_type, src.repo_id);
  if (env_.offline) {
    if (!resolve_revision(src, &info->sha, err)) return false;
    info->from_cache = true;
    for (const auto& rel : cache.list_snapshot(info->sha)) {
      RepoFile f;
      f.path = rel;
      fs::path real = cache.cached_file(info->sha, rel);
      std::error_code ec;
      f.size = static_cast<int64_t>(fs::file_size(real, ec));
      std::string name = real.filename().string();
      if (name.size() == 64)
        f.lfs_sha256 = name;  // LFS blobs are named by their sha256
      else
        f.blob_id = name;
      info->files.push_back(f);
    }
    return true;
  }
  std::string url = env_.endpoint + "/api/" +
                    (src.repo_type == RepoType::kDataset ? "datasets/" : "models/") + src.repo_id +
                    "/revision/" + url_encode(src.revision, false) + "?blobs=true";
  std::string body;
  std::string what = "listing " + repo_label(src) + "@" + src.revision;
  if (!get_json(src, url, what, {}, &body, err)) return false;
  json j = json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("sha") || !j["sha"].is_string())
    return fail(
        err, what + ": the server's answer is not a repo listing (no \"sha\"); is HF_ENDPOINT (" +
                 env_.endpoint + ") a Hugging Face Hub?");
  info->sha = j["sha"].get<std::string>();
  if (!is_commit_sha(info->sha))
    return fail(err, what + ": the server returned an invalid commit sha");
  if (j.contains("siblings") && j["siblings"].is_array()) {
    for (const auto& s : j["siblings"]) {
      if (!s.is_object() || !s.contains("rfilename") || !s["rfilename"].is_string())
        return fail(err, what + ": malformed entry in \"siblings\"");
      RepoFile f;
      f.path = s["rfilename"].get<std::string>();
      std::string perr;
      if (!check_repo_path(f.path, &perr)) return fail(err, what + ": " + perr);
      if (s.contains("size") && s["size"].is_number_integer()) f.size = s["size"].get<int64_t>();
      if (s.contains("blobId") && s["blobId"].is_string())
        f.blob_id = s["blobId"].get<std::string>();
      if (s.contains("lfs") && s["lfs"].is_object()) {
        const json& l = s["lfs"];
        std::string sha = l.value("sha256", l.value("oid", std::string()));
        if (sha.size() != 64 || !std::all_of(sha.begin(), sha.end(), ::isxdigit))
          return fail(err, what + ": invalid LFS sha256 for '" + f.path + "'");
        f.lfs_sha256 = sha;
        if (l.contains("size") && l["size"].is_number_integer()) f.size = l["size"].get<int64_t>();
      }
      std::string e = f.etag();
      if (!e.empty() && (e.size() > 128 || !std::all_of(e.begin(), e.end(), ::isalnum)))
        return fail(err, what + ": invalid blob id for '" + f.path + "'");
      info->files.push_back(f);
    }
  }
  std::sort(info->files.begin(), info->files.end(),
            [](const RepoFile& a, const RepoFile& b) { return a.path < b.path; });
  return true;
}

bool HubClient::fetch_to(const HubSource* src, const HttpRequest& base, const fs::path& partial,
                         int64_t expected_size, const std::string& what, const TransferHooks& hooks,
                         uint64_t done_before, uint64_t total, HubError* err) {
  for (int attempt = 1;; ++attempt) {
    if (hooks.should_abort && hooks.should_abort())
      return fail(err, what + ": cancelled; the partial download stays in " + partial.string() +
                           " and resumes");
    std::error_code ec;
    uint64_t have = fs::exists(partial, ec) ? fs::file_size(partial, ec) : 0;
    if (expected_size >= 0 && have > static_cast<uint64_t>(expected_size)) {
      fs::remove(partial, ec);
      have = 0;
    }
    if (expected_size > 0 && have == static_cast<uint64_t>(expected_size)) return true;
    HttpRequest req = base;
    req.range_start = have;
    req.should_abort = hooks.should_abort;
    std::ofstream out;
    uint64_t written = 0;
    bool write_failed = false, bad_range = false;
    req.on_response = [&](int status, const HttpHeaders& h) {
      bool resume = false;
      if (status == 206 && have > 0) {
        auto it = h.find("Content-Range");  // "bytes START-END/TOTAL"
        std::string cr = it == h.end() ? "" : it->second;
        size_t sp = cr.find(' '), dash = cr.find('-');
        if (sp == std::string::npos || dash == std::string::npos ||
            cr.substr(sp + 1, dash - sp - 1) != std::to_string(have)) {
          bad_range = true;
          return false;
        }
        resume = true;
      }
      out.open(partial, std::ios::binary | (resume ? std::ios::app : std::ios::trunc));
      written = resume ? have : 0;
      return static_cast<bool>(out);
    };
    BodySink sink = [&](const char* d, size_t n) {
      out.write(d, static_cast<std::streamsize>(n));
      if (!out) {
        write_failed = true;
        return false;
      }
      written += n;
      if (hooks.on_bytes) hooks.on_bytes(done_before + written, total);
      return true;
    };
    HttpResponse r = http_.send(req, sink);
    out.close();
    if (r.ok()) {
      if (r.body_bytes == 0 && r.status == 200) {
        std::ofstream(partial, std::ios::binary | std::ios::trunc);  // an empty file
      }
      uint64_t got = fs::file_size(partial, ec);
      if (expected_size < 0 || got == static_cast<uint64_t>(expected_size)) return true;
      r.error = "got " + std::to_string(got) + " of " + std::to_string(expected_size) + " bytes";
    }
    if (write_failed)
      return fail(err, what + ": cannot write " + partial.string() + " (disk full?)");
    if (bad_range) {
      fs::remove(partial, ec);
      r.error = "the server answered the Range request with another range";
    } else if (r.aborted) {
      return fail(err, what + ": cancelled; the partial download stays in " + partial.string() +
                           " and resumes");
    }
    if (r.status == 416) {
      fs::remove(partial, ec);
      r.error = "the server rejected the resume offset (HTTP 416)";
    }
    // A CDN's 401/403 is most likely an expired signed URL: the Hub gives a fresh one on retry.
    const bool cdn_denied = src && (r.status == 401 || r.status == 403) &&
                            url_origin(r.final_url) != url_origin(env_.endpoint);
    if (cdn_denied && attempt >= 2) return fail(err, http_error(src, r, what));
    if (r.error.empty() && !retryable_status(r.status) && !cdn_denied)
      return fail(err, http_error(src, r, what));
    if (!wait_to_retry(r, attempt, what, hooks, err)) return false;
  }
}

bool HubClient::fetch_files(const HubSource& src, const RepoInfo& info,
                            const std::vector<std::string>& files, const TransferHooks& hooks,
                            std::vector<FetchedFile>* out, HubError* err) {
  out->clear();
  HubCacheRepo cache(env_.hub_cache, src.repo_type, src.repo_id);
  uint64_t total = 0, done = 0;
  for (const auto& p : files)
    if (const RepoFile* f = info.find(p); f && f->size > 0) total += static_cast<uint64_t>(f->size);
  for (const auto& path : files) {
    const RepoFile* f = info.find(path);
    if (!f)
      return fail(err, repo_label(src) + "@" + info.sha + ": no file '" + path + "' in the repo");
    std::string perr;
    if (!check_repo_path(path, &perr)) return fail(err, repo_label(src) + ": " + perr);
    const std::string what = "downloading " + repo_label(src) + "/" + path;
    FetchedFile ff;
    ff.path = path;
    std::error_code ec;

    // 1. Already in the snapshot (a user's earlier download, or ours).
    fs::path have = cache.cached_file(info.sha, path);
    if (!have.empty()) {
      std::string hex;
      if (!sha256_file(have, &hex, &perr, hooks.should_abort)) return fail(err, what + ": " + perr);
      if (f->lfs_sha256.empty() || hex == f->lfs_sha256) {
        ff.local = have;
        ff.size = fs::file_size(have, ec);
        ff.sha256 = hex;
        ff.reused = true;
        done += ff.size;
        if (hooks.on_bytes) hooks.on_bytes(done, total);
        if (hooks.log) hooks.log("reusing " + path + " from the Hugging Face cache");
        out->push_back(ff);
        continue;
      }
      if (hooks.log)
        hooks.log(path + ": the cached copy does not match its sha256; downloading again");
      fs::remove(have, ec);
    }
    if (env_.offline)
      return fail(err, "HF_HUB_OFFLINE is set and " + repo_label(src) + "@" + info.sha + "/" +
                           path + " is not in the Hugging Face cache (" + cache.dir().string() +
                           ")");

    // 2. Download into blobs/<etag>.incomplete (under the blob's lock), verify, publish.
    std::string etag = f->etag();
    std::string lock_name = etag.empty() ? "tmp-" + info.sha + "-" + url_encode(path, false) : etag;
    BlobLock lock(env_.hub_cache / ".locks" / repo_folder_name(src.repo_type, src.repo_id) /
                  (lock_name + ".lock"));
    fs::create_directories(cache.dir() / "blobs", ec);
    fs::path blob = etag.empty() ? fs::path() : cache.blob_path(etag);
    std::string hex;  // sha256 of the blob, once computed
    if (blob.empty() || !fs::is_regular_file(blob, ec)) {
      fs::path partial = cache.blob_path(lock_name);
      partial += ".incomplete";
      HttpRequest req;
      req.url = resolve_url(src, info.sha, path);
      req.bearer_token = env_.token;
      req.headers["Accept-Encoding"] = "identity";
      if (!fetch_to(&src, req, partial, f->size, what, hooks, done, total, err)) return false;
      if (!sha256_file(partial, &hex, &perr, hooks.should_abort))
        return fail(err, what + ": " + perr);
      std::string expected = f->lfs_sha256, got = hex, kind = "sha256";
      if (expected.empty() && f->blob_id.size() == 40) {  // a git file: check its blob id
        if (!git_blob_id_file(partial, &got, &perr)) return fail(err, what + ": " + perr);
        expected = f->blob_id;
        kind = "git blob id";
      }
      if (!expected.empty() && got != expected) {
        fs::remove(partial, ec);
        return fail(err,
                    what + ": checksum mismatch: the Hub lists " + kind + " " + expected +
                        ", the download has " + got +
                        "; the file was discarded and nothing was published (a proxy or mirror " +
                        "serving wrong content? check HF_ENDPOINT)");
      }
      if (etag.empty()) {
        etag = hex;
        blob = cache.blob_path(etag);
      }
      fs::rename(partial, blob, ec);
      if (ec)
        return fail(err,
                    what + ": cannot move the download to " + blob.string() + ": " + ec.message());
    }
    if (!cache.link_snapshot(info.sha, path, etag, &perr)) return fail(err, what + ": " + perr);
    ff.local = cache.cached_file(info.sha, path);
    if (ff.local.empty())
      return fail(err, what + ": the snapshot entry does not resolve to its blob");
    ff.size = fs::file_size(ff.local, ec);
    if (hex.empty()) {  // a blob another revision had already fetched
      if (!sha256_file(ff.local, &hex, &perr, hooks.should_abort))
        return fail(err, what + ": " + perr);
      if (!f->lfs_sha256.empty() && hex != f->lfs_sha256) {
        fs::remove(blob, ec);
        return fail(err,
                    what + ": the cached blob " + blob.string() +
                        " does not match its sha256 and was removed; run again to download it");
      }
    }
    ff.sha256 = hex;
    done += ff.size;
    if (hooks.on_bytes) hooks.on_bytes(done, total);
    out->push_back(ff);
  }
  if (!env_.offline) {
    std::string rerr;
    if (!cache.write_ref(src.revision, info.sha, &rerr) && hooks.log) hooks.log("warning: " + rerr);
  }
  return true;
}

bool HubClient::fetch_url(const std::string& url, const fs::path& dest, const TransferHooks& hooks,
                          FetchedFile* out, HubError* err) {
  if (env_.offline) return fail(err, "HF_HUB_OFFLINE is set: cannot download " + url);
  fs::path partial = dest;
  partial += ".incomplete";
  std::error_code ec;
  fs::create_directories(dest.parent_path(), ec);
  HttpRequest req;
  req.url = url;  // no token: an arbitrary URL is not the Hub
  req.headers["Accept-Encoding"] = "identity";
  if (!fetch_to(nullptr, req, partial, -1, "downloading " + url, hooks, 0, 0, err)) return false;
  fs::rename(partial, dest, ec);
  if (ec) return fail(err, "cannot move the download to " + dest.string() + ": " + ec.message());
  std::string perr;
  out->path = dest.filename().string();
  out->local = dest;
  out->size = fs::file_size(dest, ec);
  if (!sha256_file(dest, &out->sha256, &perr, hooks.should_abort)) return fail(err, perr);
  return true;
}

bool HubClient::fetch_rows(const HubSource& src, const std::string& config,
                           const std::string& split, const fs::path& dest,
                           const TransferHooks& hooks, uint64_t* n_rows, HubError* err) {
  if (env_.offline)
    return fail(
        err,
        "HF_HUB_OFFLINE is set: the rows of " + repo_label(src) + " (split '" + split +
            "') come from the datasets server; unset HF_HUB_OFFLINE or download raw files instead");
  fs::path tmp = dest;
  tmp += ".incomplete";
  std::error_code ec;
  fs::create_directories(dest.parent_path(), ec);
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) return fail(err, "cannot write " + tmp.string());
  const uint64_t k_page = 100;
  uint64_t offset = 0, total = 0;
  *n_rows = 0;
  const std::string what_base =
      "rows of " + repo_label(src) + " config '" + config + "' split '" + split + "'";
  while (true) {
    std::string url = env_.datasets_server + "/rows?dataset=" + url_encode(src.repo_id, false) +
                      "&config=" + url_encode(config, false) +
                      "&split=" + url_encode(split, false) + "&offset=" + std::to_string(offset) +
                      "&length=" + std::to_string(k_page);
    std::string body;
    if (!get_json(src, url, what_base + " at offset " + std::to_string(offset), hooks, &body, err))
      return false;
    json j = json::parse(body, nullptr, false);
    if (!j.is_object() || !j.contains("rows") || !j["rows"].is_array())
      return fail(
          err,
          what_base + ": the datasets server's answer has no \"rows\" (check HF_DATASETS_SERVER)");
    if (j.contains("num_rows_total") && j["num_rows_total"].is_number_unsigned())
      total = j["num_rows_total"].get<uint64_t>();
    const json& rows = j["rows"];
    for (const auto& r : rows) {
      if (!r.is_object() || !r.contains("row"))
        return fail(err, what_base + ": a row without \"row\" at offset " + std::to_string(offset));
      out << r["row"].dump() << '\n';
    }
    if (!out) return fail(err, "cannot write " + tmp.string() + " (disk full?)");
    offset += rows.size();
    *n_rows = offset;
    if (hooks.on_bytes) hooks.on_bytes(offset, total);
    if (rows.empty() || offset >= total) break;
  }
  out.close();
  fs::rename(tmp, dest, ec);
  if (ec) return fail(err, "cannot write " + dest.string() + ": " + ec.message());
  return true;
}

}  // namespace qsweep::model
