#include "stages/registry.h"

#include "stages/command_stage.h"
#include "stages/calibrate_stage.h"
#include "stages/download_stage.h"
#include "stages/infer_stage.h"
#include "stages/quantize_stage.h"
#include "stages/score_stage.h"
#include "stages/judge_stage.h"
#include "stages/tabulate_stage.h"

namespace qsweep {

void register_builtin_stages(StageRegistry& r) {
  r.add(std::make_unique<CommandStage>());
  r.add(std::make_unique<CalibrateStage>());
  r.add(std::make_unique<DownloadStage>());
  r.add(std::make_unique<QuantizeStage>());
  r.add(std::make_unique<InferStage>());
  r.add(std::make_unique<ScoreStage>());
  r.add(std::make_unique<JudgeStage>());
  r.add(std::make_unique<TabulateStage>());
}

std::unique_ptr<StageRegistry> make_builtin_registry() {
  auto r = std::make_unique<StageRegistry>();
  register_builtin_stages(*r);
  return r;
}

}  // namespace qsweep
