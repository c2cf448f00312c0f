// StageRegistry and the built-in registry.

#include "stages/registry.h"

#include <gtest/gtest.h>

#include "stages/command_stage.h"

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

}  // namespace
}  // namespace qsweep
