#include "pipeline/scan.h"

#include <gtest/gtest.h>

#include "pipeline/plan.h"
#include "tests/pipeline/fake_stage.h"
#include "tests/pipeline/pipeline_util.h"

namespace qsweep {
namespace {

using testing::FakeBehaviour;
using testing::FakeStage;
using testing::load_and_expand;
using testing::TempDir;
using testing::write_file;

std::map<std::string, std::string> keys_of(const TempDir& dir, const std::string& yaml,
                                           const StageRegistry& reg, const std::string& name = "exp.yaml") {
  Graph g;
  std::string err = load_and_expand(dir, yaml, reg, &g, nullptr, name);
  EXPECT_EQ(err, "");
  cache::FileDigestCache digests("");
  ScanResult s;
  Diagnostics d;
  EXPECT_TRUE(scan_graph(g, digests, nullptr, &s, &d)) << format_diagnostics(d);
  std::map<std::string, std::string> r;
  for (size_t i = 0; i < g.nodes.size(); ++i) r[g.nodes[i].id] = s.nodes[i].key;
  return r;
}

const char* k_block = R"(version: 1
name: t
recipes:
  r1: {bits: 4, group: 32}
  r2: {bits: 8, group: 0}
stages:
  - name: q
    kind: fake
    matrix: {recipe: "*"}
    params:
      n: ${recipe.bits}
      lr: 1
      list: [a, b]
  - name: s
    kind: fake
    matrix: {recipe: "*"}
    inputs: {x: "q[${recipe}]", f: "file:data.txt"}
  - name: t
    kind: other
    inputs: {all: ["s[*]"]}
)";

// The same experiment: flow style, other key order, comments, 1.0 for 1.
const char* k_flow = R"(# reformatted
name: t
version: 1
stages:
  - {kind: fake, name: q, params: {list: [a, b], lr: 1.0, n: "${recipe.bits}"}, matrix: {recipe: "*"}}
  - {name: s, inputs: {f: "file:data.txt", x: "q[${recipe}]"}, kind: fake, matrix: {recipe: "*"}}
  - {name: t, kind: other, inputs: {all: ["s[*]"]}}
recipes: {r1: {group: 32, bits: 4}, r2: {bits: 8, group: 0}}
)";

struct ScanFixture : ::testing::Test {
  ScanFixture() {
    reg.add(std::make_unique<FakeStage>(&b));
    reg.add(std::make_unique<FakeStage>(&b, "other"));
    write_file(dir / "data.txt", "data v1");
  }
  FakeBehaviour b;
  StageRegistry reg;
  TempDir dir;
};

TEST_F(ScanFixture, ReformattingAndReorderingChangesNoKey) {
  auto a = keys_of(dir, k_block, reg);
  auto b2 = keys_of(dir, k_flow, reg, "other.yaml");
  EXPECT_EQ(a, b2);
  EXPECT_EQ(a.size(), 5u);
  // All keys distinct.
  std::set<std::string> distinct;
  for (const auto& [id, k] : a) distinct.insert(k);
  EXPECT_EQ(distinct.size(), 5u);
}

TEST_F(ScanFixture, ParamChangeInvalidatesNodeAndDownstreamOnly) {
  auto a = keys_of(dir, k_block, reg);
  std::string edited = k_block;
  edited.replace(edited.find("r2: {bits: 8"), 12, "r2: {bits: 6");
  auto b2 = keys_of(dir, edited, reg);
  EXPECT_EQ(a["q[r1]"], b2["q[r1]"]);
  EXPECT_EQ(a["s[r1]"], b2["s[r1]"]);
  EXPECT_NE(a["q[r2]"], b2["q[r2]"]);
  EXPECT_NE(a["s[r2]"], b2["s[r2]"]);
  EXPECT_NE(a["t"], b2["t"]);
}

