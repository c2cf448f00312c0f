#pragma once
// The one interface through which pipeline/ knows stages. A stage kind
// declares what it is (kind, version, parameters with types and defaults,
// resources, retryable errors) and how it runs (run() with a StageContext).
// The ML stages of later issues (download, calibrate, quantize, infer, score,
// judge, tabulate) only implement this interface; stages/ registers them.

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cache/hash.h"

namespace qsweep {

/// JSON-ish type of a stage parameter; values from YAML are converted to it.
enum class ParamType { kString, kInt, kNumber, kBool, kStringList, kStringMap, kAny };

const char* param_type_name(ParamType t);

struct ParamSpec {
  std::string name;
  ParamType type = ParamType::kString;
  bool required = false;
  nlohmann::json default_value;  ///< used when absent; part of the key (a changed default invalidates)
  std::string doc;               ///< one line, shown by `qsweep schema` and in docs
};

/// What one running instance of a stage holds while it runs. Units: threads =
/// CPU threads it will keep busy, memory in bytes, gpu = GPU slots (devices),
/// api = concurrent remote API calls.
struct Resources {
  int threads = 1;
  uint64_t memory = 0;
  int gpu = 0;
  int api = 0;
  friend bool operator==(const Resources&, const Resources&) = default;
  /// Every hardware thread (compute-bound stages: calibrate, quantize).
  static Resources all_threads();
};

/// Thrown by a stage body for an error worth retrying (HTTP 429/5xx, a
/// dropped connection); the runner retries with exponential backoff up to the
/// node's `retries` count. Any other exception fails the node at once.
class RetryableError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A resolved input of a node: one upstream artifact or local file, or a list
/// of them (a wildcard reference).
struct InputArtifact {
  std::string node;             ///< upstream node id, or "file:<path>"
  std::string key;              ///< artifact key (hex) or file digest (hex)
  std::filesystem::path path;   ///< the artifact's out/ directory, or the file itself
  /// The upstream node's matrix axes (axis, value) in matrix order, e.g.
  /// {model: stories260K, recipe: rtn-w4, task: arc_challenge}; empty for
  /// files and unmatrixed nodes. Enters the consumer's key only when its
  /// stage says keys_input_identity() (tables label rows by them).
  std::vector<std::pair<std::string, std::string>> axes{};
};
struct ResolvedInput {
  std::string name;
  bool is_list = false;                ///< declared as a list (may hold 0..n items)
  std::vector<InputArtifact> items;    ///< exactly one unless is_list
};

/// Progress a stage reports; the runner shows it live (terminal) or as lines.
class ProgressSink {
 public:
  virtual ~ProgressSink() = default;
  /// done of total units (total 0 = unknown), unit e.g. "requests".
  virtual void update(uint64_t done, uint64_t total, const std::string& unit) = 0;
  /// A line for the log (and the journal of failures).
  virtual void log(const std::string& line) = 0;
};

struct StageContext {
  std::string node_id;                          ///< e.g. "quantize[stories260K,gptq-w4g32]"
  std::string key;                              ///< this node's key (hex)
  std::filesystem::path output_dir;             ///< write every result file here (exists, empty)
  /// A directory that survives failed and killed attempts of this key (for a
  /// stage's internal checkpoints, e.g. finished decoder layers); created on
  /// first use by the stage, removed by the runner after a successful
  /// publish. Empty: no resume support (e.g. tests).
  std::filesystem::path scratch_dir;
  /// A directory shared by every node of this stage kind, kept across runs
  /// (<cache>/journal/<kind>/): request journals that identical requests of
  /// other nodes and later runs reuse. Empty: none (e.g. tests).
  std::filesystem::path journal_dir;
  std::filesystem::path experiment_dir;         ///< directory of the experiment file
  nlohmann::json params;                        ///< resolved params (defaults filled in)
  std::map<std::string, ResolvedInput> inputs;  ///< by input name
  Resources resources;                          ///< what the runner granted
  /// The GPU slots granted (resources.gpu of them): indices among the
  /// devices this process sees (cudaSetDevice(id)); a child process gets
  /// CUDA_VISIBLE_DEVICES = cuda_visible_devices(gpu_ids) (pipeline/resources.h).
  std::vector<int> gpu_ids;
  ProgressSink* progress = nullptr;             ///< never null while run() runs
  const std::atomic<int>* cancel = nullptr;     ///< 0 = run, 1 = stop soon (checkpoint), 2 = abort now
  nlohmann::json outputs = nlohmann::json::object();  ///< small summary the stage may fill (goes into the manifest)

  bool cancelled() const { return cancel && cancel->load() != 0; }
};

class Stage {
 public:
  virtual ~Stage() = default;
  virtual std::string kind() const = 0;
  /// Bump when the stage's output for the same inputs and params changes.
  virtual int64_t version() const = 0;
  virtual std::string description() const = 0;
  virtual std::vector<ParamSpec> params() const = 0;
  virtual Resources default_resources() const { return {}; }
  /// Names of runtime placeholders (beyond inputs.*, params.*, output_dir)
  /// that this stage accepts in its string params; checked at expansion.
  virtual std::vector<std::string> runtime_placeholders() const { return {}; }
  /// Extra key fields beyond kind/version/params/inputs, e.g. an engine or
  /// backend fingerprint. Must be deterministic.
  virtual std::vector<cache::KeyField> fingerprint(const nlohmann::json& params) const {
    return {};
  }
  /// True when the stage's output depends on which upstream nodes its inputs
  /// come from (node ids and matrix axes, e.g. the row labels of a table), not
  /// only on their content: their identity then enters the key.
  virtual bool keys_input_identity() const { return false; }
  /// Fills the params whose default depends on the node's resources (called
  /// after the ParamSpec defaults, before check_params). What it sets is
  /// part of the node's key, so it depends on the YAML only, never on the
  /// machine: e.g. `device` is cuda when the node holds a GPU slot.
  virtual void resolve_defaults(nlohmann::json& params, const Resources& resources) const {}
  /// Validates resolved params beyond types (ranges, combinations); returns an
  /// error message naming the param, or empty.
  virtual std::string check_params(const nlohmann::json& params) const { return {}; }
  /// Validates a local-file input (`file:PATH`) when the experiment is
  /// expanded, e.g. parses an infer node's task file; returns an error
  /// message (naming the file, line and field) or empty. Called only for
  /// files that exist.
  virtual std::string check_file_input(const std::string& input,
                                       const std::filesystem::path& path) const {
    return {};
  }
  /// Runs the stage; throws on failure (RetryableError for retryable ones).
  virtual void run(StageContext& ctx) const = 0;
};

/// Kind -> stage. stages/registry.cpp fills the default one.
class StageRegistry {
 public:
  void add(std::unique_ptr<Stage> s);
  const Stage* find(const std::string& kind) const;
  std::vector<std::string> kinds() const;

 private:
  std::map<std::string, std::unique_ptr<Stage>> stages_;
};

}  // namespace qsweep
