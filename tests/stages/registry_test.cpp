// StageRegistry and the built-in registry.

#include "stages/registry.h"

#include <gtest/gtest.h>

#include <map>

#include "pipeline/experiment.h"
#include "pipeline/expand.h"
#include "stages/command_stage.h"
#include "tests/testutil.h"

namespace qsweep {
namespace {

TEST(Registry, BuiltinHasCommand) {
  auto r = make_builtin_registry();
  const Stage* s = r->find("command");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->kind(), "command");
  EXPECT_EQ(r->find("no-such-kind"), nullptr);
  EXPECT_EQ(r->kinds(), (std::vector<std::string>{"calibrate", "command", "download", "infer", "judge", "quantize", "score", "tabulate"}));
}

TEST(Registry, DuplicateKindAborts) {
  StageRegistry r;
  r.add(std::make_unique<CommandStage>());
  EXPECT_DEATH(r.add(std::make_unique<CommandStage>()), "kind 'command' registered twice");
}

TEST(Registry, ParamTypeNames) {
  EXPECT_STREQ(param_type_name(ParamType::kString), "string");
  EXPECT_STREQ(param_type_name(ParamType::kStringList), "string list");
  EXPECT_STREQ(param_type_name(ParamType::kStringMap), "string map");
  EXPECT_STREQ(param_type_name(ParamType::kAny), "any");
}

// params.device defaults to cuda exactly for nodes that hold a GPU slot and
// can use it (quantize with calibration passes, calibrate, infer with the
// embedded backend), from the YAML alone; an explicit device wins.
TEST(Registry, DeviceDefaultsToCudaOnNodesHoldingAGpu) {
  testing::TempDir dir;
  testing::write_file(dir / "exp.yaml", R"(version: 1
name: dev
stages:
  - {name: m, kind: command, params: {argv: [true]}}
  - {name: cal, kind: calibrate, inputs: {checkpoint: m, dataset: m}, resources: {gpu: 1}}
  - {name: cal_cpu, kind: calibrate, inputs: {checkpoint: m, dataset: m}}
  - {name: gptq, kind: quantize, inputs: {checkpoint: m, calibration: cal}, params: {method: gptq}, resources: {gpu: 1}}
  - {name: rtn, kind: quantize, inputs: {checkpoint: m}, params: {method: rtn}, resources: {gpu: 1}}
  - {name: sq, kind: quantize, inputs: {checkpoint: m, calibration: cal}, params: {method: smoothquant},
     resources: {gpu: 1}}
  - {name: awq_cpu, kind: quantize, inputs: {checkpoint: m, calibration: cal}, params: {method: awq, device: cpu},
     resources: {gpu: 1}}
  - {name: inf, kind: infer, inputs: {checkpoint: m, dataset: m, task: m}, resources: {gpu: 1}}
  - {name: inf_cpu, kind: infer, inputs: {checkpoint: m, dataset: m, task: m}}
)");
  auto reg = make_builtin_registry();
  Experiment e;
  Graph g;
  Diagnostics d;
  ASSERT_TRUE(load_experiment(dir / "exp.yaml", *reg, {}, &e, &d) && expand_experiment(e, *reg, &g, &d))
      << format_diagnostics(d);
  const std::map<std::string, std::string> want = {{"cal", "cuda"},  {"cal_cpu", "cpu"}, {"gptq", "cuda"},
                                                   {"rtn", "cpu"},   {"sq", "cpu"}, {"awq_cpu", "cpu"}, {"inf", "cuda"},
                                                   {"inf_cpu", "cpu"}};
  for (const auto& [id, dev] : want) {
    const Node* n = g.find(id);
    ASSERT_NE(n, nullptr) << id;
    EXPECT_EQ(n->params.value("device", std::string("?")), dev) << id;
  }
}

}  // namespace
}  // namespace qsweep