TEST_F(ScanFixture, FileInputContentIsPartOfTheKey) {
  auto a = keys_of(dir, k_block, reg);
  write_file(dir / "data.txt", "data v2");
  auto b2 = keys_of(dir, k_block, reg);
  EXPECT_EQ(a["q[r1]"], b2["q[r1]"]);
  EXPECT_NE(a["s[r1]"], b2["s[r1]"]);
  EXPECT_NE(a["t"], b2["t"]);
  std::filesystem::remove(dir / "data.txt");
  Graph g;
  ASSERT_EQ(load_and_expand(dir, k_block, reg, &g), "");
  cache::FileDigestCache digests("");
  ScanResult s;
  Diagnostics d;
  EXPECT_FALSE(scan_graph(g, digests, nullptr, &s, &d));
  EXPECT_NE(format_diagnostics(d).find("input 'f' (file:data.txt): no such file"), std::string::npos) << format_diagnostics(d);
}

TEST_F(ScanFixture, DirectoryInputsHashEveryFile) {
  write_file(dir / "d/a.txt", "a");
  write_file(dir / "d/sub/b.txt", "b");
  cache::FileDigestCache digests("");
  std::string h1, h2, err;
  ASSERT_TRUE(input_digest(dir / "d", digests, &h1, &err)) << err;
  write_file(dir / "d/sub/b.txt", "B");
  ASSERT_TRUE(input_digest(dir / "d", digests, &h2, &err)) << err;
  EXPECT_NE(h1, h2);
  std::filesystem::rename(dir / "d/a.txt", dir / "d/c.txt");
  std::string h3;
  ASSERT_TRUE(input_digest(dir / "d", digests, &h3, &err));
  EXPECT_NE(h2, h3) << "renaming a file changes a directory's digest";
}

TEST_F(ScanFixture, WritingTheDefaultExplicitlyChangesNoKey) {
  auto a = keys_of(dir, "version: 1\nname: t\nstages:\n  - {name: s, kind: fake}\n", reg);
  auto b2 = keys_of(dir, "version: 1\nname: t\nstages:\n  - {name: s, kind: fake, params: {lr: 0.5, n: 1, mode: fast, list: []}}\n", reg);
  EXPECT_EQ(a["s"], b2["s"]);
}

TEST_F(ScanFixture, ChangedDefaultInvalidatesExactlyTheNodesUsingIt) {
  const std::string yaml = R"(version: 1
name: t
stages:
  - {name: uses_default, kind: fake}
  - {name: overrides, kind: fake, params: {mode: slow}}
  - {name: other_kind, kind: other}
)";
  auto a = keys_of(dir, yaml, reg);
  StageRegistry reg2;  // "fake" ships a new default for `mode`
  reg2.add(std::make_unique<FakeStage>(&b, "fake", 1, "faster"));
  reg2.add(std::make_unique<FakeStage>(&b, "other"));
  auto b2 = keys_of(dir, yaml, reg2);
  EXPECT_NE(a["uses_default"], b2["uses_default"]);
  EXPECT_EQ(a["overrides"], b2["overrides"]);
  EXPECT_EQ(a["other_kind"], b2["other_kind"]);
  StageRegistry reg3;  // a new version of "other"
  reg3.add(std::make_unique<FakeStage>(&b));
  reg3.add(std::make_unique<FakeStage>(&b, "other", 2));
  auto c = keys_of(dir, yaml, reg3);
  EXPECT_EQ(a["uses_default"], c["uses_default"]);
  EXPECT_NE(a["other_kind"], c["other_kind"]);
}

