#pragma once
// Matrix expansion: Experiment -> Graph. Each stage's matrix (axes, include,
// exclude) becomes nodes; `${...}` in params and inputs is substituted per
// combination; params are typed against the stage kind's ParamSpecs with
// defaults filled in; input references are resolved to nodes or files.
//
// Placeholders left for run time (substituted by the stage, e.g. `command`):
// ${inputs.NAME[.key]}, ${output_dir}, ${params.PATH}, ${node}, ${key},
// ${threads}, and any name the stage lists in runtime_placeholders().

#include "pipeline/diagnostic.h"
#include "pipeline/experiment.h"
#include "pipeline/graph.h"

namespace qsweep {

/// False with diagnostics (file:line:column, node id, hints) on any error.
bool expand_experiment(const Experiment& e, const StageRegistry& registry, Graph* out,
                       Diagnostics* diags);

/// Singular axis name of a collection ("models" -> "model"), and back.
std::string axis_of_collection(const std::string& collection);
std::string collection_of_axis(const std::string& axis);  ///< "" when none

}  // namespace qsweep
