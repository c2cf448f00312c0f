// The shipped experiments/quickstart.yaml on the local mirror of the Hub
// (../shared/data): a real run, an all-hit rerun, and its results table.

#include <filesystem>
#include <map>
#include <sstream>

#include <gmock/gmock.h>

#include "tests/e2e/e2e_util.h"

namespace qsweep::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class QuickstartTest : public E2ETest {};

TEST_F(QuickstartTest, RunsRerunsFromCachePrintsItsTableAndPassesItsRegressionManifest) {
  const fs::path data = shared_data_dir();
  if (data.empty())
    GTEST_SKIP() << "../shared/data (the local mirror of the Hugging Face Hub files) is absent "
                    "next to the source tree; the quickstart would download from the network";
  const fs::path yaml = source_dir() / "experiments" / "quickstart.yaml";
  ASSERT_TRUE(fs::exists(yaml)) << yaml;
  const std::vector<std::string> base = {qsweep_bin().string(), "run", yaml.string(), "--progress",
                                         "lines", "--cache", cache().string()};
  const std::map<std::string, std::string> env = {{"QSWEEP_HUB_MIRROR", data.string()}};

  ProcResult r = run_command(base, 600, dir_.path(), env);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  Journal j = journal();
  const std::vector<std::string> recipes = {"rtn-w8", "rtn-w4", "gptq-w4", "awq-w4"};
  const std::vector<std::string> tasks = {"truthfulqa_mc2", "gsm8k"};
  std::vector<std::string> want = {"fetch[stories260K]", "hf[stories260K]", "text[stories260K]",
                                   "calib[stories260K]", "tables"};
  for (const auto& r : recipes) {
    want.push_back("quantize[stories260K," + r + "]");
    want.push_back("quality[stories260K," + r + "]");
    for (const auto& t : tasks) {
      want.push_back("infer[stories260K," + r + "," + t + "]");
      want.push_back("score[stories260K," + r + "," + t + "]");
    }
  }
  for (const auto& t : tasks)
    for (const char* s : {"data[", "infer_fp32[stories260K,", "score_fp32[stories260K,"})
      want.push_back(s + t + "]");
  EXPECT_THAT(j.nodes(j.last_run(), "node_done"), ::testing::UnorderedElementsAreArray(want));

  // quantize nodes kept their finished layers in scratch/<key>/ while they
  // ran; publishing removed them.
  EXPECT_TRUE(!fs::exists(cache() / "scratch") || fs::is_empty(cache() / "scratch"));

  // The run ends with the table and the paths of its files.
  const std::string key = j.keys()["tables"];
  const fs::path out = cache() / "objects" / key.substr(0, 2) / key / "out";
  const std::string md = read_file(out / "table.md");
  ASSERT_FALSE(md.empty());
  EXPECT_THAT(r.out, HasSubstr("\ntables\n" + md)) << describe(r);
  for (const char* f : {"table.md", "table.csv", "table.tex", "table.json", "report.html"}) {
    EXPECT_THAT(r.out, HasSubstr("  " + (out / f).string() + "\n")) << f;
    EXPECT_TRUE(fs::is_regular_file(out / f)) << f;
  }
  EXPECT_THAT(md, HasSubstr("| stories260K | FP32    | W32A32   |"));
  EXPECT_THAT(md, HasSubstr("† computed with --limit 200"));

  ProcResult again = run_command(base, 60, dir_.path(), env);
  ASSERT_EQ(again.exit_code, 0) << describe(again);
  EXPECT_LT(again.seconds, 1.0) << describe(again);
  EXPECT_THAT(again.err, HasSubstr("all 35 node(s) cached")) << describe(again);
  EXPECT_THAT(again.out, HasSubstr(md)) << "the cached table is printed too";
  EXPECT_EQ(journal().events("", "node_start").size(), 35u);

  // Rows in recipe order; mean KL: 8-bit far below 4-bit, GPTQ and AWQ below
  // RTN at 4 bits.
  const json t = json::parse(read_file(out / "table.json"));
  std::vector<std::string> rows;
  std::map<std::string, double> kl;
  for (const auto& row : t["rows"]) {
    rows.push_back(row["keys"]["recipe"].get<std::string>());
    if (row["cells"].contains("kl_vs_fp32:mean_kl"))
      kl[rows.back()] = row["cells"]["kl_vs_fp32:mean_kl"]["value"].get<double>();
  }
  EXPECT_THAT(rows, ElementsAre("FP32", "rtn-w8", "rtn-w4", "gptq-w4", "awq-w4"));
  EXPECT_LT(kl["rtn-w8"] * 20, kl["rtn-w4"]);
  EXPECT_LT(kl["gptq-w4"], kl["rtn-w4"]);
  EXPECT_LT(kl["awq-w4"], kl["rtn-w4"]);

  // The regression manifest: every cell matches, every finding holds; no
  // node runs again.
  const fs::path manifest = source_dir() / "experiments" / "quickstart_manifest.yaml";
  ProcResult rep = run_command({qsweep_bin().string(), "reproduce", manifest.string(), "--progress", "none",
                                "--cache", cache().string(), "--out", (dir_.path() / "rep").string()},
                               120, dir_.path(), env);
  ASSERT_EQ(rep.exit_code, 0) << describe(rep);
  EXPECT_THAT(rep.out, HasSubstr("0 drift, 0 missing -> PASS")) << describe(rep);
  const json rj = json::parse(read_file(dir_.path() / "rep" / "reproduction.json"));
  EXPECT_EQ(rj["counts"]["drift"], 0);
  for (const auto& f : rj["findings"]) EXPECT_EQ(f["verdict"], "supported") << f.dump(2);
  EXPECT_TRUE(fs::is_regular_file(dir_.path() / "rep" / "report.html"));
  EXPECT_EQ(journal().events("", "node_start").size(), 35u);
}

}  // namespace
}  // namespace qsweep::testing
