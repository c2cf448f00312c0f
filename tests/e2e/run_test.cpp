// Fresh runs, all-hit reruns, and which nodes an edit invalidates.

#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>

#include <gmock/gmock.h>

#include "tests/e2e/e2e_util.h"

namespace qsweep::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

class RunTest : public SweepTest {};

TEST_F(RunTest, FreshRunComputesEveryNodeAndRerunIsAllHits) {
  ProcResult r = run();
  ASSERT_EQ(r.exit_code, 0) << describe(r);

  Journal j = journal();
  EXPECT_EQ(j.bad_lines, 0u);
  ASSERT_EQ(j.runs().size(), 1u);
  const std::string first = j.last_run();
  EXPECT_EQ(j.nodes(first, "node_start"), all_nodes());
  EXPECT_EQ(j.nodes(first, "node_done"), all_nodes());
  EXPECT_TRUE(j.events(first, "node_failed").empty());
  ASSERT_EQ(j.events(first, "run_end").size(), 1u);
  EXPECT_EQ(j.events(first, "run_end")[0].value("status", ""), "ok");
  EXPECT_EQ(object_keys(cache()).size(), all_nodes().size());

  // The table saw every recipe, in matrix order.
  auto keys = j.keys();
  std::string table = read_file(cache() / "objects" / keys["table"].substr(0, 2) / keys["table"] / "out" / "table.txt");
  EXPECT_EQ(table,
            "bits=8 group=0 data=hello world\n"
            "bits=4 group=32 data=hello world\n"
            "bits=4 group=128 data=hello world\n");

  // Second run: nothing to do, and fast.
  ProcResult again = run();
  ASSERT_EQ(again.exit_code, 0) << describe(again);
  EXPECT_LT(again.seconds, 1.0) << describe(again);
  EXPECT_THAT(again.all(), HasSubstr("all 5 node(s) cached")) << describe(again);
  Journal j2 = journal();
  EXPECT_EQ(j2.events("", "node_start").size(), all_nodes().size()) << "the all-hit run started work";
  for (const auto& run : j2.runs())
    if (run != first) {
      EXPECT_TRUE(j2.events(run, "node_start").empty()) << "run " << run;
    }

  ProcResult plan = qsweep({"plan", exp().string()});
  ASSERT_EQ(plan.exit_code, 0) << describe(plan);
  EXPECT_THAT(plan.out, HasSubstr("5 nodes: 5 cached, 0 to-run, 0 blocked")) << plan.out;
  for (const auto& [node, state] : plan_states()) EXPECT_EQ(state, "cached") << node;
}

TEST_F(RunTest, EditedRecipeRerunsOnlyItsNodesAndDownstream) {
  ASSERT_EQ(run().exit_code, 0);
  const size_t runs_before = journal().runs().size();

  // r2: bits 4 -> 3
  std::string yaml = k_yaml;
  yaml.replace(yaml.find("r2: {bits: 4"), 12, "r2: {bits: 3");
  write_exp(yaml);
  ASSERT_THAT(read_file(exp()), HasSubstr("r2: {bits: 3, group: 32}"));
  auto states = plan_states();
  EXPECT_EQ(states["gen"], "cached");
  EXPECT_EQ(states["quant[r1]"], "cached");
  EXPECT_EQ(states["quant[r2]"], "to-run");
  EXPECT_EQ(states["quant[r3]"], "cached");
  EXPECT_EQ(states["table"], "blocked");

  ProcResult r = run();
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  Journal j = journal();
  ASSERT_EQ(j.runs().size(), runs_before + 1);
  EXPECT_THAT(j.nodes(j.last_run(), "node_start"), ElementsAre("quant[r2]", "table"));
  auto keys = j.keys();
  EXPECT_THAT(read_file(cache() / "objects" / keys["table"].substr(0, 2) / keys["table"] / "out" / "table.txt"),
              HasSubstr("bits=3 group=32"));
}

// The same experiment in another layout: key order, flow vs block style,
// comments, quoting, explicit defaults. No key may change.
constexpr const char* k_reformatted = R"~(# the same sweep, written differently
name: e2e-sweep      # name before version
version: 1
stages:
  - params:
      outputs:
        - data.txt
      argv:
        - sh
        - ${inputs.script}
        - ${output_dir}
        - '${vars.greeting}'
      env: {}          # the default, spelled out
      timeout_s: 0     # likewise
    kind: command
    inputs:
      script: file:gen.sh
    name: gen

  - name: quant
    inputs: {script: "file:quant.sh", data: "gen"}
    matrix:
      recipe: "*"
    kind: command
    params: {outputs: [q.txt], argv: [sh, "${inputs.script}", "${inputs.data}/data.txt",
             "${recipe.bits}", "${recipe.group}", "${output_dir}"]}
  - kind: command
    name: table
    params:
      outputs: [table.txt]
      argv:
        - sh
        - "${inputs.script}"
        - "${output_dir}/table.txt"
        - "${inputs.runs}"
    inputs:
      script: "file:table.sh"
      runs:
        - quant[*]
recipes:
  r1:
    group: 0
    bits: 8
  r2: {group: 32, bits: 4}
  r3: {bits: 4,
       group: 128}
vars: {greeting: "hello"}
)~";

TEST_F(RunTest, ReformattedYamlChangesNoKey) {
  ASSERT_EQ(run().exit_code, 0);
  Journal before = journal();

  write_exp(k_reformatted);
  auto states = plan_states();
  ASSERT_EQ(states.size(), all_nodes().size());
  for (const auto& [node, state] : states) EXPECT_EQ(state, "cached") << node;

  ProcResult r = run();
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_THAT(r.all(), HasSubstr("all 5 node(s) cached")) << describe(r);
  EXPECT_EQ(journal().events("", "node_start").size(), before.events("", "node_start").size());
}

TEST_F(RunTest, ChangedFileInputRerunsItsUsersOnly) {
  ASSERT_EQ(run().exit_code, 0);

  // A new mtime with the same content changes nothing.
  struct timespec times[2] = {{0, UTIME_OMIT}, {1'900'000'000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path("quant.sh").c_str(), times, 0), 0);
  ProcResult same = run();
  ASSERT_EQ(same.exit_code, 0) << describe(same);
  EXPECT_THAT(same.all(), HasSubstr("all 5 node(s) cached")) << describe(same);

  // New content: the three quant nodes and the table (their consumer) rerun.
  write("quant.sh", std::string("# v2\n") + k_quant);
  ProcResult r = run();
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  Journal j = journal();
  EXPECT_THAT(j.nodes(j.last_run(), "node_start"),
              ElementsAre("quant[r1]", "quant[r2]", "quant[r3]", "table"));
  write("quant.sh", std::string("# v3\n") + k_quant);
  ProcResult why = qsweep({"explain", exp().string(), "quant[r1]"});
  EXPECT_THAT(why.out, HasSubstr("input:script: file:")) << why.out;
  EXPECT_THAT(why.out, Not(HasSubstr("params."))) << why.out;
  write("quant.sh", std::string("# v2\n") + k_quant);

  // table.sh is used by the table only.
  write("table.sh", std::string("# v2\n") + k_table);
  ASSERT_EQ(run().exit_code, 0);
  j = journal();
  EXPECT_THAT(j.nodes(j.last_run(), "node_start"), ElementsAre("table"));
}

}  // namespace
}  // namespace qsweep::testing
