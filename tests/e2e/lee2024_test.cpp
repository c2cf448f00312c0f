// experiments/lee2024/: the full sweep of Lee et al. 2024 plans anywhere
// (offline, the Hub revisions stay unresolved and are shown as such), and
// every published cell of its manifest names a row and task that the sweep
// measures: a score node for each lm-eval cell, a judge node (GPT-4 grading
// the MT-Bench answers) for each Table 4 cell.

#include <set>

#include <gmock/gmock.h>

#include "scoring/tables/reproduce.h"
#include "tests/e2e/e2e_util.h"

namespace qsweep::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class Lee2024Test : public E2ETest {};

TEST_F(Lee2024Test, ManifestCellsAreMeasuredByTheSweepAndReproducePlanShowsIt) {
  const fs::path dir = source_dir() / "experiments" / "lee2024";
  ProcResult p = run_command({qsweep_bin().string(), "plan", (dir / "sweep.yaml").string(), "--json", "--cache",
                              cache().string()},
                             240, dir_.path());
  ASSERT_EQ(p.exit_code, 0) << describe(p);
  const json plan = json::parse(p.out);
  std::set<std::string> ids;
  for (const auto& n : plan["nodes"]) ids.insert(n["id"].get<std::string>());
  EXPECT_EQ(ids.size(), 961u);
  const auto m = scoring::tables::load_manifest(dir / "manifest.yaml");
  size_t checked = 0;
  for (const auto& r : m.rows) {
    const std::string model = r.row["model"], recipe = r.row["recipe"];
    for (const auto& [col, v] : r.values) {
      const auto* c = m.column(col);
      ASSERT_NE(c, nullptr);
      std::string node;
      if (c->task == "mt_bench")
        node = recipe == "fp16" ? "judge_fp16[" + model + "]" : "judge[" + model + "," + recipe + "]";
      else
        node = recipe == "fp16" ? "score_fp16[" + model + "," + c->task + "]"
                                : "score[" + model + "," + recipe + "," + c->task + "]";
      EXPECT_TRUE(ids.count(node)) << r.table << " (line " << r.line << "): no node " << node;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 35u * 6 * 2 + 24u * 3);  // every published cell (the 70 averages are derived)

  ProcResult rp = run_command({qsweep_bin().string(), "reproduce", (dir / "manifest.yaml").string(), "--plan",
                               "--cache", cache().string()},
                              240, dir_.path());
  ASSERT_EQ(rp.exit_code, 0) << describe(rp);
  EXPECT_THAT(rp.out, HasSubstr("94 published rows, 562 cells over 15 columns; 4 findings (14 checks)"));
  EXPECT_THAT(rp.out, HasSubstr("lee2024: 961 nodes:"));
  EXPECT_THAT(rp.out, HasSubstr("tables  "));
}

}  // namespace
}  // namespace qsweep::testing
