// Open LLM Leaderboard v2 normalization (SPECS.md B13), hand-computed.

#include "scoring/normalize.h"

#include <gtest/gtest.h>

namespace qsweep::scoring {
namespace {

using nlohmann::json;

TaskConfig mc_task(const std::string& name) {
  return parse_task_yaml("task: " + name +
                             "\ntest_split: test\noutput_type: multiple_choice\n"
                             "doc_to_text: q\ndoc_to_target: 0\ndoc_to_choice: \"{{choices}}\"\n",
                         "t.yaml");
}

EvalSet docs_with_choices(const std::vector<std::pair<std::string, int>>& subtask_and_n) {
  EvalSet s;
  for (const auto& [sub, n] : subtask_and_n) {
    EvalDoc d;
    d.subtask = sub;
    d.doc = {{"q", "?"}, {"choices", json::array()}};
    for (int i = 0; i < n; ++i) d.doc["choices"].push_back("c" + std::to_string(i));
    s.docs.push_back(d);
  }
  return s;
}

json metric(double v) { return {{"value", v}, {"stderr", 0.01}, {"samples", 10}}; }

TEST(OllV2Normalize, Formula) {
  EXPECT_DOUBLE_EQ(oll_v2_normalize(0.30, 0.25), (0.30 - 0.25) / 0.75 * 100);
  EXPECT_DOUBLE_EQ(oll_v2_normalize(0.20, 0.25), 0.0) << "below the random baseline clips to 0";
  EXPECT_DOUBLE_EQ(oll_v2_normalize(1.0, 0.1), 100.0);
  EXPECT_THROW(oll_v2_normalize(0.5, 1.0), std::invalid_argument);
}

TEST(OllV2Normalize, MultipleChoiceUsesOneOverTheLargestChoiceCount) {
  // GPQA-like: 4 choices, acc_norm.
  const json n = oll_v2_normalized(mc_task("gpqa"), docs_with_choices({{"", 4}, {"", 4}}),
                                   {{"gpqa", {{"acc,none", metric(0.5)}, {"acc_norm,none", metric(0.30)}}}});
  EXPECT_EQ(n["metric"], "acc_norm");
  EXPECT_NEAR(n["value"].get<double>(), 6.666666666666667, 1e-12);
  EXPECT_EQ(n["leaves"]["gpqa"]["lower"], 0.25);
  // MMLU-Pro-like: acc only, 3 to 10 options -> lower 0.1 for every question.
  const json m = oll_v2_normalized(mc_task("mmlu_pro"), docs_with_choices({{"", 10}, {"", 3}}),
                                   {{"mmlu_pro", {{"acc,none", metric(0.37)}}}});
  EXPECT_EQ(m["metric"], "acc");
  EXPECT_NEAR(m["value"].get<double>(), (0.37 - 0.1) / 0.9 * 100, 1e-12);
}

TEST(OllV2Normalize, SubtasksAreNormalizedThenAveragedUnweighted) {
  // BBH-like: a 2-choice and a 5-choice subtask (sizes do not weigh).
  const EvalSet s = docs_with_choices({{"bbh_a", 2}, {"bbh_a", 2}, {"bbh_a", 2}, {"bbh_b", 5}});
  const json n = oll_v2_normalized(mc_task("bbh"), s,
                                   {{"bbh_a", {{"acc_norm,none", metric(0.6)}}},
                                    {"bbh_b", {{"acc_norm,none", metric(0.3)}}},
                                    {"bbh", {{"acc_norm,none", metric(0.5)}}}});
  EXPECT_NEAR(n["leaves"]["bbh_a"]["normalized"].get<double>(), 20.0, 1e-12);
  EXPECT_NEAR(n["leaves"]["bbh_b"]["normalized"].get<double>(), 12.5, 1e-12);
  EXPECT_NEAR(n["value"].get<double>(), 16.25, 1e-12);
}

TEST(OllV2Normalize, GenerativeTasks) {
  const TaskConfig gen = parse_task_yaml("task: ifeval\ntest_split: train\ndoc_to_text: prompt\ndoc_to_target: 0\n", "t.yaml");
  const json i = oll_v2_normalized(gen, EvalSet{},
                                   {{"ifeval",
                                     {{"prompt_level_strict_acc,none", metric(0.5)},
                                      {"inst_level_strict_acc,none", metric(0.6)},
                                      {"prompt_level_loose_acc,none", metric(0.9)}}}});
  EXPECT_NEAR(i["value"].get<double>(), 55.0, 1e-12);
  const TaskConfig math = parse_task_yaml("task: math\ntest_split: test\ndoc_to_text: p\ndoc_to_target: a\n", "t.yaml");
  const json m = oll_v2_normalized(math, EvalSet{}, {{"math", {{"exact_match,none", metric(0.12)}}}});
  EXPECT_NEAR(m["value"].get<double>(), 12.0, 1e-12);
  EXPECT_THROW(oll_v2_normalized(math, EvalSet{}, {{"math", {{"bleu,none", metric(0.1)}}}}), std::runtime_error);
}

}  // namespace
}  // namespace qsweep::scoring
