#include "pipeline/experiment.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "tests/pipeline/fake_stage.h"
#include "tests/pipeline/pipeline_util.h"

namespace qsweep {
namespace {

using testing::FakeBehaviour;
using testing::FakeStage;
using testing::TempDir;
using testing::write_file;

struct LoadFixture : ::testing::Test {
  LoadFixture() { reg.add(std::make_unique<FakeStage>(&b)); }
  std::string load(const std::string& name, LoadOptions opts = {}) {
    e = Experiment{};
    Diagnostics d;
    load_experiment(dir / name, reg, opts, &e, &d);
    return format_diagnostics(d);
  }
  FakeBehaviour b;
  StageRegistry reg;
  TempDir dir;
  Experiment e;
};

TEST_F(LoadFixture, ImportsMergeAndImporterVarsWin) {
  write_file(dir / "lib/recipes.yaml", "vars: {who: lib, only_lib: 1}\nrecipes:\n  r1: {bits: 4}\nstages:\n  - {name: from_lib, kind: fake}\n");
  write_file(dir / "exp.yaml", "version: 1\nname: t\nimports: [lib/recipes.yaml]\nvars: {who: top}\nrecipes:\n  r2: {bits: 8}\n");
  ASSERT_EQ(load("exp.yaml"), "");
  EXPECT_EQ(e.vars["who"], "top");
  EXPECT_EQ(e.vars["only_lib"], 1);
  ASSERT_EQ(e.collections["recipes"].size(), 2u);
  EXPECT_EQ(e.collections["recipes"][0].name, "r1");
  EXPECT_EQ(e.stages.size(), 1u);
}

TEST_F(LoadFixture, DuplicateNamesAcrossImportsNameBothPlaces) {
  write_file(dir / "a.yaml", "recipes:\n  r1: {bits: 4}\n");
  write_file(dir / "exp.yaml", "version: 1\nname: t\nimports: [a.yaml]\nrecipes:\n  r1: {bits: 8}\n");
  std::string err = load("exp.yaml");
  EXPECT_NE(err.find("exp.yaml:5:3: error: duplicate name 'r1' in recipes"), std::string::npos) << err;
  EXPECT_NE(err.find("a.yaml:2:3"), std::string::npos) << err;
}

TEST_F(LoadFixture, DuplicateStageNames) {
  write_file(dir / "exp.yaml", "version: 1\nname: t\nstages:\n  - {name: a, kind: fake}\n  - {name: a, kind: fake}\n");
  EXPECT_NE(load("exp.yaml").find("duplicate stage name 'a'"), std::string::npos);
}

TEST_F(LoadFixture, ImportErrors) {
  write_file(dir / "exp.yaml", "version: 1\nname: t\nimports: [missing.yaml]\n");
  std::string err = load("exp.yaml");
  EXPECT_NE(err.find("exp.yaml:3:11: error: cannot read experiment file"), std::string::npos) << err;
  EXPECT_NE(err.find("missing.yaml"), std::string::npos) << err;
  write_file(dir / "a.yaml", "imports: [b.yaml]\n");
  write_file(dir / "b.yaml", "imports: [a.yaml]\n");
  write_file(dir / "exp.yaml", "version: 1\nname: t\nimports: [a.yaml]\n");
  EXPECT_NE(load("exp.yaml").find("import cycle"), std::string::npos);
  write_file(dir / "c.yaml", "name: other\n");
  write_file(dir / "exp.yaml", "version: 1\nname: t\nimports: [c.yaml]\n");
  EXPECT_NE(load("exp.yaml").find("'name' may only be set in the top-level experiment"), std::string::npos);
}

TEST_F(LoadFixture, SyntaxErrorsAndVersions) {
  write_file(dir / "exp.yaml", "version: 1\nname: t\nstages: [\n");
  std::string err = load("exp.yaml");
  EXPECT_NE(err.find("exp.yaml:"), std::string::npos);
  EXPECT_NE(err.find("YAML syntax error"), std::string::npos) << err;
  write_file(dir / "exp.yaml", "version: 2\nname: t\n");
  EXPECT_NE(load("exp.yaml").find("exp.yaml:1:10: error: experiment format version 2 is not supported"), std::string::npos);
  write_file(dir / "exp.yaml", "name: t\n");
  EXPECT_NE(load("exp.yaml").find("missing required key 'version'"), std::string::npos);
  write_file(dir / "exp.yaml", "version: 1\n");
  EXPECT_NE(load("exp.yaml").find("missing required key 'name'"), std::string::npos);
  write_file(dir / "exp.yaml", "");
  EXPECT_NE(load("exp.yaml").find("empty"), std::string::npos);
  EXPECT_NE(load("nonexistent.yaml").find("no such file"), std::string::npos);
  write_file(dir / "exp.yaml", "- just\n- a list\n");
  EXPECT_NE(load("exp.yaml").find("expected a mapping"), std::string::npos);
}

TEST_F(LoadFixture, HostileDocumentsAreErrorsNotCrashes) {
  // A billion-laughs style alias bomb.
  std::string bomb = "version: 1\nname: t\nvars:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 9; ++i)
    bomb += "  a" + std::to_string(i) + ": &a" + std::to_string(i) + " [*a" + std::to_string(i - 1) + ", *a" +
            std::to_string(i - 1) + ", *a" + std::to_string(i - 1) + ", *a" + std::to_string(i - 1) + ", *a" +
            std::to_string(i - 1) + ", *a" + std::to_string(i - 1) + ", *a" + std::to_string(i - 1) + ", *a" +
            std::to_string(i - 1) + ", *a" + std::to_string(i - 1) + ", *a" + std::to_string(i - 1) + "]\n";
  write_file(dir / "exp.yaml", bomb);
  EXPECT_NE(load("exp.yaml").find("too large or too deeply nested"), std::string::npos);
  // Deep nesting.
  std::string deep = "version: 1\nname: t\nvars:\n  d: " + std::string(5000, '[') + std::string(5000, ']') + "\n";
  write_file(dir / "exp.yaml", deep);
  EXPECT_NE(load("exp.yaml"), "");
  // Binary garbage.
  write_file(dir / "exp.yaml", std::string("\x00\xff\xfe\x01version", 11));
  EXPECT_NE(load("exp.yaml"), "");
}

TEST_F(LoadFixture, VarsEnvDefaultsAndOverrides) {
  ::setenv("QSWEEP_TEST_VAR", "from-env", 1);
  write_file(dir / "exp.yaml",
             "version: 1\nname: t\nvars:\n  a: ${env.QSWEEP_TEST_VAR}\n  b: ${env.QSWEEP_UNSET_VAR:-${experiment.name}-dflt}\n"
             "  c: ${vars.b}/c\n  n: 3\n  q: '3'\ncache: cachedir\n");
  LoadOptions o;
  ASSERT_EQ(load("exp.yaml", o), "");
  EXPECT_EQ(e.vars["a"], "from-env");
  EXPECT_EQ(e.vars["b"], "t-dflt");
  EXPECT_EQ(e.vars["c"], "t-dflt/c");
  EXPECT_EQ(e.vars["n"], 3);
  EXPECT_EQ(e.vars["q"], "3");
  EXPECT_EQ(*e.cache_dir, (dir.path() / "cachedir").lexically_normal());
  o.var_overrides["b"] = "over";
  ASSERT_EQ(load("exp.yaml", o), "");
  EXPECT_EQ(e.vars["c"], "over/c") << "vars see --set overrides";
  write_file(dir / "exp.yaml", "version: 1\nname: t\nvars:\n  a: ${env.QSWEEP_UNSET_VAR}\n");
  std::string err = load("exp.yaml");
  EXPECT_NE(err.find("exp.yaml:4:6: error: vars.a: undefined variable ${env.QSWEEP_UNSET_VAR}"), std::string::npos) << err;
  EXPECT_NE(err.find("${env.NAME:-default}"), std::string::npos) << err;
}

TEST_F(LoadFixture, InvalidNames) {
  write_file(dir / "exp.yaml", "version: 1\nname: 'bad name'\n");
  EXPECT_NE(load("exp.yaml").find("invalid experiment name"), std::string::npos);
  write_file(dir / "exp.yaml", "version: 1\nname: t\nmodels:\n  'a,b': {}\n");
  EXPECT_NE(load("exp.yaml").find("invalid name 'a,b'"), std::string::npos);
  write_file(dir / "exp.yaml", "version: 1\nname: t\nstages:\n  - {name: 9x, kind: fake}\n");
  EXPECT_NE(load("exp.yaml").find("invalid stage name"), std::string::npos);
}

TEST_F(LoadFixture, Limits) {
  write_file(dir / "exp.yaml", "version: 1\nname: t\nlimits: {threads: 3, memory: 2GiB, gpu: 0, api: 4}\n");
  ASSERT_EQ(load("exp.yaml"), "");
  EXPECT_EQ(*e.limits.threads, 3);
  EXPECT_EQ(*e.limits.memory, 2ull << 30);
  EXPECT_EQ(*e.limits.gpu, 0);
  EXPECT_EQ(*e.limits.api, 4);
}

}  // namespace
}  // namespace qsweep
