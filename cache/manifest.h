#pragma once
// The manifest of one artifact: what went into it and what it holds.
//
// On-disk: <artifact>/manifest.json, a JSON object, format version 1:
//   format          "qsweep-artifact"
//   version         1 (readers reject any other number with a clear message)
//   key             32 hex digits: the node key (= the artifact's directory name)
//   node            human-readable node id, e.g. "quantize[stories260K,gptq-w4g32]"
//   kind            stage kind, e.g. "command"
//   stage_version   integer version of the stage implementation
//   experiment      name of the experiment whose run produced it
//   params          resolved parameters (defaults included), canonical JSON
//   inputs          [{name, key, node}] upstream artifacts, by input name
//   key_fields      [{name, value}] the exact fields hashed into `key`
//   files           [{path, size, mtime_ns, xxh3}] every regular file under out/,
//                   path relative to out/, sorted by path
//   outputs         stage-defined small JSON summary (e.g. exit code)
//   started_at, finished_at  ISO-8601 UTC; seconds: wall time of the stage body
//   host, qsweep_version
// History: 1 — first version.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cache/hash.h"

namespace qsweep::cache {

inline constexpr int k_manifest_version = 1;

struct ManifestFile {
  std::string path;      ///< relative to the artifact's out/ directory, '/'-separated
  uint64_t size = 0;     ///< bytes
  int64_t mtime_ns = 0;  ///< mtime at publish time; a later change triggers a re-hash
  std::string xxh3;      ///< 32 hex digits
};

struct ManifestInput {
  std::string name;  ///< the input's name in the consuming stage
  std::string key;   ///< upstream artifact key (or a file digest for file inputs)
  std::string node;  ///< upstream node id, or "file:<path>" for a local file
};

struct Manifest {
  std::string key;
  std::string node;
  std::string kind;
  int64_t stage_version = 0;
  std::string experiment;
  nlohmann::json params = nlohmann::json::object();
  std::vector<ManifestInput> inputs;
  std::vector<KeyField> key_fields;
  std::vector<ManifestFile> files;
  nlohmann::json outputs = nlohmann::json::object();
  std::string started_at;
  std::string finished_at;
  double seconds = 0;
  std::string host;
  std::string qsweep_version;
};

/// Pretty-printed JSON with a stable member order.
std::string manifest_to_json(const Manifest& m);

/// Parses and validates (format, version, required fields, key shape).
/// False + *err on anything malformed; never throws.
bool manifest_from_json(std::string_view text, Manifest* out, std::string* err);

}  // namespace qsweep::cache
