#pragma once
// An experiment file, loaded and validated: the top-level YAML merged with its
// imports, vars resolved, named collections (models, datasets, recipes, tasks,
// backends) as JSON, and stage definitions still as YAML nodes (with their
// file and line) for matrix expansion.

#include <deque>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "pipeline/diagnostic.h"
#include "pipeline/stage.h"

namespace qsweep {

inline constexpr int k_experiment_format_version = 1;

/// Makes dst refer to src's node. YAML::Node::operator= assigns the *value*
/// into the node dst already refers to (and throws when src is undefined).
inline void rebind(YAML::Node& dst, const YAML::Node& src) {
  dst.~Node();
  new (&dst) YAML::Node(src);
}

/// The collections that matrix axes can range over: axis "model" ranges over
/// "models", and so on.
inline const std::vector<std::string>& collection_names() {
  static const std::vector<std::string> names = {"models", "datasets", "recipes", "tasks",
                                                 "backends"};
  return names;
}

struct Entry {
  std::string name;
  nlohmann::json value;  ///< an object; strings interpolated with vars/env
  SourceLoc loc;
};

struct StageDef {
  std::string name;
  std::string kind;
  std::string description;
  const std::string* file = nullptr;  ///< the file that defined it (stable: Experiment::files)
  SourceLoc loc;
  YAML::Node matrix, inputs, params, overrides, resources, slurm;  ///< undefined when absent
  int retries = 0;
};

/// Global limits; unset fields take machine defaults (pipeline/resources.h).
struct Limits {
  std::optional<int> threads, gpu, api;
  std::optional<uint64_t> memory;
};

struct Experiment {
  std::filesystem::path file;  ///< the top-level file, as given
  std::filesystem::path dir;   ///< its directory, absolute
  std::string name;
  std::string description;
  std::optional<std::filesystem::path> cache_dir;  ///< `cache:`, made absolute against dir
  std::deque<std::string> files;                   ///< every file loaded (stable addresses)
  std::map<std::string, nlohmann::json> vars;
  std::map<std::string, std::vector<Entry>> collections;  ///< "models" -> entries, in file order
  Limits limits;
  std::vector<StageDef> stages;

  const Entry* find_entry(const std::string& collection, const std::string& name) const;
};

struct LoadOptions {
  /// `--set vars.NAME=VALUE` from the command line; they win over the files.
  std::map<std::string, std::string> var_overrides;
};

/// Loads, merges imports, validates. False with every problem found in *diags.
bool load_experiment(const std::filesystem::path& file, const StageRegistry& registry,
                     const LoadOptions& opts, Experiment* out, Diagnostics* diags);

/// Interpolation scope shared by load and expansion: vars.*, env.*,
/// experiment.name, experiment.dir. Returns nullopt when undefined.
std::optional<std::string> resolve_common(const Experiment& e, const std::string& path,
                                          const std::optional<std::string>& fallback);

}  // namespace qsweep
