#pragma once
// YAML -> JSON for files scoring/ reads (task files, manifests): plain
// scalars become null / bool / int / float when they read as such (YAML 1.2
// core schema); quoted scalars stay strings.

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

namespace qsweep::scoring {

nlohmann::json scalar_to_json(const YAML::Node& n);
nlohmann::json yaml_to_json(const YAML::Node& n);

}  // namespace qsweep::scoring
