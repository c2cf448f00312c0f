#pragma once
// Loading experiments from strings in tests.

#include <string>

#include "pipeline/expand.h"
#include "pipeline/experiment.h"
#include "tests/testutil.h"

namespace qsweep::testing {

/// Writes `yaml` to dir/name and loads + expands it. Returns the diagnostics
/// text (empty on success).
inline std::string load_and_expand(const TempDir& dir, const std::string& yaml,
                                   const StageRegistry& reg, Graph* g, Experiment* e = nullptr,
                                   const std::string& name = "exp.yaml", LoadOptions opts = {}) {
  write_file(dir / name, yaml);
  Experiment local;
  Experiment* ex = e ? e : &local;
  Diagnostics d;
  if (!load_experiment(dir / name, reg, opts, ex, &d) || !expand_experiment(*ex, reg, g, &d))
    return format_diagnostics(d);
  return "";
}

}  // namespace qsweep::testing
