#include "stages/download_stage.h"

#include <algorithm>
#include <fstream>
#include <stdexcept>

#include "cache/hash.h"

namespace qsweep {

namespace fs = std::filesystem;
using model::HubSource;
using nlohmann::json;

namespace {

std::vector<std::string> string_list(const json& p, const char* name) {
  std::vector<std::string> r;
  if (p.contains(name) && p[name].is_array())
    for (const auto& v : p[name]) r.push_back(v.get<std::string>());
  return r;
}

HubSource parse_or_throw(const json& params) {
  HubSource src;
  std::string err;
  if (!model::parse_source(params.value("source", std::string()), &src, &err))
    throw std::runtime_error("params.source: " + err);
  return src;
}

// A full 40-hex commit resolves without the network.
bool is_commit_sha_like(const std::string& r) {
  return r.size() == 40 && r.find_first_not_of("0123456789abcdef") == std::string::npos;
}

[[noreturn]] void throw_hub(const model::HubError& e) {
  if (e.retryable) throw RetryableError(e.message);
  throw std::runtime_error(e.message);
}

// The regular files of a local source: (relative path, file), sorted; a file
// source gives itself under its base name. Symlinks to files are followed
// (their content is copied); directory symlinks are not entered.
std::vector<std::pair<std::string, fs::path>> list_local(const fs::path& root,
                                                         const std::vector<std::string>& patterns) {
  std::vector<std::pair<std::string, fs::path>> all;
  std::error_code ec;
  if (fs::is_regular_file(root, ec)) {
    all.push_back({root.filename().string(), root});
  } else if (fs::is_directory(root, ec)) {
    for (auto it = fs::recursive_directory_iterator(root, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_regular_file(ec))
        all.push_back({it->path().lexically_relative(root).generic_string(), it->path()});
    }
    if (ec) throw std::runtime_error("cannot list " + root.string() + ": " + ec.message());
  } else {
    throw std::runtime_error("params.source: no such file or directory: " + root.string());
  }
  std::sort(all.begin(), all.end());
  if (patterns.empty()) return all;
  std::vector<std::string> names;
  for (const auto& [rel, full] : all) names.push_back(rel);
  std::vector<std::string> picked;
  std::string err;
  if (!model::select_by_patterns(names, patterns, &picked, &err))
    throw std::runtime_error("params." + err + " (" + root.string() + ")");
  std::vector<std::pair<std::string, fs::path>> r;
  for (const auto& [rel, full] : all)
    if (std::binary_search(picked.begin(), picked.end(), rel)) r.push_back({rel, full});
  return r;
}

std::string local_digest(const std::vector<std::pair<std::string, fs::path>>& files) {
  cache::KeyHasher h;
  for (const auto& [rel, full] : files) {
    cache::Digest128 d;
    std::string err;
    if (!cache::hash_file(full, &d, &err)) throw std::runtime_error("params.source: " + err);
    h.field(rel, d.hex());
  }
  return "local:" + h.finish().hex();
}

// The last path segment of a URL, when it is a safe file name; else "download".
std::string url_file_name(const std::string& url) {
  std::string path = url.substr(0, url.find_first_of("?#"));
  size_t scheme = path.find("://");
  size_t first_slash = path.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (first_slash == std::string::npos) return "download";
  std::string name = path.substr(path.rfind('/') + 1);
  std::string err;
  return !name.empty() && model::check_repo_path(name, &err) ? name : "download";
}

bool url_has_credentials(const std::string& url) {
  size_t start = url.find("://");
  if (start == std::string::npos) return false;
  size_t end = url.find_first_of("/?#", start + 3);
  return url.substr(start + 3, end == std::string::npos ? std::string::npos : end - start - 3)
             .find('@') != std::string::npos;
}

json file_entry(const std::string& path, uint64_t size, const std::string& sha256) {
  return {{"path", path}, {"size", size}, {"sha256", sha256}};
}

}  // namespace

DownloadStage::DownloadStage(std::shared_ptr<model::HttpClient> http, EnvReader env,
                             model::RetryPolicy retry)
    : http_(http ? std::move(http)
                 : std::shared_ptr<model::HttpClient>(model::make_curl_http_client())),
      env_(std::move(env)),
      retry_(std::move(retry)) {}

std::string DownloadStage::description() const {
  return "downloads a model checkpoint, dataset or file from the Hugging Face Hub (hf://), a URL "
         "or a local "
         "path into a self-contained artifact; the Hub commit sha is part of the key";
}

std::vector<ParamSpec> DownloadStage::params() const {
  return {
      {"source", ParamType::kString, true, nullptr,
       "hf://ORG/NAME[@REV], hf://datasets/ORG/NAME[@REV], https://URL, or an absolute local path "
       "/ file://"},
      {"files", ParamType::kStringList, false, json::array(),
       "files to take (globs: * ? **); [] = what the kind needs (model: configs, tokenizer, "
       "safetensors)"},
      {"kind", ParamType::kString, false, "model",
       "model | dataset | file: chooses the default file selection ([] files)"},
      {"config", ParamType::kString, false, "",
       "dataset config for rows through the datasets server (with split; empty = \"default\")"},
      {"split", ParamType::kString, false, "",
       "dataset split: fetch its rows through the datasets server as SPLIT.jsonl; empty = raw "
       "files"},
      {"offline", ParamType::kBool, false, false,
       "use only the Hugging Face cache (like HF_HUB_OFFLINE=1)"},
  };
}

std::string DownloadStage::check_params(const json& p) const {
  HubSource src;
  std::string err;
  const std::string source = p.value("source", std::string());
  if (!model::parse_source(source, &src, &err)) return "params.source: " + err;
  if (src.kind == HubSource::Kind::kUrl && url_has_credentials(source))
    return "params.source: the URL carries credentials; remove them (a Hub token goes in HF_TOKEN, "
           "which never "
           "enters the cache)";
  const std::string kind = p.value("kind", std::string("model"));
  if (kind != "model" && kind != "dataset" && kind != "file")
    return "params.kind: '" + kind + "' is not one of model, dataset, file";
  const std::string split = p.value("split", std::string());
  const std::string config = p.value("config", std::string());
  if (!split.empty() || !config.empty()) {
    if (split.empty()) return "params.config: set params.split too (rows come per split)";
    if (src.kind != HubSource::Kind::kHub || src.repo_type != model::RepoType::kDataset)
      return "params.split: rows of a split need a dataset source hf://datasets/ORG/NAME";
    if (!string_list(p, "files").empty())
      return "params.files: not used with params.split (rows are fetched)";
    if (src.revision != "main")
      return "params.split: the datasets server serves the rows of the main branch only; drop '@" +
             src.revision + "' or download raw files";
  }
  if (src.kind == HubSource::Kind::kHub && src.repo_type == model::RepoType::kDataset &&
      kind == "model")
    return "params.kind: the source is a dataset repo; set kind: dataset";
  for (const auto& f : string_list(p, "files"))
    if (f.empty()) return "params.files: an empty pattern";
  return {};
}

model::HubEnv DownloadStage::env_for(const json& params) const {
  model::HubEnv env = env_();
  if (params.value("offline", false)) env.offline = true;
  return env;
}

std::string DownloadStage::resolve(const json& params) const {
  HubSource src = parse_or_throw(params);
  if (src.kind == HubSource::Kind::kUrl) return "url";
  if (src.kind == HubSource::Kind::kLocal)
    return local_digest(list_local(src.local_path, string_list(params, "files")));
  model::HubEnv env = env_for(params);
  const std::string memo = params.value("source", std::string()) + (env.offline ? "\n1" : "\n0");
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (auto it = resolved_.find(memo); it != resolved_.end()) return it->second;
  }
  model::RetryPolicy plan_retry =
      retry_;  // planning waits less for an unreachable Hub than a download does
  plan_retry.max_attempts = std::min(plan_retry.max_attempts, 3);
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!unreachable_.empty() && !env.offline && !is_commit_sha_like(src.revision))
      throw std::runtime_error(unreachable_ + " (not retried: the Hub was unreachable for an earlier node)");
  }
  model::HubClient client(*http_, env, plan_retry);
  std::string sha;
  model::HubError err;
  if (!client.resolve_revision(src, &sha, &err)) {
    if (err.retryable) {
      std::lock_guard<std::mutex> lk(mu_);
      unreachable_ = err.message;
    }
    std::string cached =
        model::HubCacheRepo(env.hub_cache, src.repo_type, src.repo_id).read_ref(src.revision);
    if (err.retryable && !cached.empty())
      err.message += "; the Hugging Face cache has " + src.revision + " = " + cached +
                     " from an earlier download: set HF_HUB_OFFLINE=1 (or offline: true) to use it";
    throw_hub(err);
  }
  std::lock_guard<std::mutex> lk(mu_);
  return resolved_.emplace(memo, sha).first->second;
}

