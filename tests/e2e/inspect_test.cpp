// The read-only views: plan, explain, show, status, dag, cache ls / gc, schema.

#include <filesystem>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include <gmock/gmock.h>

#include "tests/e2e/e2e_util.h"

namespace qsweep::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// src -> mid[r1], mid[r2] -> top. mid passes params.vars.level to its program.
constexpr const char* k_inspect = R"~(version: 1
name: e2e-inspect
recipes: {r1: {}, r2: {}}
stages:
  - name: src
    kind: command
    params: {argv: [sh, -c, 'echo src > "$0/src.txt"', "${output_dir}"]}
  - name: mid
    kind: command
    matrix: {recipe: "*"}
    inputs: {src: src}
    params:
      argv: [sh, -c, 'echo "$1 level=$2" > "$0/mid.txt"', "${output_dir}", "${recipe}", "${params.vars.level}"]
      vars: {level: 1}
  - name: top
    kind: command
    inputs: {all: ["mid[*]"]}
    params: {argv: [sh, -c, 'for d; do cat "$d/mid.txt"; done > "$0/top.txt"', "${output_dir}", "${inputs.all}"]}
)~";

class InspectTest : public E2ETest {
 protected:
  void SetUp() override {
    E2ETest::SetUp();
    if (IsSkipped()) return;
    write_exp(k_inspect);
  }
  void set_level(int level) {
    std::string y = k_inspect;
    y.replace(y.find("level: 1"), 8, "level: " + std::to_string(level));
    write_exp(y);
  }
  // "  STATE  ID  KEY..." lines of `qsweep plan` -> {id: state}.
  std::map<std::string, std::string> plan_text_states(const std::string& out) {
    std::map<std::string, std::string> m;
    std::istringstream in(out);
    std::string line;
    std::getline(in, line);  // summary
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string state, id;
      f >> state >> id;
      m[id] = state;
    }
    return m;
  }
  static size_t count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + what.size())) ++n;
    return n;
  }
};

