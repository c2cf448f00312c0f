// Manifests and reproduction verdicts (scoring/tables/reproduce.h): parse
// errors with file:line:col, the verdict rules, findings' checks, and the
// complete Lee et al. 2024 manifest checked on its own published numbers
// against scripts/lee2024/check_findings.py (its output is the fixture
// tests/fixtures/lee2024/check_findings.txt).

#include <fstream>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>

#include "scoring/tables/reproduce.h"
#include "scoring/tables/table.h"
#include "tests/scoring/tables_test_util.h"
#include "tests/testutil.h"

namespace qsweep::scoring::tables {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;
using qsweep::testing::TempDir;
using qsweep::testing::write_file;

const char* k_manifest = R"(version: 1
name: two-rows
title: "Two rows"
experiment: exp.yaml
table: tables
baseline: {recipe: BF16}
tolerance: {abs: 0.5, k_stderr: 2}
columns:
  arc: {task: arc, metric: "acc_norm,none", scale: 100}
  gsm: {task: gsm, metric: "exact_match,strict-match", scale: 100, tolerance: {rel: 0.1}}
  gsm_flex: {task: gsm, metric: "exact_match,flexible-extract", scale: 1}
rows:
  - table: "Table 1"
    row: {model: m, recipe: BF16}
    values: {arc: 50.3, gsm: 21.9}
    average: 36.0
  - table: "Table 1"
    row: {model: m, recipe: q4}
    values: {arc: 47.5, gsm: 30.0, gsm_flex: 26}
  - table: "Table 1"
    row: {model: m, recipe: q8}
    values: {arc: 50}
findings:
  - id: q4-loses-on-arc
    text: "q4 loses on ARC"
    checks:
      - {kind: beats, a: {model: m, recipe: BF16}, b: {model: m, recipe: q4}, columns: [arc]}
  - id: q4-wins-on-gsm
    text: "q4 gains on GSM8K relative to its baseline"
    checks:
      - {kind: mean_greater, a: {recipe: "q*"}, b: {recipe: BF16}, columns: [gsm], "on": value, margin: 1}
  - id: q8
    text: "q8 beats BF16"
    checks:
      - {kind: beats, a: {recipe: q8}, b: {recipe: BF16}}
)";

json measured_table() {
  return build_table(two_row_scores(), two_row_models(), layout_mr()).to_json();
}

TEST(Reproduce, VerdictsPerCellAndAverage) {
  TempDir d;
  write_file(d / "m.yaml", k_manifest);
  const Manifest m = load_manifest(d / "m.yaml");
  EXPECT_EQ(m.experiment, fs::absolute(d.path()) / "exp.yaml");
  ASSERT_EQ(m.columns.size(), 3u);
  EXPECT_EQ(m.columns[1].tolerance.rel, 0.1);
  EXPECT_EQ(m.columns[1].tolerance.abs, 0.5);  // the default, kept
  const json rep = reproduce(m, measured_table());
  std::map<std::string, std::string> v;
  for (const auto& c : rep["cells"])
    v[c["row"]["recipe"].get<std::string>() + "/" + c["column"].get<std::string>()] = c["verdict"];
  EXPECT_EQ(v["BF16/arc"], "match");           // 50.0 vs 50.3: |d| 0.3 <= 0.5
  EXPECT_EQ(v["BF16/gsm"], "match");           // 20.0 vs 21.9: 1.9 <= rel 0.1 x 21.9
  EXPECT_EQ(v["BF16/average"], "within_noise");  // 35.0 vs 36.0: 1.0 <= 2 x sqrt(1^2+4^2)/2
  EXPECT_EQ(v["q4/arc"], "within_noise");      // 45.0 vs 47.5: 2.5 <= 2 x 1.5
  EXPECT_EQ(v["q4/gsm"], "within_noise");      // 25.0 vs 30.0: 5 > rel 0.1 x 30, <= 2 x 4.3
  EXPECT_EQ(v["q4/gsm_flex"], "drift");        // scale 1: 0.26 vs 26
  EXPECT_EQ(v["q8/arc"], "missing");
  EXPECT_EQ(rep["counts"], json({{"match", 2}, {"within_noise", 3}, {"drift", 1}, {"missing", 1}}));
  EXPECT_FALSE(reproduction_passes(rep));
  const json& f = rep["findings"];
  EXPECT_EQ(f[0]["verdict"], "supported");
  EXPECT_EQ(f[1]["verdict"], "supported");     // 25 > 20 + 1
  EXPECT_DOUBLE_EQ(f[1]["checks"][0]["mean_a"].get<double>(), 25.0);
  EXPECT_EQ(f[2]["verdict"], "undetermined");  // no measured q8 row
  const std::string md = reproduction_markdown(rep, 2);
  EXPECT_NE(md.find("| m / q4 | gsm | 30.00 | 25.00 | 4.30 | -5.00 | within_noise |"), std::string::npos) << md;
  EXPECT_NE(md.find("Cells: 2 match, 3 within noise, 1 drift, 1 missing."), std::string::npos) << md;
}

TEST(Reproduce, LimitedMeasurementsAreFlagged) {
  auto scores = two_row_scores();
  scores[0].limit = 10;
  TempDir d;
  write_file(d / "m.yaml", k_manifest);
  const json rep = reproduce(load_manifest(d / "m.yaml"), build_table(scores, two_row_models(), layout_mr()).to_json());
  EXPECT_TRUE(rep["cells"][0]["limited"].get<bool>());
  EXPECT_NE(reproduction_markdown(rep, 2).find("| match † |"), std::string::npos);
}