std::vector<cache::KeyField> DownloadStage::fingerprint(const json& params) const {
  return {{"resolved", resolve(params)}};
}

void DownloadStage::run_hub(StageContext& ctx, const HubSource& src, const std::string& sha,
                            json* manifest) const {
  const json& p = ctx.params;
  model::HubEnv env = env_for(p);
  model::HubClient client(*http_, env, retry_);
  model::TransferHooks hooks;
  ProgressSink* progress = ctx.progress;
  hooks.on_bytes = [progress](uint64_t done, uint64_t total) {
    if (progress) progress->update(done, total, "bytes");
  };
  hooks.should_abort = [&ctx] { return ctx.cancelled(); };
  hooks.log = [progress](const std::string& line) {
    if (progress) progress->log(line);
  };
  model::HubError err;
  (*manifest)["revision"] = src.revision;
  const std::string split = p.value("split", std::string());
  if (!split.empty()) {
    std::string config = p.value("config", std::string());
    if (config.empty()) config = "default";
    hooks.on_bytes = [progress](uint64_t done, uint64_t total) {
      if (progress) progress->update(done, total, "rows");
    };
    const std::string name = split + ".jsonl";
    std::string perr;
    if (!model::check_repo_path(name, &perr)) throw std::runtime_error("params.split: " + perr);
    uint64_t n = 0;
    if (!client.fetch_rows(src, config, split, ctx.output_dir / name, hooks, &n, &err))
      throw_hub(err);
    std::string hex;
    if (!model::sha256_file(ctx.output_dir / name, &hex, &perr)) throw std::runtime_error(perr);
    std::error_code ec;
    (*manifest)["rows"] = {{"config", config}, {"split", split}, {"count", n}};
    (*manifest)["files"].push_back(file_entry(name, fs::file_size(ctx.output_dir / name, ec), hex));
    return;
  }
  HubSource pinned = src;
  pinned.revision = sha;  // list and fetch exactly the commit that is in the key
  model::RepoInfo info;
  if (!client.repo_info(pinned, &info, &err)) throw_hub(err);
  std::vector<std::string> files;
  const auto patterns = string_list(p, "files");
  const std::string kind = p.value("kind", std::string("model"));
  std::string serr;
  if (!patterns.empty()) {
    if (!model::select_by_patterns(info.paths(), patterns, &files, &serr))
      throw std::runtime_error("params." + serr + " (" + src.repo_id + "@" + sha + ")");
  } else if (kind == "model") {
    files = model::select_model_files(info.paths());
  } else if (kind == "dataset") {
    files = model::select_dataset_files(info.paths());
  } else {
    files = info.paths();
  }
  if (files.empty())
    throw std::runtime_error(src.repo_id + "@" + sha + ": no " + kind +
                             " files in the repo listing; name the files to take in params.files");
  std::vector<model::FetchedFile> fetched;
  if (!client.fetch_files(pinned, info, files, hooks, &fetched, &err)) throw_hub(err);
  if (!env.offline) {
    std::string rerr;
    model::HubCacheRepo(env.hub_cache, src.repo_type, src.repo_id)
        .write_ref(src.revision, sha, &rerr);
  }
  for (const auto& f : fetched) {
    std::string lerr;
    if (!model::link_or_copy(f.local, ctx.output_dir / f.path, &lerr))
      throw std::runtime_error(lerr);
    (*manifest)["files"].push_back(file_entry(f.path, f.size, f.sha256));
  }
}

