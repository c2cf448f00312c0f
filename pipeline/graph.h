#pragma once
// The expanded DAG: one Node per stage instance (a stage x one matrix
// combination). Built by expand.h, read by scan/plan/runner. Single-threaded,
// deterministic; no I/O.

#include <filesystem>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "pipeline/diagnostic.h"
#include "pipeline/stage.h"

namespace qsweep {

/// One item of a node input: an upstream node (node >= 0) or a local file or
/// directory (node == -1, file set; its content digest enters the key).
struct InputItem {
  int node = -1;
  std::filesystem::path file;  ///< absolute
  std::string file_shown;      ///< as written ("file:data/x.json" -> "data/x.json")
};

struct NodeInput {
  std::string name;
  bool is_list = false;
  std::vector<InputItem> items;
};

struct Node {
  std::string id;     ///< "stage" or "stage[v1,v2]" (axis values in matrix order)
  std::string stage;  ///< stage name
  std::string kind;
  const Stage* impl = nullptr;
  std::vector<std::pair<std::string, std::string>> axes;  ///< (axis, value) in matrix order
  nlohmann::json params;            ///< resolved: defaults filled in, typed
  std::vector<NodeInput> inputs;    ///< sorted by name
  Resources resources;
  int retries = 0;
  /// The stage's `slurm:` block as validated strings/lists/bools (partition,
  /// account, qos, constraint, time, sbatch_args, local, retry_on,
  /// resubmits); empty object when absent. Read by the Slurm executor only.
  nlohmann::json slurm = nlohmann::json::object();
  SourceLoc loc;                    ///< the stage definition
  std::vector<int> deps;            ///< upstream node indices (deduplicated, sorted)
  std::vector<int> users;           ///< downstream node indices
};

struct Graph {
  std::string experiment;                 ///< experiment name
  std::filesystem::path experiment_dir;   ///< absolute
  std::vector<Node> nodes;                ///< in definition order (stages in file order, then matrix order)
  std::unordered_map<std::string, int> by_id;
  std::vector<int> topo;                  ///< a topological order (stable: definition order where free)

  const Node* find(const std::string& id) const;
};

/// Fills deps/users from inputs and computes topo. False + a diagnostic
/// naming the nodes of a cycle when there is one.
bool link_graph(Graph* g, Diagnostics* diags);

/// Node ids matching a pattern: exact id, stage name (all its nodes), or a
/// glob with '*' and '?' over ids ("quantize[*,gptq-*]").
std::vector<int> match_nodes(const Graph& g, const std::string& pattern);

}  // namespace qsweep
