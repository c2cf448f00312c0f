// The table builder and its text formats (scoring/tables/table.h,
// formats.h) on hand-made score and model inputs with hand-computed values.

#include <gtest/gtest.h>

#include "scoring/tables/formats.h"
#include "scoring/tables/table.h"
#include "tests/scoring/tables_test_util.h"

namespace qsweep::scoring::tables {
namespace {

using json = nlohmann::json;

TEST(Tables, RowsColumnsBaselineDiffsAndAverage) {
  const Table t = build_table(two_row_scores(), two_row_models(), layout_mr());
  ASSERT_EQ(t.columns.size(), 2u);
  EXPECT_EQ(t.columns[0].id, "arc");
  EXPECT_EQ(t.columns[0].metric, "acc_norm,none");  // preferred over acc
  EXPECT_EQ(t.columns[1].metric, "exact_match,strict-match");
  EXPECT_EQ(t.columns[0].scale, 100);
  ASSERT_EQ(t.rows.size(), 2u);
  const json& base = t.rows[0];
  const json& q = t.rows[1];
  EXPECT_TRUE(base["baseline"].get<bool>());
  EXPECT_EQ(base["id"], "m / BF16");  // the baseline's missing recipe axis: its dtype
  EXPECT_EQ(q["id"], "m / q4");
  EXPECT_EQ(q["baseline_row"], "m / BF16");
  EXPECT_DOUBLE_EQ(q["cells"]["arc"]["value"].get<double>(), 45.0);
  EXPECT_DOUBLE_EQ(q["cells"]["arc"]["diff"].get<double>(), -5.0);
  EXPECT_DOUBLE_EQ(q["cells"]["arc"]["stderr"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(q["cells"]["gsm"]["diff"].get<double>(), 5.0);
  EXPECT_TRUE(base["cells"]["arc"]["diff"].is_null());
  EXPECT_DOUBLE_EQ(base["average"]["value"].get<double>(), 35.0);
  EXPECT_DOUBLE_EQ(q["average"]["value"].get<double>(), 35.0);
  EXPECT_DOUBLE_EQ(q["average"]["diff"].get<double>(), 0.0);
  // Bits: the baseline from its dtype, the quantized weights from the recipe,
  // activations "as the model" = the baseline's 16.
  EXPECT_EQ(bits_label(base), "W16A16");
  EXPECT_EQ(bits_label(q), "W4A16");
  EXPECT_DOUBLE_EQ(base["storage"]["nominal_bytes"].get<double>(), 2000.0);  // 1000 params x 16 bit
  EXPECT_DOUBLE_EQ(q["storage"]["nominal_bytes"].get<double>(), 500.0);      // x 4 bit
  EXPECT_EQ(q["storage"]["measured_bytes"], 600);
  EXPECT_EQ(q["cells"]["arc"]["provenance"]["score_key"], "k-m-q4-arc");
  EXPECT_TRUE(t.notes.empty());
}

TEST(Tables, MarkdownCsvLatexShowTheSameDigits) {
  const Table t = build_table(two_row_scores(), two_row_models(), layout_mr());
  const std::string md = to_markdown(t);
  EXPECT_NE(md.find("| m     | BF16   | W16A16   |          2.0 kB |         2.0 kB |       50.00 |       20.00 |       35.00 |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| m     | q4     | W4A16    |           600 B |          500 B | 45.00 ▼5.00 | 25.00 ▲5.00 | 35.00 ±0.00 |"),
            std::string::npos)
      << md;
  const std::string csv = to_csv(t);
  EXPECT_NE(csv.find("m,q4,false,gptq,autogptq,4,16,600,500,1000,45,1.5,-5,100,,,\"acc_norm,none\",25,"),
            std::string::npos)
      << csv;
  const std::string tex = to_latex(t);
  EXPECT_NE(tex.find("\\begin{tabular}{lllrrrrr}"), std::string::npos) << tex;
  EXPECT_NE(tex.find("m & q4 & W4A16 & 600 B & 500 B & 45.00\\,{\\scriptsize$\\downarrow$5.00} & "
                     "25.00\\,{\\scriptsize$\\uparrow$5.00} & 35.00\\,{\\scriptsize$\\pm$0.00} \\\\"),
            std::string::npos)
      << tex;
  EXPECT_NE(tex.find("\\bottomrule"), std::string::npos);
}

TEST(Tables, LimitedAndFewshotCellsAreMarkedInEveryFormat) {
  auto scores = two_row_scores();
  scores[2].limit = 20;
  scores[2].fewshot_from_eval_split = true;
  const Table t = build_table(scores, two_row_models(), layout_mr());
  const json& cell = t.rows[1]["cells"]["arc"];
  EXPECT_EQ(cell["limit"], 20);
  EXPECT_EQ(cell["flags"], json({"limited", "fewshot_from_eval_split"}));
  ASSERT_FALSE(t.notes.empty());
  EXPECT_NE(t.notes[0].find("† computed with --limit 20"), std::string::npos);
  EXPECT_NE(to_markdown(t).find("45.00 ▼5.00†‡"), std::string::npos) << to_markdown(t);
  EXPECT_NE(to_csv(t).find(",20,limited;fewshot_from_eval_split,"), std::string::npos) << to_csv(t);
  const std::string tex = to_latex(t);
  EXPECT_NE(tex.find("$^{\\dagger\\ddagger}$"), std::string::npos) << tex;
  EXPECT_NE(tex.find("$^\\dagger$ computed with -{}-limit 20"), std::string::npos) << tex;
}

TEST(Tables, SeveralMetricsOfOneTaskAndLowerIsBetterColumns) {
  Layout l = layout_mr();
  l.metrics["arc"] = "acc,none|acc_norm,none";
  l.column_decimals["kl"] = 4;
  auto scores = two_row_scores();
  ScoreInput kl = score("quality[m,q4]", {{"model", "m"}, {"recipe", "q4"}}, false, "kl",
                        {{"mean_kl", {{"value", 0.01234}, {"stderr", nullptr}}}});
  scores.push_back(kl);
  const Table t = build_table(scores, two_row_models(), l);
  std::vector<std::string> ids;
  for (const auto& c : t.columns) ids.push_back(c.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"arc:acc", "arc:acc_norm", "gsm", "kl"}));
  EXPECT_FALSE(t.columns[3].higher_is_better);
  EXPECT_EQ(t.columns[3].scale, 1);  // not a percentage
  EXPECT_EQ(t.columns[3].decimals, 4);
  // The average leaves lower-is-better columns out: (42 + 45 + 25) / 3.
  EXPECT_DOUBLE_EQ(t.rows[1]["average"]["value"].get<double>(), (42.0 + 45.0 + 25.0) / 3);
  EXPECT_EQ(t.rows[1]["average"]["of"], 3);
  EXPECT_NE(to_markdown(t).find("0.0123"), std::string::npos);
}

TEST(Tables, NormalizedConventionUsesTheLeaderboardScore) {
  Layout l = layout_mr();
  l.convention = "normalized";
  auto scores = two_row_scores();
  scores[0].normalized = {{"metric", "acc_norm,none"}, {"value", 33.3}};
  const Table t = build_table(scores, two_row_models(), l);
  EXPECT_DOUBLE_EQ(t.rows[0]["cells"]["arc"]["value"].get<double>(), 33.3);
  EXPECT_EQ(t.rows[0]["cells"]["arc"]["convention"], "normalized");
  // No normalized score for the quantized arc: raw, flagged, and no diff
  // against a normalized baseline.
  EXPECT_EQ(t.rows[1]["cells"]["arc"]["flags"], json({"raw"}));
  EXPECT_TRUE(t.rows[1]["cells"]["arc"]["diff"].is_null());
}

TEST(Tables, ErrorsNameTheNodeAndWhatToDo) {
  auto scores = two_row_scores();
  scores.push_back(scores[2]);
  try {
    build_table(scores, two_row_models(), layout_mr());
    FAIL() << "no error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("score[m,q4,arc]: a second score for row 'm / q4', column 'arc'"),
              std::string::npos)
        << e.what();
  }
  Layout l = layout_mr();
  l.metrics["gsm"] = "f1,none";
  try {
    build_table(two_row_scores(), two_row_models(), l);
    FAIL() << "no error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "task 'gsm' has no metric 'f1,none' (it has: exact_match,flexible-extract, "
                  "exact_match,strict-match); set params.metrics.gsm"),
              std::string::npos)
        << e.what();
  }
}