TEST_F(ScanFixture, KeyFieldsAreTypedAndExplainable) {
  Graph g;
  ASSERT_EQ(load_and_expand(dir, k_block, reg, &g), "");
  cache::FileDigestCache digests("");
  ScanResult s;
  Diagnostics d;
  ASSERT_TRUE(scan_graph(g, digests, nullptr, &s, &d));
  const auto& f = s.nodes[g.by_id.at("s[r1]")].fields;
  std::vector<std::string> names;
  for (const auto& x : f) names.push_back(x.name);
  EXPECT_EQ(names, (std::vector<std::string>{"qsweep-key", "kind", "stage_version", "params", "input:f", "input:x"}));
  EXPECT_EQ(f[4].value.rfind("file:", 0), 0u);
  EXPECT_EQ(f[5].value, s.nodes[g.by_id.at("q[r1]")].key);
  EXPECT_EQ(s.file_digests.size(), 1u);
  auto lines = diff_key_fields(
      {{"kind", "fake"}, {"params", R"({"a":1,"b":2})"}, {"input:x", "k1"}},
      {{"kind", "fake"}, {"params", R"({"a":1,"b":3,"c":4})"}, {"input:x", "k2"}});
  EXPECT_EQ(lines, (std::vector<std::string>{"params.b: 2 -> 3", "params.c: (absent) -> 4", "input:x: k1 -> k2"}));
}

TEST_F(ScanFixture, PlanStatesAndTargets) {
  Graph g;
  ASSERT_EQ(load_and_expand(dir, k_block, reg, &g), "");
  cache::FileDigestCache digests("");
  ScanResult s;
  Diagnostics d;
  ASSERT_TRUE(scan_graph(g, digests, nullptr, &s, &d));
  Plan p = make_plan(g, s, {});
  EXPECT_EQ(p.to_run.size(), 5u);
  EXPECT_EQ(p.n_ready, 2u);
  EXPECT_EQ(p.n_blocked, 3u);
  EXPECT_EQ(p.state[g.by_id.at("q[r1]")], PlanState::kReady);
  EXPECT_EQ(p.state[g.by_id.at("t")], PlanState::kBlocked);
  // Target s[r1]: only it and what it needs.
  p = make_plan(g, s, {g.by_id.at("s[r1]")});
  EXPECT_EQ(p.to_run.size(), 2u);
  EXPECT_EQ(p.state[g.by_id.at("q[r2]")], PlanState::kUnneeded);
  // A cached consumer needs nothing upstream, even when the upstream is gone.
  s.nodes[g.by_id.at("s[r1]")].state = cache::ArtifactState::kValid;
  p = make_plan(g, s, {g.by_id.at("s[r1]")});
  EXPECT_TRUE(p.to_run.empty());
  EXPECT_EQ(p.n_cached, 1u);
  // A corrupt artifact runs again.
  s.nodes[g.by_id.at("s[r1]")].state = cache::ArtifactState::kCorrupt;
  p = make_plan(g, s, {g.by_id.at("s[r1]")});
  EXPECT_EQ(p.to_run.size(), 2u);
}

}  // namespace
}  // namespace qsweep

