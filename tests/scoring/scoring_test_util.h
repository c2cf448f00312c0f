#pragma once
// Helpers shared by the scoring tests: the shipped task files, and the
// message a malformed task YAML throws.

#include <filesystem>
#include <string>

#include "scoring/task.h"
#include "tests/testutil.h"

namespace qsweep::scoring::test {

/// experiments/tasks/NAME.yaml of the source tree.
inline std::filesystem::path task_file(const std::string& name) {
  return testing::source_dir() / "experiments" / "tasks" / (name + ".yaml");
}

/// What parse_task_yaml(yaml, "t.yaml") throws as TaskError, or "(no error)".
inline std::string thrown(const std::string& yaml) {
  try {
    parse_task_yaml(yaml, "t.yaml");
  } catch (const TaskError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace qsweep::scoring::test