TEST(Tables, NoBaselineMeansNoDiffsAndANote) {
  auto scores = two_row_scores();
  scores.erase(scores.begin(), scores.begin() + 2);  // only the quantized row
  const Table t = build_table(scores, two_row_models(), layout_mr());
  ASSERT_EQ(t.rows.size(), 1u);
  EXPECT_TRUE(t.rows[0]["cells"]["arc"]["diff"].is_null());
  ASSERT_EQ(t.notes.size(), 1u);
  EXPECT_EQ(t.notes[0], "no baseline row for model 'm': no differences shown");
  // Its nominal size still comes from... nothing: no unquantized model row.
  EXPECT_FALSE(t.rows[0]["storage"].contains("nominal_bytes"));
}

TEST(Tables, FormattingHelpers) {
  EXPECT_EQ(fmt_fixed(-0.004, 2), "0.00");
  EXPECT_EQ(fmt_fixed(2.345678, 4), "2.3457");
  EXPECT_EQ(fmt_bytes(14e9), "14.0 GB");
  EXPECT_EQ(fmt_bytes(999), "999 B");
  EXPECT_EQ(default_metric({{"f1,none", 1}, {"acc,none", 1}}), "acc,none");
  EXPECT_EQ(default_metric({{"z", 1}, {"b", 1}}), "b");
  EXPECT_TRUE(lower_is_better("word_perplexity,none"));
  EXPECT_TRUE(lower_is_better("mean_kl"));
  EXPECT_FALSE(lower_is_better("acc_norm,none"));
}

}  // namespace
}  // namespace qsweep::scoring::tables
