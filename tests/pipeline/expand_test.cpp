#include "pipeline/expand.h"

#include <gtest/gtest.h>

#include "tests/pipeline/fake_stage.h"
#include "tests/pipeline/pipeline_util.h"

namespace qsweep {
namespace {

using testing::FakeBehaviour;
using testing::FakeStage;
using testing::load_and_expand;
using testing::TempDir;

struct ExpandFixture : ::testing::Test {
  ExpandFixture() { reg.add(std::make_unique<FakeStage>(&b)); }
  std::string run(const std::string& yaml, LoadOptions opts = {}) {
    g = Graph{};
    return load_and_expand(dir, yaml, reg, &g, &e, "exp.yaml", opts);
  }
  std::vector<std::string> ids() const {
    std::vector<std::string> r;
    for (const auto& n : g.nodes) r.push_back(n.id);
    return r;
  }
  FakeBehaviour b;
  StageRegistry reg;
  TempDir dir;
  Graph g;
  Experiment e;
};

const char* k_header = R"(version: 1
name: t
models:
  m1: {path: /p/m1, size: 7}
  m2: {path: /p/m2, size: 13}
recipes:
  r1: {bits: 4}
  r2: {bits: 8}
)";

TEST_F(ExpandFixture, MatrixProductIdsAndInterpolation) {
  std::string err = run(std::string(k_header) + R"(
stages:
  - name: q
    kind: fake
    matrix: {model: "*", recipe: [r2, r1]}
    params: {text: "${model.path}-${recipe.bits}", n: "${recipe.bits}"}
)");
  ASSERT_EQ(err, "");
  EXPECT_EQ(ids(), (std::vector<std::string>{"q[m1,r2]", "q[m1,r1]", "q[m2,r2]", "q[m2,r1]"}));
  EXPECT_EQ(g.nodes[0].params["text"], "/p/m1-8");
  EXPECT_EQ(g.nodes[0].params["n"], 8);
  EXPECT_EQ(g.nodes[0].params["lr"], 0.5) << "defaults are filled in";
  EXPECT_EQ(g.nodes[0].params["mode"], "fast");
}

TEST_F(ExpandFixture, NullFromInterpolationMeansTheDefault) {
  // Collection entries that omit a field leave the param at its default.
  std::string err = run(std::string(k_header) + R"(
stages:
  - name: q
    kind: fake
    matrix: {recipe: "*"}
    params:
      n: ${recipe.steps:-null}
      mode: ${recipe.mode:-null}
      lr: ${recipe.lr:-~}
      text: '${recipe.mode:-null}'
      list: ["${recipe.mode:-null}"]
)");
  ASSERT_EQ(err, "");
  EXPECT_EQ(g.nodes[0].params["mode"], "fast") << "default";
  EXPECT_EQ(g.nodes[0].params["lr"], 0.5) << "default, typed like a written 0.5";
  EXPECT_EQ(g.nodes[0].params["n"], 1) << "default";
  EXPECT_EQ(g.nodes[0].params["text"], "null") << "quoted: the text null";
  EXPECT_EQ(g.nodes[0].params["list"], nlohmann::json::array({"null"})) << "list elements stay text";
}

TEST_F(ExpandFixture, NullVariableOrFieldMeansTheDefault) {
  // `vars: {limit: null}` + `n: ${vars.limit}`: unset unless --set gives one.
  std::string err = run(std::string(k_header) + R"(
vars:
  limit: null
  name: ""
datasets:
  d9: {steps: null}
stages:
  - name: q
    kind: fake
    matrix: {dataset: [d9]}
    params:
      n: ${vars.limit}
      lr: ${dataset.steps}
      mode: ${vars.name}
      text: '${vars.limit}'
)");
  ASSERT_EQ(err, "");
  EXPECT_EQ(g.nodes[0].params["n"], 1) << "null variable: default";
  EXPECT_EQ(g.nodes[0].params["lr"], 0.5) << "null collection field: default";
  EXPECT_EQ(g.nodes[0].params["mode"], "") << "an empty string stays an empty string";
  EXPECT_EQ(g.nodes[0].params["text"], "") << "quoted: text";
}

TEST_F(ExpandFixture, IncludeExclude) {
  ASSERT_EQ(run(std::string(k_header) + R"(
stages:
  - name: q
    kind: fake
    matrix:
      model: [m1, m2]
      recipe: [r1]
      exclude: [{model: m2}]
      include: [{model: m2, recipe: r2}, {model: m1, recipe: r1}]
)"), "");
  EXPECT_EQ(ids(), (std::vector<std::string>{"q[m1,r1]", "q[m2,r2]"}));
}

TEST_F(ExpandFixture, MatrixErrors) {
  std::string err = run(std::string(k_header) + "stages:\n  - {name: q, kind: fake, matrix: {model: [m1, m3]}}\n");
  EXPECT_NE(err.find("exp.yaml:10:48: error: stages.q.matrix.model: 'm3' is not defined under models"), std::string::npos) << err;
  EXPECT_NE(err.find("did you mean 'm1'?"), std::string::npos) << err;
  err = run(std::string(k_header) + "stages:\n  - {name: q, kind: fake, matrix: {lr: '*'}}\n");
  EXPECT_NE(err.find("only works for axes over a collection"), std::string::npos) << err;
  err = run(std::string(k_header) + "stages:\n  - {name: q, kind: fake, matrix: {model: []}}\n");
  EXPECT_NE(err.find("empty list"), std::string::npos) << err;
  err = run(std::string(k_header) + "stages:\n  - {name: q, kind: fake, matrix: {model: [m1], include: [{model: m2, recipe: r1}]}}\n");
  EXPECT_NE(err.find("'recipe' is not an axis"), std::string::npos) << err;
  err = run(std::string(k_header) + "stages:\n  - {name: q, kind: fake, matrix: {model: [m1], exclude: [{model: m1}]}}\n");
  EXPECT_NE(err.find("every combination is excluded"), std::string::npos) << err;
  err = run(std::string(k_header) + "stages:\n  - {name: q, kind: fake, matrix: {model: [m1, m1]}}\n");
  EXPECT_NE(err.find("duplicate value 'm1'"), std::string::npos) << err;
}

TEST_F(ExpandFixture, OverridesApplyPerCombination) {
  ASSERT_EQ(run(std::string(k_header) + R"(
stages:
  - name: q
    kind: fake
    matrix: {model: "*"}
    params: {n: 1, text: base}
    overrides:
      - when: {model: m2}
        params: {n: 5}
)"), "");
  EXPECT_EQ(g.nodes[0].params["n"], 1);
  EXPECT_EQ(g.nodes[1].params["n"], 5);
  EXPECT_EQ(g.nodes[1].params["text"], "base");
  std::string err = run(std::string(k_header) + "stages:\n  - {name: q, kind: fake, matrix: {model: '*'}, overrides: [{when: {modle: m1}, params: {n: 2}}]}\n");
  EXPECT_NE(err.find("'modle' is not an axis"), std::string::npos) << err;
  EXPECT_NE(err.find("did you mean 'model'?"), std::string::npos) << err;
}

TEST_F(ExpandFixture, ParamErrors) {
  std::string err = run("version: 1\nname: t\nstages:\n  - name: q\n    kind: fake\n    params: {nn: 1}\n");
  EXPECT_NE(err.find("exp.yaml:6:14: error: unknown key 'stages.q.params.nn'"), std::string::npos) << err;
  EXPECT_NE(err.find("did you mean 'n'?"), std::string::npos) << err;
  err = run("version: 1\nname: t\nvars: {k: abc}\nstages:\n  - name: q\n    kind: fake\n    params: {n: '${vars.k}'}\n");
  EXPECT_NE(err.find("q: params.n: expected an integer, got 'abc'"), std::string::npos) << err;
  err = run("version: 1\nname: t\nstages:\n  - name: q\n    kind: fake\n    params: {n: -3}\n");
  EXPECT_NE(err.find("params.n must be >= 0"), std::string::npos) << err;
  err = run("version: 1\nname: t\nstages:\n  - name: q\n    kind: fake\n    params: {list: [[1]]}\n");
  EXPECT_NE(err.find("expected a string"), std::string::npos) << err;
}

TEST_F(ExpandFixture, UndefinedVariableNamesItAndHints) {
  std::string err = run(std::string(k_header) + "stages:\n  - {name: q, kind: fake, matrix: {model: '*'}, params: {text: '${modle.path}'}}\n");
  EXPECT_NE(err.find("q[m1]: params.text: undefined variable ${modle.path}"), std::string::npos) << err;
  err = run(std::string(k_header) + "stages:\n  - {name: q, kind: fake, matrix: {model: '*'}, params: {text: '${model.nope}'}}\n");
  EXPECT_NE(err.find("undefined variable ${model.nope}"), std::string::npos) << err;
  err = run("version: 1\nname: t\nvars: {alpha: 1}\nstages:\n  - {name: q, kind: fake, params: {text: '${vars.alpah}'}}\n");
  EXPECT_NE(err.find("did you mean 'vars.alpha'?"), std::string::npos) << err;
}

TEST_F(ExpandFixture, RuntimePlaceholdersAreKeptAndChecked) {
  ASSERT_EQ(run("version: 1\nname: t\nstages:\n  - {name: a, kind: fake}\n  - {name: b, kind: fake, inputs: {x: a}, params: {text: '${inputs.x}/f ${output_dir} $${lit}'}}\n"), "");
  EXPECT_EQ(g.nodes[1].params["text"], "${inputs.x}/f ${output_dir} $${lit}");
  std::string err = run("version: 1\nname: t\nstages:\n  - {name: a, kind: fake}\n  - {name: b, kind: fake, inputs: {x: a}, params: {text: '${inputs.y}'}}\n");
  EXPECT_NE(err.find("${inputs.y} names no declared input"), std::string::npos) << err;
  EXPECT_NE(err.find("did you mean 'x'?"), std::string::npos) << err;
}

TEST_F(ExpandFixture, InputReferences) {
  ASSERT_EQ(run(std::string(k_header) + R"(
stages:
  - {name: q, kind: fake, matrix: {model: "*", recipe: "*"}}
  - {name: s, kind: fake, matrix: {model: "*"}, inputs: {one: "q[${model},r1]", all: ["q[${model},*]"], f: "file:data.txt"}}
  - {name: t, kind: fake, inputs: {every: ["s[*]"]}}
)"), "");
  const Node* s = g.find("s[m2]");
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(s->inputs.size(), 3u);
  EXPECT_EQ(s->inputs[0].name, "all");
  EXPECT_TRUE(s->inputs[0].is_list);
  ASSERT_EQ(s->inputs[0].items.size(), 2u);
  EXPECT_EQ(g.nodes[s->inputs[0].items[0].node].id, "q[m2,r1]");
  EXPECT_EQ(s->inputs[1].name, "f");
  EXPECT_EQ(s->inputs[1].items[0].node, -1);
  EXPECT_EQ(s->inputs[1].items[0].file, dir.path() / "data.txt");
  EXPECT_EQ(g.nodes[s->inputs[2].items[0].node].id, "q[m2,r1]");
  EXPECT_EQ(s->deps.size(), 2u);
  EXPECT_EQ(g.find("t")->deps.size(), 2u);
  // topological order puts producers first
  std::vector<int> pos(g.nodes.size());
  for (size_t k = 0; k < g.topo.size(); ++k) pos[g.topo[k]] = static_cast<int>(k);
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (int d : g.nodes[i].deps) EXPECT_LT(pos[d], pos[i]);
}

TEST_F(ExpandFixture, InputReferenceErrors) {
  std::string err = run(std::string(k_header) + "stages:\n  - {name: q, kind: fake, matrix: {model: '*'}}\n  - {name: s, kind: fake, inputs: {x: 'q[m3]'}}\n");
  EXPECT_NE(err.find("s: inputs.x: no node 'q[m3]' in this experiment"), std::string::npos) << err;
  EXPECT_NE(err.find("did you mean 'q[m1]'?"), std::string::npos) << err;
  err = run(std::string(k_header) + "stages:\n  - {name: q, kind: fake, matrix: {model: '*'}}\n  - {name: s, kind: fake, inputs: {x: q}}\n");
  EXPECT_NE(err.find("stage 'q' has a matrix"), std::string::npos) << err;
  err = run(std::string(k_header) + "stages:\n  - {name: q, kind: fake, matrix: {model: '*'}}\n  - {name: s, kind: fake, inputs: {x: 'q[*]'}}\n");
  EXPECT_NE(err.find("matches 2 nodes"), std::string::npos) << err;
  err = run(std::string(k_header) + "stages:\n  - {name: s, kind: fake, inputs: {x: ['zz[*]']}}\n");
  EXPECT_NE(err.find("matches no node"), std::string::npos) << err;
}

TEST_F(ExpandFixture, CycleIsReported) {
  std::string err = run("version: 1\nname: t\nstages:\n  - {name: a, kind: fake, inputs: {x: b}}\n  - {name: b, kind: fake, inputs: {x: a}}\n");
  EXPECT_NE(err.find("dependency cycle"), std::string::npos) << err;
  EXPECT_NE(err.find("a"), std::string::npos);
  err = run("version: 1\nname: t\nstages:\n  - {name: a, kind: fake, inputs: {x: a}}\n");
  EXPECT_NE(err.find("cannot consume itself"), std::string::npos) << err;
}

TEST_F(ExpandFixture, MatchNodes) {
  ASSERT_EQ(run(std::string(k_header) + "stages:\n  - {name: q, kind: fake, matrix: {model: '*', recipe: '*'}}\n  - {name: z, kind: fake}\n"), "");
  EXPECT_EQ(match_nodes(g, "q[m1,r2]").size(), 1u);
  EXPECT_EQ(match_nodes(g, "q").size(), 4u);
  EXPECT_EQ(match_nodes(g, "q[*,r1]").size(), 2u);
  EXPECT_EQ(match_nodes(g, "q[m?,r?]").size(), 4u);
  EXPECT_EQ(match_nodes(g, "*").size(), 5u);
  EXPECT_TRUE(match_nodes(g, "nothing").empty());
}

}  // namespace
}  // namespace qsweep
