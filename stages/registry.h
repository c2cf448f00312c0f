#pragma once
// The stage kinds built into qsweep. pipeline/ knows stages only through
// StageRegistry; this is where the kinds are listed.

#include <memory>

#include "pipeline/stage.h"

namespace qsweep {

/// Adds every built-in stage kind (command, download) to r.
void register_builtin_stages(StageRegistry& r);

/// A registry holding the built-in stage kinds.
std::unique_ptr<StageRegistry> make_builtin_registry();

}  // namespace qsweep