namespace qsweep {
namespace {

// A stage whose output depends on which upstream nodes it reads (a table
// labelling rows by their matrix values), and one whose key needs the network.
class IdentityStage : public testing::FakeStage {
 public:
  using FakeStage::FakeStage;
  bool keys_input_identity() const override { return true; }
};
class OfflineStage : public testing::FakeStage {
 public:
  using FakeStage::FakeStage;
  std::vector<cache::KeyField> fingerprint(const nlohmann::json&) const override {
    throw std::runtime_error("Could not resolve host: huggingface.co");
  }
};

const char* k_labels = R"(version: 1
name: t
recipes:
  r1: {bits: 4}
  r2: {bits: 8}
stages:
  - name: q
    kind: fake
    matrix: {recipe: "*"}
    params: {n: "${recipe.bits}"}
  - name: plain
    kind: fake
    inputs: {all: ["q[*]"]}
  - name: table
    kind: ident
    inputs: {all: ["q[*]"]}
)";

TEST(ScanIdentity, RenamingAnUpstreamNodeChangesOnlyTheKeysOfStagesThatLabelByIt) {
  testing::FakeBehaviour b;
  StageRegistry reg;
  reg.add(std::make_unique<testing::FakeStage>(&b));
  reg.add(std::make_unique<IdentityStage>(&b, "ident"));
  testing::TempDir dir;
  auto a = keys_of(dir, k_labels, reg);
  std::string renamed = k_labels;
  renamed.replace(renamed.find("r2: {bits: 8}"), 13, "r9: {bits: 8}");
  auto b2 = keys_of(dir, renamed, reg);
  EXPECT_EQ(a["q[r2]"], b2["q[r9]"]);  // same content, same artifact
  EXPECT_EQ(a["plain"], b2["plain"]);
  EXPECT_NE(a["table"], b2["table"]);  // its rows would be labelled r9
}

TEST(ScanIdentity, UnresolvableFingerprintLeavesTheNodeAndItsUsersWithoutKeyWhenAllowed) {
  testing::FakeBehaviour b;
  StageRegistry reg;
  reg.add(std::make_unique<testing::FakeStage>(&b));
  reg.add(std::make_unique<OfflineStage>(&b, "net"));
  testing::TempDir dir;
  const char* yaml = R"(version: 1
name: t
stages:
  - {name: dl, kind: net}
  - {name: use, kind: fake, inputs: {x: dl}}
  - {name: other, kind: fake}
)";
  Graph g;
  ASSERT_EQ(testing::load_and_expand(dir, yaml, reg, &g), "");
  cache::FileDigestCache digests("");
  ScanResult s;
  Diagnostics d;
  EXPECT_FALSE(scan_graph(g, digests, nullptr, &s, &d));
  EXPECT_NE(format_diagnostics(d).find("dl: cannot compute the key: Could not resolve host"), std::string::npos);
  Diagnostics d2;
  ScanOptions o;
  o.allow_unresolved = true;
  ASSERT_TRUE(scan_graph(g, digests, nullptr, &s, &d2, o)) << format_diagnostics(d2);
  EXPECT_EQ(s.nodes[g.by_id.at("dl")].unresolved, "Could not resolve host: huggingface.co");
  EXPECT_EQ(s.nodes[g.by_id.at("use")].unresolved, "after dl");
  EXPECT_TRUE(s.nodes[g.by_id.at("use")].key.empty());
  EXPECT_EQ(s.nodes[g.by_id.at("other")].key.size(), 32u);
}

}  // namespace
}  // namespace qsweep

namespace qsweep {
namespace {

TEST(ScanIdentity, AnInputThatIsOneNullVariableIsLeftOut) {
  testing::FakeBehaviour b;
  StageRegistry reg;
  reg.add(std::make_unique<testing::FakeStage>(&b));
  testing::TempDir dir;
  const char* yaml = R"(version: 1
name: t
vars: {manifest: null, other: up}
stages:
  - {name: up, kind: fake}
  - {name: use, kind: fake, inputs: {m: "${vars.manifest}", l: ["${vars.manifest}"], o: "${vars.other}"}}
)";
  Graph g;
  ASSERT_EQ(testing::load_and_expand(dir, yaml, reg, &g), "");
  const Node* n = g.find("use");
  ASSERT_NE(n, nullptr);
  ASSERT_EQ(n->inputs.size(), 2u);  // l (an empty list) and o; m is left out
  EXPECT_EQ(n->inputs[0].name, "l");
  EXPECT_TRUE(n->inputs[0].items.empty());
  EXPECT_EQ(n->inputs[1].name, "o");
  // A null variable inside a longer reference is still an error.
  const char* bad = R"(version: 1
name: t
vars: {manifest: null}
stages:
  - {name: use, kind: fake, inputs: {m: "x${vars.manifest}"}}
)";
  Graph g2;
  EXPECT_NE(testing::load_and_expand(dir, bad, reg, &g2), "");
}

}  // namespace
}  // namespace qsweep
