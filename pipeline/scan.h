#pragma once
// Scan: the key of every node, and whether the cache holds a valid artifact
// for it. The key is XXH3-128 over typed, delimited fields, in this order:
//   qsweep-key      "1" (the key schema version)
//   kind            stage kind
//   stage_version   the stage implementation's version
//   params          canonical JSON of the resolved params (defaults included,
//                   object keys sorted, no whitespace)
//   fp:NAME         stage fingerprint fields (engine/backend), if any
//   input:NAME      per input, sorted by name: the upstream key, or
//                   "file:" + content digest; lists as "[a,b,...]"
//   inputid:NAME    only for stages with keys_input_identity(): per input,
//                   the upstream node ids and their matrix axes (JSON)
// Node ids, experiment names, YAML layout and resources are not hashed, so
// two experiments that compute the same thing share the artifact.
// Single-threaded and deterministic.

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "cache/file_digest.h"
#include "cache/hash.h"
#include "cache/store.h"
#include "pipeline/diagnostic.h"
#include "pipeline/graph.h"

namespace qsweep {

inline constexpr const char* k_key_schema_version = "1";

struct NodeScan {
  std::string key;                      ///< 32 hex digits
  std::vector<cache::KeyField> fields;  ///< exactly what was hashed
  cache::ArtifactState state = cache::ArtifactState::kMissing;
  std::string why;  ///< when kCorrupt: what is wrong with the cached artifact
  /// Non-empty when the key could not be computed and the scan was asked to
  /// go on (ScanOptions::allow_unresolved): why, e.g. "the Hub is
  /// unreachable: ..." or "after download[llama]" for a node downstream of one.
  std::string unresolved;
};

struct ScanOptions {
  /// A fingerprint that cannot be resolved (a Hub revision while offline)
  /// leaves the node and everything downstream without a key instead of
  /// failing the scan: `qsweep plan` still shows the sweep.
  bool allow_unresolved = false;
};

struct ScanResult {
  std::vector<NodeScan> nodes;  ///< parallel to Graph::nodes
  std::map<std::filesystem::path, std::string> file_digests;  ///< local input -> digest hex
  size_t files_hashed = 0;      ///< local input files actually read (not stat-cache hits)
};

/// Computes every key (hashing local file inputs through the stat cache) and,
/// when store is non-null, checks each key in the cache. False + diagnostics
/// when a local input is missing or unreadable, or a stage's fingerprint()
/// throws (e.g. a Hub revision that cannot be resolved).
bool scan_graph(const Graph& g, cache::FileDigestCache& digests, const cache::Store* store,
                ScanResult* out, Diagnostics* diags, const ScanOptions& opt = {});

/// Digest of a local input: a file's content, or for a directory the sorted
/// (relative path, file digest) pairs of every regular file beneath it.
bool input_digest(const std::filesystem::path& p, cache::FileDigestCache& digests,
                  std::string* hex, std::string* err);

/// Human-readable difference between two key-field lists (for `explain`):
/// one line per differing field; params are compared per top-level key.
std::vector<std::string> diff_key_fields(const std::vector<cache::KeyField>& old_fields,
                                         const std::vector<cache::KeyField>& new_fields);

}  // namespace qsweep
