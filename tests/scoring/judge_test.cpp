// MT-Bench single grading (scoring/judge/mtbench_judge.h): FastChat's rating
// regexes, which prompt each (category, turn) gets and how it is filled,
// and the Table-4 aggregates with unparsed judgments left out.

#include <gtest/gtest.h>

#include "scoring/judge/mtbench_judge.h"
#include "tests/testutil.h"

namespace qsweep::scoring {
namespace {

TEST(MtBenchJudge, RatingParseAsFastChat) {
  EXPECT_EQ(parse_rating("Good answer. Rating: [[8]]"), 8.0);
  EXPECT_EQ(parse_rating("[[7.5]] then [[9]]"), 7.5);        // the first match
  EXPECT_EQ(parse_rating("Rating: [6]"), 6.0);               // the [rating] fallback
  EXPECT_EQ(parse_rating("[[x]] but [4]"), 4.0);
  EXPECT_EQ(parse_rating("[[10]]"), 10.0);
  EXPECT_EQ(parse_rating("I give it 8/10."), std::nullopt);  // -1: unparsed
  EXPECT_EQ(parse_rating("[[ 8 ]]"), std::nullopt);
  EXPECT_EQ(parse_rating("[8.]"), 8.0);                      // \d+\.?\d*
}

TEST(MtBenchJudge, ScoresDropUnparsedAndCountThem) {
  const auto s = mtbench_scores({8, -1, 6}, {5, 7, -1});
  EXPECT_DOUBLE_EQ(s["turn1"]["value"].get<double>(), 7.0);
  EXPECT_DOUBLE_EQ(s["turn2"]["value"].get<double>(), 6.0);
  EXPECT_DOUBLE_EQ(s["avg"]["value"].get<double>(), 6.5);
  EXPECT_EQ(s["avg"]["samples"], 4);
  EXPECT_EQ(s["unparsed"]["value"], 2);
  EXPECT_EQ(s["unparsed"]["turn1"], 1);
  EXPECT_NEAR(s["turn1"]["stderr"].get<double>(), 1.0, 1e-12);  // std 1.414 / sqrt 2
  EXPECT_TRUE(mtbench_scores({-1}, {-1})["avg"]["value"].is_null());
}

TEST(MtBenchJudge, PromptsFollowCategoryAndTurn) {
  const auto data = testing::shared_data_dir();
  if (data.empty()) GTEST_SKIP() << "needs ../shared/data/benchmarks/mt_bench";
  const auto mt = data / "benchmarks" / "mt_bench";
  const auto prompts = load_judge_prompts(mt / "judge_prompts.jsonl");
  const auto qs = load_mtbench_questions(mt / "question.jsonl", mt / "reference_answer_gpt-4.jsonl");
  ASSERT_EQ(qs.size(), 80u);
  const MtBenchQuestion* writing = nullptr;
  const MtBenchQuestion* math = nullptr;
  size_t with_ref = 0;
  for (const auto& q : qs) {
    if (q.category == "writing" && !writing) writing = &q;
    if (q.category == "math" && !math) math = &q;
    with_ref += !q.reference.empty();
  }
  ASSERT_TRUE(writing && math);
  EXPECT_EQ(with_ref, 30u);  // math, reasoning, coding: 10 each
  const std::vector<std::string> ans = {"A1", "A2"};
  const auto w1 = single_judge_request(*writing, ans, 1, prompts);
  EXPECT_EQ(w1.prompt_name, "single-v1");
  EXPECT_EQ(w1.system, "You are a helpful assistant.");
  EXPECT_EQ(w1.user, prompts.at("single-v1").prompt_template.substr(0, prompts.at("single-v1").prompt_template.find("{question}")) +
                         writing->turns[0] + "\n\n[The Start of Assistant's Answer]\nA1\n[The End of Assistant's Answer]");
  const auto m2 = single_judge_request(*math, ans, 2, prompts);
  EXPECT_EQ(m2.prompt_name, "single-math-v1-multi-turn");
  EXPECT_NE(m2.user.find(math->reference[1]), std::string::npos);
  EXPECT_NE(m2.user.find(math->turns[1]), std::string::npos);
  EXPECT_NE(m2.user.find("A2"), std::string::npos);
  for (const char* ph : {"{question_1}", "{question_2}", "{answer_1}", "{answer_2}", "{ref_answer_1}", "{ref_answer_2}"})
    EXPECT_EQ(m2.user.find(ph), std::string::npos) << ph;  // every placeholder filled
  EXPECT_EQ(m2.system, prompts.at("single-math-v1-multi-turn").system_prompt);
  MtBenchQuestion noref = *math;
  noref.reference.clear();
  EXPECT_THROW(single_judge_request(noref, ans, 1, prompts), std::runtime_error);
}

}  // namespace
}  // namespace qsweep::scoring
