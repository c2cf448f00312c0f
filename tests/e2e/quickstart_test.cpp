// The shipped experiments/quickstart.yaml on the local mirror of the Hub
// (../shared/data): a real run, an all-hit rerun, and its results table.

#include <filesystem>
#include <sstream>

#include <gmock/gmock.h>

#include "tests/e2e/e2e_util.h"

namespace qsweep::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class QuickstartTest : public E2ETest {};

TEST_F(QuickstartTest, RunsRerunsFromCacheAndTabulatesThreeRecipes) {
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
  EXPECT_THAT(j.nodes(j.last_run(), "node_done"),
              ElementsAre("fetch[stories260K]", "header[stories260K]", "rtn[stories260K,rtn-w4g128-asym]",
                          "rtn[stories260K,rtn-w4g32]", "rtn[stories260K,rtn-w8]", "table"));

  ProcResult again = run_command(base, 60, dir_.path(), env);
  ASSERT_EQ(again.exit_code, 0) << describe(again);
  EXPECT_LT(again.seconds, 1.0) << describe(again);
  EXPECT_THAT(again.err, HasSubstr("all 6 node(s) cached")) << describe(again);
  EXPECT_EQ(journal().events("", "node_start").size(), 6u);

  const std::string key = j.keys()["table"];
  const std::string md = read_file(cache() / "objects" / key.substr(0, 2) / key / "out" / "results.md");
  std::vector<std::string> rows;
  std::istringstream in(md);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("| rtn-", 0) == 0) rows.push_back(line.substr(0, line.find(" |", 2)));
  EXPECT_THAT(rows, ElementsAre("| rtn-w8", "| rtn-w4g32", "| rtn-w4g128-asym")) << md;
  EXPECT_THAT(md, HasSubstr("| recipe | bits | group |")) << md;
}

}  // namespace
}  // namespace qsweep::testing
