#pragma once
// What a `download` source names, the Hub settings from the environment, and
// the checks applied to every file name that comes from a remote listing.
//
// Source grammar:
//   hf://ORG/NAME[@REV]            a model repo (REV: branch, tag or commit; default "main")
//   hf://datasets/ORG/NAME[@REV]   a dataset repo
//   hf://models/ORG/NAME[@REV]     a model repo, explicitly
//   https://... | http://...       one file by URL
//   file:///abs/path | /abs/path   a local file or directory

#include <filesystem>
#include <string>
#include <vector>

namespace qsweep::model {

enum class RepoType { kModel, kDataset };

/// "model" / "dataset" (as in huggingface_hub's repo_type).
const char* repo_type_name(RepoType t);

struct HubSource {
  enum class Kind { kHub, kUrl, kLocal };
  Kind kind = Kind::kHub;
  RepoType repo_type = RepoType::kModel;
  std::string repo_id;               ///< "org/name" (kHub)
  std::string revision = "main";     ///< branch, tag or commit sha (kHub)
  std::string url;                   ///< kUrl
  std::filesystem::path local_path;  ///< kLocal, absolute
};

/// Parses a source string; false + *err (saying what form is expected) when malformed.
bool parse_source(const std::string& text, HubSource* out, std::string* err);

/// Settings read from the environment, like huggingface_hub: HF_ENDPOINT,
/// HF_TOKEN (else HUGGING_FACE_HUB_TOKEN, else the file HF_TOKEN_PATH or $HF_HOME/token), HF_HOME
/// (default $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface), HF_HUB_CACHE (default
/// $HF_HOME/hub), HF_HUB_OFFLINE (1/ON/YES/TRUE), HF_DATASETS_SERVER.
struct HubEnv {
  std::string endpoint = "https://huggingface.co";                         ///< no trailing '/'
  std::string datasets_server = "https://datasets-server.huggingface.co";  ///< no trailing '/'
  std::filesystem::path hub_cache;  ///< the "hub" folder of the HF cache
  bool offline = false;
  std::string token;  ///< secret: never logged, never in errors, params or manifests

  static HubEnv from_environment();
};

/// True when s is a full 40-hex-digit commit sha.
bool is_commit_sha(const std::string& s);

/// Checks a repo-relative file name from a listing: non-empty, '/'-separated,
/// relative, no '.', '..' or empty component, no backslash, NUL or control
/// character. False + *err naming the file when it is unsafe.
bool check_repo_path(const std::string& name, std::string* err);

/// fnmatch-style glob ('*' and '?' do not cross '/', '**' does); a pattern
/// without '/' also matches the base name of a nested file.
bool glob_match(const std::string& pattern, const std::string& path);

/// The files a model needs from a repo listing: configs, tokenizer files and
/// safetensors weights (with their index); only when there are no safetensors,
/// the other weight formats (*.bin, *.pt, *.pth, *.h5, *.msgpack, *.gguf are
/// never taken when safetensors exist). Sorted.
std::vector<std::string> select_model_files(const std::vector<std::string>& listing);

/// The raw data files of a dataset repo (*.jsonl, *.json, *.csv, *.parquet, *.txt,
/// *.jsonl.gz, *.json.gz, *.csv.gz). Sorted.
std::vector<std::string> select_dataset_files(const std::vector<std::string>& listing);

/// Files of the listing matching any pattern; false + *err naming a pattern
/// that matches nothing.
bool select_by_patterns(const std::vector<std::string>& listing,
                        const std::vector<std::string>& patterns, std::vector<std::string>* out,
                        std::string* err);

}  // namespace qsweep::model
