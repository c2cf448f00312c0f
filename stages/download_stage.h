#pragma once
// The `download` stage: a checkpoint, dataset or file from the Hugging Face
// Hub, a URL or a local path, as a self-contained artifact (real files).
//
//   - name: fetch
//     kind: download
//     matrix: {model: "*"}
//     params: {source: "${model.source}", files: ["stories260K/*"]}
//
// Key: besides the params, the fingerprint field `resolved` holds what the
// source resolved to at plan time: the Hub commit sha (so `@main` moving is a
// new artifact), "local:<digest>" of the selected local files, or "url" for a
// URL (its content is not known before it is fetched). Resolution is one HTTP
// request per source and process, memoised so that run() fetches exactly the
// commit that is in the key; with HF_HUB_OFFLINE=1 (or offline: true) it reads
// refs/ of the Hugging Face cache.
//
// run() fills the Hugging Face cache (HF_HOME / HF_HUB_CACHE, reusing what is
// there), then hard-links or copies the files into the output folder, keeping
// their repo paths, and writes download.json:
//
//   download.json, format 1:
//   { "format": 1, "source": STRING, "kind": "model"|"dataset"|"file",
//     "resolved": SHA | "local:<digest>" | "url",
//     "revision": STRING (Hub only), "rows": {"config", "split", "count"} (rows only),
//     "files": [ {"path": REL, "size": INT, "sha256": HEX}, ... ]  (sorted by path) }
//
// The token (HF_TOKEN) is read from the environment only; it never enters
// params, download.json, logs or error messages.

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "model/hub/hub_client.h"
#include "pipeline/stage.h"

namespace qsweep {

class DownloadStage : public Stage {
 public:
  using EnvReader = std::function<model::HubEnv()>;

  /// http: the HTTP client (null = libcurl); env: reads the Hub settings (default:
  /// the process environment); retry: backoff policy (tests shorten it).
  explicit DownloadStage(std::shared_ptr<model::HttpClient> http = nullptr,
                         EnvReader env = model::HubEnv::from_environment,
                         model::RetryPolicy retry = {});

  std::string kind() const override { return "download"; }
  int64_t version() const override { return 1; }
  std::string description() const override;
  std::vector<ParamSpec> params() const override;
  std::vector<cache::KeyField> fingerprint(const nlohmann::json& params) const override;
  std::string check_params(const nlohmann::json& params) const override;
  void run(StageContext& ctx) const override;

 private:
  model::HubEnv env_for(const nlohmann::json& params) const;
  /// The `resolved` value for params (memoised per source); throws on failure.
  std::string resolve(const nlohmann::json& params) const;
  void run_hub(StageContext& ctx, const model::HubSource& src, const std::string& sha,
               nlohmann::json* manifest) const;

  std::shared_ptr<model::HttpClient> http_;
  EnvReader env_;
  model::RetryPolicy retry_;
  mutable std::mutex mu_;
  mutable std::map<std::string, std::string> resolved_;  ///< source + offline -> resolved value
  /// Set after a resolution gave up on an unreachable Hub (retries spent):
  /// later resolutions in this process fail at once with it instead of
  /// retrying per node (an offline `qsweep plan` of a 9-model sweep).
  mutable std::string unreachable_;
};

}  // namespace qsweep