TEST_F(InspectTest, PlanAfterPartialRun) {
  ProcResult r = run({"mid[r1]"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  Journal j = journal();
  EXPECT_THAT(j.nodes(j.last_run(), "node_start"), ElementsAre("mid[r1]", "src"));

  ProcResult plan = qsweep({"plan", exp().string()});
  ASSERT_EQ(plan.exit_code, 0) << describe(plan);
  EXPECT_THAT(plan.out, HasSubstr("4 nodes: 2 cached, 1 to-run, 1 blocked")) << plan.out;
  auto text = plan_text_states(plan.out);
  EXPECT_EQ(text["src"], "cached");
  EXPECT_EQ(text["mid[r1]"], "cached");
  EXPECT_EQ(text["mid[r2]"], "to-run");
  EXPECT_EQ(text["top"], "blocked");
  EXPECT_THAT(plan.out, HasSubstr("after mid[r2]")) << plan.out;
  auto json_states = plan_states();
  EXPECT_EQ(json_states, text);

  // With a target, what it does not need is left out.
  ProcResult only = qsweep({"plan", exp().string(), "mid[r2]"});
  ASSERT_EQ(only.exit_code, 0) << describe(only);
  auto t2 = plan_text_states(only.out);
  EXPECT_EQ(t2.count("top"), 0u) << only.out;
  EXPECT_EQ(t2["mid[r2]"], "to-run");
  EXPECT_EQ(t2.count("mid[r1]"), 0u) << only.out;
  ProcResult none = qsweep({"plan", exp().string(), "mid[r9]"});
  EXPECT_EQ(none.exit_code, 2) << describe(none);
  EXPECT_THAT(none.err, HasSubstr("no node matches 'mid[r9]'"));

  ProcResult dot = qsweep({"dag", exp().string(), "--format", "dot"});
  ASSERT_EQ(dot.exit_code, 0) << describe(dot);
  EXPECT_THAT(dot.out, HasSubstr("digraph \"e2e-inspect\""));
  EXPECT_EQ(count(dot.out, " -> "), 4u) << dot.out;
  EXPECT_THAT(dot.out, HasSubstr("label=\"src\\ncached\"")) << dot.out;
  EXPECT_THAT(dot.out, HasSubstr("label=\"top\\nblocked\"")) << dot.out;
  ProcResult mer = qsweep({"dag", exp().string(), "--format", "mermaid"});
  ASSERT_EQ(mer.exit_code, 0) << describe(mer);
  EXPECT_EQ(mer.out.rfind("flowchart", 0), 0u) << mer.out;
  EXPECT_EQ(count(mer.out, " --> "), 4u) << mer.out;
  EXPECT_THAT(mer.out, HasSubstr("[\"mid[r2]\"]:::ready")) << mer.out;
}

TEST_F(InspectTest, ExplainNamesTheChangedParamAndUpstream) {
  ASSERT_EQ(run().exit_code, 0);
  ProcResult cached = qsweep({"explain", exp().string(), "mid[r1]"});
  ASSERT_EQ(cached.exit_code, 0) << describe(cached);
  EXPECT_THAT(cached.out, HasSubstr("mid[r1]  (cached)"));
  EXPECT_THAT(cached.out, HasSubstr("input:src"));

  set_level(2);
  ProcResult mid = qsweep({"explain", exp().string(), "mid[r1]"});
  ASSERT_EQ(mid.exit_code, 0) << describe(mid);
  EXPECT_THAT(mid.out, HasSubstr("not cached"));
  EXPECT_THAT(mid.out, HasSubstr("params.vars: {\"level\":1} -> {\"level\":2}")) << mid.out;
  EXPECT_THAT(mid.out, Not(HasSubstr("upstream"))) << mid.out;

  ProcResult top = qsweep({"explain", exp().string(), "top"});
  ASSERT_EQ(top.exit_code, 0) << describe(top);
  EXPECT_THAT(top.out, HasSubstr("input:all:")) << top.out;
  EXPECT_THAT(top.out, HasSubstr("upstream mid[r1] changed")) << top.out;
  EXPECT_THAT(top.out, HasSubstr("upstream mid[r2] changed")) << top.out;
  EXPECT_THAT(top.out, Not(HasSubstr("params."))) << top.out;

  ProcResult bad = qsweep({"explain", exp().string(), "mid[r3]"});
  EXPECT_EQ(bad.exit_code, 2) << describe(bad);
  EXPECT_THAT(bad.err, HasSubstr("no node 'mid[r3]'"));
}

TEST_F(InspectTest, ShowStatusAndCacheLs) {
  ASSERT_EQ(run().exit_code, 0);
  Journal j = journal();
  auto keys = j.keys();
  const std::string key = keys["mid[r1]"];

  for (const auto& what : std::vector<std::vector<std::string>>{
           {"show", "mid[r1]"}, {"show", key}, {"show", "mid[r1]", "-e", exp().string()}}) {
    ProcResult s = qsweep(what);
    ASSERT_EQ(s.exit_code, 0) << describe(s);
    EXPECT_THAT(s.out, HasSubstr("node        mid[r1]\n")) << s.out;
    EXPECT_THAT(s.out, HasSubstr("kind        command (version 1)")) << s.out;
    EXPECT_THAT(s.out, HasSubstr("key         " + key)) << s.out;
    EXPECT_THAT(s.out, HasSubstr("experiment  e2e-inspect")) << s.out;
    EXPECT_THAT(s.out, HasSubstr("\nfiles\n")) << s.out;
    EXPECT_THAT(s.out, HasSubstr("  mid.txt\n")) << s.out;
    EXPECT_THAT(s.out, HasSubstr("src          src  " + keys["src"])) << s.out;
  }
  ProcResult sj = qsweep({"show", "mid[r1]", "--json"});
  ASSERT_EQ(sj.exit_code, 0) << describe(sj);
  json m = json::parse(sj.out, nullptr, false);
  ASSERT_TRUE(m.is_object()) << sj.out;
  EXPECT_EQ(m.value("key", ""), key);
  ASSERT_TRUE(m["files"].is_array());
  std::vector<std::string> files;
  for (const auto& f : m["files"]) files.push_back(f.value("path", ""));
  EXPECT_THAT(files, ElementsAre("mid.txt", "stderr.txt", "stdout.txt"));
  ProcResult missing = qsweep({"show", "nope"});
  EXPECT_EQ(missing.exit_code, 2) << describe(missing);

  ProcResult st = qsweep({"status", exp().string()});
  ASSERT_EQ(st.exit_code, 0) << describe(st);
  EXPECT_THAT(st.out, HasSubstr("e2e-inspect")) << st.out;
  EXPECT_THAT(st.out, HasSubstr("  ok  (4 done; 0 cached at start)")) << st.out;
  for (const auto& n : {"src", "mid[r1]", "mid[r2]", "top"})
    EXPECT_THAT(st.out, HasSubstr(std::string("done        ") + n + "\n")) << st.out;
  ProcResult stj = qsweep({"status", "--json"});
  ASSERT_EQ(stj.exit_code, 0) << describe(stj);
  json runs = json::parse(stj.out, nullptr, false);
  ASSERT_TRUE(runs.is_array() && runs.size() == 1) << stj.out;
  EXPECT_EQ(runs[0].value("status", ""), "ok");
  EXPECT_EQ(runs[0]["nodes"].size(), 4u);

  ProcResult ls = qsweep({"cache", "ls"});
  ASSERT_EQ(ls.exit_code, 0) << describe(ls);
  for (const auto& [node, k] : keys) EXPECT_THAT(ls.out, HasSubstr(k)) << node;
  EXPECT_THAT(ls.out, HasSubstr("4 artifact(s)"));
  ProcResult lsj = qsweep({"cache", "ls", "--json"});
  json arts = json::parse(lsj.out, nullptr, false);
  ASSERT_TRUE(arts.is_array()) << lsj.out;
  EXPECT_EQ(arts.size(), 4u);
}

TEST_F(InspectTest, GcRemovesExactlyTheOrphans) {
  ASSERT_EQ(run().exit_code, 0);
  const auto old_keys = journal().keys();
  const auto all_before = object_keys(cache());
  ASSERT_EQ(all_before.size(), 4u);

  // Node ids are not part of keys: a renamed stage orphans nothing.
  std::string renamed = k_inspect;
  renamed.replace(renamed.find("name: top"), 9, "name: summary");
  write_exp(renamed);
  ProcResult gc0 = qsweep({"cache", "gc", "--keep", exp().string()});
  ASSERT_EQ(gc0.exit_code, 0) << describe(gc0);
  EXPECT_THAT(gc0.out, HasSubstr("removed 0 artifact(s)")) << gc0.out;
  EXPECT_EQ(object_keys(cache()), all_before);
  EXPECT_EQ(plan_states()["summary"], "cached");

  // A new level: mid[r1], mid[r2] and top get new keys; the old ones are orphans.
  set_level(3);
  ASSERT_EQ(run().exit_code, 0);
  ASSERT_EQ(object_keys(cache()).size(), 7u);
  std::vector<std::string> orphans = sorted({old_keys.at("mid[r1]"), old_keys.at("mid[r2]"), old_keys.at("top")});

  ProcResult dry = qsweep({"cache", "gc", "--keep", exp().string(), "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << describe(dry);
  EXPECT_EQ(object_keys(cache()).size(), 7u) << "--dry-run removed something";
  std::vector<std::string> listed;
  std::istringstream in(dry.out);
  std::string w1, w2, k, rest;
  while (in >> w1 >> w2 >> k && std::getline(in, rest))
    if (w1 == "would" && w2 == "remove" && k.size() == 32) listed.push_back(k);
  EXPECT_EQ(sorted(listed), orphans) << dry.out;
  EXPECT_THAT(dry.out, HasSubstr("would remove 3 artifact(s)")) << dry.out;

  ProcResult gc = qsweep({"cache", "gc", "--keep", exp().string()});
  ASSERT_EQ(gc.exit_code, 0) << describe(gc);
  EXPECT_THAT(gc.out, HasSubstr("removed 3 artifact(s)")) << gc.out;
  auto left = object_keys(cache());
  EXPECT_EQ(left.size(), 4u);
  for (const auto& o : orphans) EXPECT_EQ(std::count(left.begin(), left.end(), o), 0) << o;
  for (const auto& [node, state] : plan_states()) EXPECT_EQ(state, "cached") << node;
  EXPECT_EQ(qsweep({"cache", "verify"}).exit_code, 0);
}

TEST_F(InspectTest, SchemaIsValidJsonMatchingTheShippedFile) {
  ProcResult r = qsweep({"schema"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  json schema = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(schema.is_object()) << r.out.substr(0, 500);
  EXPECT_TRUE(schema.contains("$schema"));
  EXPECT_TRUE(schema["properties"].contains("stages"));
  const fs::path shipped = source_dir() / "docs" / "experiment.schema.json";
  if (!fs::exists(shipped))
    GTEST_SKIP() << shipped << " does not exist: nothing to compare `qsweep schema` with";
  json file = json::parse(read_file(shipped), nullptr, false);
  ASSERT_FALSE(file.is_discarded()) << shipped << " is not valid JSON";
  EXPECT_EQ(schema, file) << shipped << " is out of date: regenerate it with `qsweep schema > " << shipped << "`";
}

}  // namespace
}  // namespace qsweep::testing

namespace qsweep::testing {
namespace {

// `qsweep model random`: a loadable folder of the config's tensors, the same
// bytes for the same seed, other bytes for another; bad dtype named.
TEST(ModelRandom, WritesALoadableDeterministicFolder) {
  TempDir tmp;
  const fs::path cfg = source_dir() / "tests/fixtures/models/qwen2/config.json";  // biases too
  auto make = [&](const std::string& out, const std::string& seed) {
    return run_command({qsweep_bin().string(), "model", "random", cfg.string(), (tmp / out).string(), "--seed", seed,
                        "--dtype", "float32"});
  };
  const ProcResult a = make("a", "7");
  ASSERT_EQ(a.exit_code, 0) << describe(a);
  ASSERT_EQ(make("b", "7").exit_code, 0);
  ASSERT_EQ(make("c", "8").exit_code, 0);
  EXPECT_EQ(read_file(tmp / "a/model.safetensors"), read_file(tmp / "b/model.safetensors"));
  EXPECT_NE(read_file(tmp / "a/model.safetensors"), read_file(tmp / "c/model.safetensors"));
  EXPECT_EQ(read_file(tmp / "a/config.json"), read_file(cfg));
  // The same tensor names and shapes as the transformers-made fixture.
  auto header = [](const fs::path& f) {
    const std::string b = read_file(f);
    uint64_t n = 0;
    std::memcpy(&n, b.data(), 8);
    std::map<std::string, nlohmann::json> shapes;
    const nlohmann::json h = nlohmann::json::parse(b.substr(8, n));
    for (const auto& [k, v] : h.items())
      if (k != "__metadata__") shapes[k] = v["shape"];
    return shapes;
  };
  EXPECT_EQ(header(tmp / "a/model.safetensors"),
            header(source_dir() / "tests/fixtures/models/qwen2/model.safetensors"));
  const ProcResult bad = run_command({qsweep_bin().string(), "model", "random", cfg.string(), (tmp / "d").string(),
                                      "--dtype", "int3"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.err, ::testing::HasSubstr("--dtype: 'int3'")) << describe(bad);
}

}  // namespace
}  // namespace qsweep::testing
