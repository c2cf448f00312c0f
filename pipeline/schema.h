#pragma once
// The experiment file format, described once in code. The same description
// validates YAML documents (with file:line:column and nearest-key hints),
// converts scalars to typed JSON, and is emitted as JSON Schema
// (`qsweep schema`, shipped as docs/experiment.schema.json) so that editors can
// validate and complete experiment files.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "pipeline/diagnostic.h"
#include "pipeline/stage.h"

namespace qsweep {

class StageRegistry;

struct Schema {
  enum class Type {
    kString,
    kInt,
    kNumber,
    kBool,
    kSize,        ///< bytes: an integer or "512MiB", "4GB", "1.5GiB"
    kList,        ///< items: `items`
    kObject,      ///< fixed properties `props`; unknown keys are errors
    kMap,         ///< free keys, values: `items`
    kAny,         ///< any YAML value; scalars typed by the YAML 1.2 core schema
    kStringOrList ///< a string, or a list of strings
  };
  Type type = Type::kAny;
  std::string doc;
  std::vector<std::pair<std::string, std::shared_ptr<const Schema>>> props;  // kObject
  std::vector<std::string> required;                                         // kObject
  std::shared_ptr<const Schema> items;                                       // kList, kMap
  std::vector<std::string> enum_values;                                      // kString
  nlohmann::json default_value;                                              // documentation only
  int64_t minimum = INT64_MIN;                                               // kInt

  const Schema* prop(const std::string& name) const;
  std::vector<std::string> prop_names() const;
};

using SchemaPtr = std::shared_ptr<const Schema>;

/// The schema of one experiment file (top level). Stage params are typed per
/// kind from the registry's ParamSpecs.
SchemaPtr experiment_schema(const StageRegistry& registry);

/// The schema of a stage kind's `params` object.
SchemaPtr params_schema(const std::vector<ParamSpec>& specs);

/// Checks a YAML node against a schema: unknown keys (with nearest-key hint),
/// wrong types, missing required keys, bad enum values. `path` is the dotted
/// key path shown in messages (e.g. "stages[2].matrix").
void validate(const YAML::Node& node, const Schema& schema, const std::string& file,
              const std::string& path, Diagnostics* out);

/// Converts a scalar text to JSON for a type (after interpolation). Returns
/// false + *err ("expected an integer, got 'abc'") when it does not fit.
/// `quoted` scalars are never typed as numbers/bools under kAny.
bool scalar_to_json(const std::string& text, bool quoted, Schema::Type type, nlohmann::json* out,
                    std::string* err);

/// Parses a byte size: integer bytes, or a number with unit B, KB, MB, GB,
/// TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024).
bool parse_size(const std::string& text, uint64_t* out);

/// Schema::Type for a stage ParamType.
Schema::Type schema_type(ParamType t);

/// The JSON Schema (draft 2020-12) of the experiment format.
nlohmann::json to_json_schema(const StageRegistry& registry);

/// SourceLoc of a YAML node in a file.
SourceLoc loc_of(const YAML::Node& n, const std::string& file);

}  // namespace qsweep