void DownloadStage::run(StageContext& ctx) const {
  const json& p = ctx.params;
  HubSource src = parse_or_throw(p);
  json manifest = {{"format", 1},
                   {"source", p.value("source", std::string())},
                   {"kind", p.value("kind", std::string("model"))},
                   {"files", json::array()}};
  if (src.kind == HubSource::Kind::kHub) {
    std::string sha = resolve(p);
    manifest["resolved"] = sha;
    run_hub(ctx, src, sha, &manifest);
  } else if (src.kind == HubSource::Kind::kUrl) {
    manifest["resolved"] = "url";
    model::HubClient client(*http_, env_for(p), retry_);
    model::TransferHooks hooks;
    ProgressSink* progress = ctx.progress;
    hooks.on_bytes = [progress](uint64_t done, uint64_t total) {
      if (progress) progress->update(done, total, "bytes");
    };
    hooks.should_abort = [&ctx] { return ctx.cancelled(); };
    model::FetchedFile f;
    model::HubError err;
    if (!client.fetch_url(src.url, ctx.output_dir / url_file_name(src.url), hooks, &f, &err))
      throw_hub(err);
    manifest["files"].push_back(file_entry(f.path, f.size, f.sha256));
  } else {
    auto files = list_local(src.local_path, string_list(p, "files"));
    manifest["resolved"] = local_digest(files);
    uint64_t total = 0, done = 0;
    std::error_code ec;
    for (const auto& [rel, full] : files) total += fs::file_size(full, ec);
    for (const auto& [rel, full] : files) {
      if (ctx.cancelled()) throw std::runtime_error("cancelled");
      fs::path dst = ctx.output_dir / rel;
      fs::create_directories(dst.parent_path(), ec);
      fs::copy_file(full, dst, fs::copy_options::overwrite_existing,
                    ec);  // a copy: the user may edit the original
      if (ec) throw std::runtime_error("cannot copy " + full.string() + ": " + ec.message());
      std::string hex, err;
      if (!model::sha256_file(dst, &hex, &err)) throw std::runtime_error(err);
      uint64_t size = fs::file_size(dst, ec);
      done += size;
      if (ctx.progress) ctx.progress->update(done, total, "bytes");
      manifest["files"].push_back(file_entry(rel, size, hex));
    }
  }
  for (const auto& f : manifest["files"])
    if (f["path"] == "download.json")
      throw std::runtime_error(
          "the source has a file named download.json, which is the name of the stage's "
          "manifest; leave it out with params.files");
  std::sort(manifest["files"].begin(), manifest["files"].end(),
            [](const json& a, const json& b) { return a["path"] < b["path"]; });
  {
    std::ofstream out(ctx.output_dir / "download.json", std::ios::binary | std::ios::trunc);
    out << manifest.dump(2) << '\n';
    if (!out)
      throw std::runtime_error("cannot write " + (ctx.output_dir / "download.json").string());
  }
  uint64_t bytes = 0;
  for (const auto& f : manifest["files"]) bytes += f["size"].get<uint64_t>();
  ctx.outputs = {{"source", manifest["source"]},
                 {"resolved", manifest["resolved"]},
                 {"files", manifest["files"].size()},
                 {"bytes", bytes}};
}

}  // namespace qsweep
