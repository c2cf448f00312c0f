#pragma once
// Reading the artifacts a tabulate node collects into the table builder's
// inputs (scoring/tables/table.h): score artifacts (summary.json,
// results.json, normalized.json; provenance from the cache manifests of the
// score and its infer node) and model artifacts (a Hugging Face folder or a
// quantized one: bits, measured size, parameter count).

#include "pipeline/stage.h"
#include "scoring/tables/table.h"

namespace qsweep {

/// One score artifact; baseline marks rows of the `baseline` input. Throws
/// std::runtime_error naming the node and file when something is missing.
scoring::tables::ScoreInput read_score_artifact(const InputArtifact& in, bool baseline);

/// One model artifact (download / hf / quantize output).
scoring::tables::ModelInput read_model_artifact(const InputArtifact& in);

}  // namespace qsweep
