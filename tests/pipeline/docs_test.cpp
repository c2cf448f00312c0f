// The documentation stays true: the annotated example in
// docs/experiment-format.md loads and expands, and docs/experiment.schema.json
// is what `qsweep schema` generates.
#include <gtest/gtest.h>

#include <cstdlib>

#include "pipeline/expand.h"
#include "pipeline/schema.h"
#include "stages/registry.h"
#include "tests/testutil.h"

namespace qsweep {
namespace {

std::filesystem::path source_dir() {
  const char* s = std::getenv("QSWEEP_SOURCE_DIR");
  return s && *s ? s : QSWEEP_SOURCE_DIR_DEFAULT;
}

TEST(Docs, AnnotatedExampleLoadsAndExpands) {
  std::string md = testing::read_file(source_dir() / "docs" / "experiment-format.md");
  size_t a = md.find("```yaml\n");
  ASSERT_NE(a, std::string::npos);
  a += 8;
  size_t b = md.find("```", a);
  testing::TempDir dir;
  testing::write_file(dir / "exp.yaml", md.substr(a, b - a));
  testing::write_file(dir / "recipes" / "quickstart.yaml",
                      testing::read_file(source_dir() / "experiments" / "recipes" / "quickstart.yaml"));
  auto reg = make_builtin_registry();
  Experiment e;
  Graph g;
  Diagnostics d;
  ASSERT_TRUE(load_experiment(dir / "exp.yaml", *reg, {}, &e, &d) && expand_experiment(e, *reg, &g, &d))
      << format_diagnostics(d);
  EXPECT_NE(g.find("quant[aidreams260K,gptq-w4g32]"), nullptr);
  EXPECT_EQ(g.find("quant[aidreams260K,rtn-w8]"), nullptr) << "excluded";
  EXPECT_EQ(g.find("quant[aidreams260K,rtn-w4]")->params["timeout_s"], 600.0) << "override";
  EXPECT_EQ(g.find("quant[stories260K,rtn-w4]")->params["timeout_s"], 3600.0);
  const Node* t = g.find("table");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->inputs[0].items.size(), 5u);  // gptq-w4g32 and gptq-w4 of both models, rtn-w8
}

TEST(Docs, ShippedJsonSchemaIsUpToDate) {
  auto reg = make_builtin_registry();
  auto shipped = nlohmann::json::parse(testing::read_file(source_dir() / "docs" / "experiment.schema.json"));
  EXPECT_EQ(shipped, to_json_schema(*reg)) << "regenerate: ./build/qsweep schema > docs/experiment.schema.json";
}

}  // namespace
}  // namespace qsweep
