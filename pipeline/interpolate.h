#pragma once
// `${...}` interpolation, used at expansion time (vars, env, matrix values)
// and at run time (inputs, output_dir, params of a command stage).
//
// Grammar: "${" EXPR "}" where EXPR is a dotted path of names
// ([A-Za-z0-9_-]+ separated by '.'), optionally followed by ":-" DEFAULT: the
// value when the name is undefined (or an env variable unset); DEFAULT may
// itself contain placeholders, e.g. ${env.DATA:-${experiment.dir}/data}.
// "$${" is an escaped literal "${". A "${" without its "}" is an error.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace qsweep {

struct TemplatePart {
  bool is_placeholder = false;
  std::string text;                   ///< literal text, or the EXPR path (default stripped)
  std::optional<std::string> fallback;  ///< the ":-DEFAULT" part, if any
};

/// Splits s into literal parts and placeholders. False + *err (with the
/// 0-based character offset) on an unterminated or empty placeholder.
bool parse_template(std::string_view s, std::vector<TemplatePart>* parts, std::string* err);

/// True if s contains at least one (unescaped) placeholder.
bool has_placeholder(std::string_view s);

/// Returns the value for a placeholder path, or nullopt when undefined.
/// interpolate() passes nullopt as `fallback` and applies ":-" defaults
/// itself; other callers may pass the default for the resolver to use.
using Resolver = std::function<std::optional<std::string>(
    const std::string& path, const std::optional<std::string>& fallback)>;

/// Substitutes every placeholder. On an undefined one: false and
/// *err = "undefined variable ${PATH}" (callers add file:line and hints).
bool interpolate(std::string_view s, const Resolver& resolve, std::string* out, std::string* err);

/// Looks a dotted path ("a.b.0.c") up in a JSON value; nullptr when absent.
const nlohmann::json* json_path(const nlohmann::json& root, std::string_view dotted);

/// A scalar as text for interpolation: strings verbatim, numbers and bools
/// as JSON writes them, null as "". Arrays/objects as compact JSON.
std::string json_to_text(const nlohmann::json& v);

}  // namespace qsweep
