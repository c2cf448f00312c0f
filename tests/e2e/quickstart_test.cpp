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

TEST_F(QuickstartTest, RunsRerunsFromCacheAndTabulatesFourRecipes) {
  const fs::path data = shared_data_dir();
  if (data.empty())
    GTEST_SKIP() << "../shared/data (the local mirror of the Hugging Face Hub files) is absent "
                    "next to the source tree; the quickstart would download from the network";
  const fs::path yaml = source_dir() / "experiments" / "quickstart.yaml";
  ASSERT_TRUE(fs::exists(yaml)) << yaml;
  const std::vector<std::string> base = {qsweep_bin().string(), "run", yaml.string(), "--progress",
                                         "lines", "--cache", cache().string()};
  const std::map<std::string, std::string> env = {{"QSWEEP_HUB_MIRROR", data.string()}};

  ProcResult r = run_command(base, 120, dir_.path(), env);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  Journal j = journal();
  const std::vector<std::string> recipes = {"rtn-w8", "rtn-w4", "gptq-w4", "awq-w4"};
  std::vector<std::string> want = {"fetch[stories260K]", "hf[stories260K]", "text[stories260K]",
                                   "calib[stories260K]", "table"};
  for (const auto& r : recipes) {
    want.push_back("quantize[stories260K," + r + "]");
    want.push_back("quality[stories260K," + r + "]");
  }
  EXPECT_THAT(j.nodes(j.last_run(), "node_done"), ::testing::UnorderedElementsAreArray(want));

  // quantize nodes kept their finished layers in scratch/<key>/ while they
  // ran; publishing removed them.
  EXPECT_TRUE(!fs::exists(cache() / "scratch") || fs::is_empty(cache() / "scratch"));

  ProcResult again = run_command(base, 60, dir_.path(), env);
  ASSERT_EQ(again.exit_code, 0) << describe(again);
  EXPECT_LT(again.seconds, 1.0) << describe(again);
  EXPECT_THAT(again.err, HasSubstr("all 13 node(s) cached")) << describe(again);
  EXPECT_EQ(journal().events("", "node_start").size(), 13u);

  const std::string key = j.keys()["table"];
  const std::string md = read_file(cache() / "objects" / key.substr(0, 2) / key / "out" / "results.md");
  ASSERT_FALSE(md.empty());
  std::vector<std::string> rows;
  std::map<std::string, double> kl;
  std::istringstream in(md);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("| stories260K | ", 0) == 0) {
      std::istringstream cells(line);
      std::string c0, c1, c2, c3;
      std::getline(cells, c0, '|');
      std::getline(cells, c1, '|');
      std::getline(cells, c2, '|');
      std::getline(cells, c3, '|');
      rows.push_back(c2.substr(1, c2.size() - 2));
      // mean KL: 8-bit far below 4-bit; GPTQ and AWQ below RTN at 4 bits
      kl[rows.back()] = std::stod(c3);
    }
  EXPECT_THAT(rows, ElementsAre("rtn-w8", "rtn-w4", "gptq-w4", "awq-w4")) << md;
  EXPECT_LT(kl["rtn-w8"] * 20, kl["rtn-w4"]) << md;
  EXPECT_LT(kl["gptq-w4"], kl["rtn-w4"]) << md;
  EXPECT_LT(kl["awq-w4"], kl["rtn-w4"]) << md;
  EXPECT_THAT(md, HasSubstr("| model | recipe | mean KL (nats) |")) << md;
}

}  // namespace
}  // namespace qsweep::testing
