#pragma once
// Reading the component objects of a tokenizer.json (normalizer,
// pre_tokenizer, decoder, ...): their "type", required and optional fields,
// and "Sequence" components. Errors throw std::runtime_error whose message
// starts with `what` (the file and the component).

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace qsweep::model {

/// The component's "type" string; "" when j is not an object or has none.
inline std::string component_type(const nlohmann::json& j) {
  return j.is_object() && j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>()
                                                                         : std::string();
}

/// A required string field.
inline std::string str_field(const nlohmann::json& j, const char* key, const std::string& what) {
  if (!j.contains(key) || !j[key].is_string())
    throw std::runtime_error(what + ": missing string field \"" + key + "\"");
  return j[key].get<std::string>();
}

/// A required unsigned integer field.
inline size_t size_field(const nlohmann::json& j, const char* key, const std::string& what) {
  if (!j.contains(key) || !j[key].is_number_unsigned())
    throw std::runtime_error(what + ": missing unsigned field \"" + key + "\"");
  return j[key].get<size_t>();
}

/// An optional boolean field.
inline bool bool_field(const nlohmann::json& j, const char* key, bool dflt) {
  return j.contains(key) && j[key].is_boolean() ? j[key].get<bool>() : dflt;
}

/// The parts of a "Sequence" component: make(element) for each element of
/// the array j[key], skipping null results.
template <class T, class Make>
std::vector<std::unique_ptr<T>> sequence_parts(const nlohmann::json& j, const char* key,
                                               const std::string& what, Make make) {
  if (!j.contains(key) || !j[key].is_array())
    throw std::runtime_error(what + ": missing \"" + key + "\" array");
  std::vector<std::unique_ptr<T>> parts;
  for (const auto& p : j[key]) {
    auto part = make(p);
    if (part) parts.push_back(std::move(part));
  }
  return parts;
}

}  // namespace qsweep::model