void expect_error(const std::string& text, const std::string& want) {
  TempDir d;
  write_file(d / "bad.yaml", text);
  try {
    load_manifest(d / "bad.yaml");
    ADD_FAILURE() << "no error for:\n" << text;
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(want), std::string::npos) << msg;
    EXPECT_EQ(msg.rfind((d / "bad.yaml").string(), 0), 0u) << msg;
  }
}

TEST(Reproduce, ManifestErrorsNameFileLineAndField) {
  const std::string base = k_manifest;
  std::string t = base;
  t.replace(t.find("values: {arc: 50}"), 17, "values: {arc: fifty}");
  expect_error(t, ":22:19: rows[2].values.arc: expected a number, got 'fifty'");
  t = base;
  t.replace(t.find("values: {arc: 50}"), 17, "values: {ark: 50}");
  expect_error(t, ":22:14: rows[2].values.ark: no such column in `columns`");
  expect_error(base + "colums: {}\n", "colums: unknown key");
  t = base;
  t.replace(t.find("tolerance: {abs: 0.5"), 20, "tolerance: {absolute: 0.5");
  expect_error(t, "tolerance.absolute: unknown tolerance (abs, rel, k_stderr)");
  t = base;
  t.replace(t.find("kind: beats"), 11, "kind: better");
  expect_error(t, "findings[0].checks[0].kind: 'better' is not beats or mean_greater");
  expect_error("version: 1\nname: x\n", "experiment: missing");
  expect_error("[1, 2", "");  // YAML syntax: a message, no crash
  TempDir d;
  EXPECT_THROW(load_manifest(d / "absent.yaml"), std::runtime_error);
}

TEST(Reproduce, Lee2024ManifestIsCompleteAndItsFindingsHoldOnThePaper) {
  const fs::path path = qsweep::testing::source_dir() / "experiments" / "lee2024" / "manifest.yaml";
  const Manifest m = load_manifest(path);
  size_t t2 = 0, t3 = 0, t4 = 0, cells = 0;
  for (const auto& r : m.rows) {
    t2 += r.table == "Table 2";
    t3 += r.table == "Table 3";
    t4 += r.table == "Table 4";
    cells += r.values.size();
  }
  // PAPER_TABLES.md: 35 rows in Tables 2 and 3 (6 tasks each), 8 models x 3
  // methods in Table 4 (turn 1, turn 2, average).
  EXPECT_EQ(t2, 35u);
  EXPECT_EQ(t3, 35u);
  EXPECT_EQ(t4, 24u);
  EXPECT_EQ(cells, 35u * 6 + 35u * 6 + 24u * 3);
  EXPECT_EQ(m.columns.size(), 15u);
  // A few cells verbatim from PAPER_TABLES.md.
  auto value = [&](const std::string& table, const std::string& model, const std::string& recipe,
                   const std::string& col) {
    for (const auto& r : m.rows)
      if (r.table == table && r.row["model"] == model && r.row["recipe"] == recipe)
        for (const auto& [c, v] : r.values)
          if (c == col) return v;
    return -1.0;
  };
  EXPECT_DOUBLE_EQ(value("Table 2", "vicuna-7b-v1.3", "fp16", "arc_challenge"), 47.70);
  EXPECT_DOUBLE_EQ(value("Table 3", "llama-3.1-405b-instruct", "sq-gptq-w8a8", "leaderboard_mmlu_pro"), 26.41);
  EXPECT_DOUBLE_EQ(value("Table 4", "llama-2-7b-chat", "gptq-w4g128-autogptq", "mt_bench_turn2"), 4.989);

  // The findings' checks on the published numbers, against the Python reference.
  const json rep = reproduce(m, published_table(m));
  EXPECT_EQ(rep["counts"]["match"], cells + 70);  // every cell and every published average
  std::ifstream in(qsweep::testing::source_dir() / "tests" / "fixtures" / "lee2024" / "check_findings.txt");
  std::string line;
  const std::regex re_check(R"(^\s+(supported|contradicted)\s+(\S+) #(\d+): (.*)$)");
  const std::regex re_beats(R"(on (\d+)/(\d+) columns)");
  const std::regex re_mean(R"(mean a (-?[0-9.]+) \((\d+) cells\) vs mean b (-?[0-9.]+) \((\d+) cells\))");
  size_t compared = 0;
  while (std::getline(in, line)) {
    std::smatch mt;
    if (!std::regex_match(line, mt, re_check)) continue;
    const json* finding = nullptr;
    for (const auto& f : rep["findings"])
      if (f["id"] == mt[2].str()) finding = &f;
    ASSERT_NE(finding, nullptr) << line;
    const json& check = (*finding)["checks"][std::stoi(mt[3]) - 1];
    EXPECT_EQ(check["verdict"], mt[1].str()) << line << "\n" << check.dump();
    const std::string detail = mt[4];
    std::smatch d;
    if (std::regex_search(detail, d, re_beats)) {
      EXPECT_EQ(check["wins"], std::stoi(d[1])) << line;
      EXPECT_EQ(check["compared"], std::stoi(d[2])) << line;
    } else if (std::regex_search(detail, d, re_mean)) {
      EXPECT_NEAR(check["mean_a"].get<double>(), std::stod(d[1]), 5e-4) << line;
      EXPECT_EQ(check["n_a"], std::stoi(d[2])) << line;
      EXPECT_NEAR(check["mean_b"].get<double>(), std::stod(d[3]), 5e-4) << line;
      EXPECT_EQ(check["n_b"], std::stoi(d[4])) << line;
    } else {
      ADD_FAILURE() << "unparsed reference line: " << line;
    }
    ++compared;
  }
  EXPECT_EQ(compared, 14u);
}

}  // namespace
}  // namespace qsweep::scoring::tables
