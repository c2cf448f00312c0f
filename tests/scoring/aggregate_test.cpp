// mean / mean_stderr / group aggregation against hand-computed values and the
// numbers in lm-eval's own tests (tests/test_evaluator.py test_aggregate_mean).
#include "scoring/aggregate.h"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

namespace qsweep::scoring {
namespace {

TEST(Mean, SumOverCount) {
  EXPECT_EQ(mean(std::vector<double>{1, 0, 1, 1}), 0.75);
  EXPECT_THROW(mean(std::vector<double>{}), std::invalid_argument);
}

TEST(MeanStderr, SampleStddevOverSqrtN) {
  // {1,0,1,1}: mean .75, squared deviations .0625*3 + .5625 = .75, /3 = .25,
  // stddev .5, stderr .5 / 2 = .25.
  const std::vector<double> v{1, 0, 1, 1};
  EXPECT_DOUBLE_EQ(sample_stddev(v), 0.5);
  ASSERT_TRUE(mean_stderr(v).has_value());
  EXPECT_DOUBLE_EQ(*mean_stderr(v), 0.25);
  // {1,0,1,1,0,1}: mean 2/3, ss = 4*(1/9) + 2*(4/9) = 4/3, /5 = 4/15,
  // stderr = sqrt(4/15) / sqrt(6) = 0.210818510677892 (Python statistics).
  EXPECT_NEAR(*mean_stderr(std::vector<double>{1, 0, 1, 1, 0, 1}), 0.210818510677892, 1e-15);
  EXPECT_FALSE(mean_stderr(std::vector<double>{1}).has_value());  // "N/A"
}

TEST(AggregateSubtaskMetrics, LmEvalTestValues) {
  const std::vector<double> m{0.3, 0.2, 0.4};
  const std::vector<std::size_t> n{20, 40, 100};
  EXPECT_DOUBLE_EQ(aggregate_subtask_metrics(m, n, false), 0.3);
  EXPECT_DOUBLE_EQ(aggregate_subtask_metrics(m, n, true), 0.3375);
}

TEST(PooledSampleStderr, HandComputed) {
  // sizes {4, 2}, stderrs {.25, .5}: (3*.0625*4 + 1*.25*2) / (6 - 2) = .3125,
  // sqrt(.3125 / 6) = 0.22821773229381923.
  const std::vector<double> se{0.25, 0.5};
  const std::vector<std::size_t> n{4, 2};
  EXPECT_NEAR(pooled_sample_stderr(se, n), 0.22821773229381923, 1e-15);
  EXPECT_THROW(pooled_sample_stderr(std::vector<double>{0.1}, std::vector<std::size_t>{1}),
               std::invalid_argument);
}

TEST(PooledSampleStderr, MatchesTheStderrOfTheConcatenationWhenMeansAgree) {
  // Two subtasks with the same mean: pooling is exact (no between-group term).
  const std::vector<double> a{1, 0, 1, 0}, b{1, 1, 0, 0, 1, 0};
  std::vector<double> all = a;
  all.insert(all.end(), b.begin(), b.end());
  const std::vector<double> se{*mean_stderr(a), *mean_stderr(b)};
  const std::vector<std::size_t> n{a.size(), b.size()};
  // pooled var = (3*a_var... ) uses (n_i - 1) s_i^2 / (N - k); the concatenation
  // uses N - 1, so they differ by sqrt((N - 1) / (N - k)) here.
  EXPECT_NEAR(pooled_sample_stderr(se, n), *mean_stderr(all) * std::sqrt(9.0 / 8.0), 1e-15);
}

TEST(AggregateGroup, WeightedMeanPooledStderrAndMacroMean) {
  const std::vector<double> a{1, 0, 1, 1}, b{0, 1};
  const std::vector<TaskScore> members{score_task(a), score_task(b)};
  EXPECT_DOUBLE_EQ(*members[1].stderr_value, 0.5);
  const auto g = aggregate_group(members);
  EXPECT_DOUBLE_EQ(g.score.value, 4.0 / 6.0);  // (0.75*4 + 0.5*2) / 6
  ASSERT_TRUE(g.score.stderr_value.has_value());
  EXPECT_NEAR(*g.score.stderr_value, 0.22821773229381923, 1e-15);
  EXPECT_EQ(g.score.samples, 6u);
  EXPECT_DOUBLE_EQ(g.macro_mean, 0.625);
  EXPECT_DOUBLE_EQ(g.leaf_macro_mean, 0.625);
  const auto unweighted = aggregate_group(members, false);
  EXPECT_DOUBLE_EQ(unweighted.score.value, 0.625);
  EXPECT_NEAR(*unweighted.score.stderr_value, 0.22821773229381923, 1e-15);  // still pooled
}

TEST(AggregateGroup, NaStderrPropagates) {
  const std::vector<TaskScore> members{score_task(std::vector<double>{1}),
                                       score_task(std::vector<double>{0, 1})};
  const auto g = aggregate_group(members);
  EXPECT_FALSE(g.score.stderr_value.has_value());
  EXPECT_DOUBLE_EQ(g.score.value, 2.0 / 3.0);
  EXPECT_THROW(aggregate_group(std::vector<TaskScore>{}), std::invalid_argument);
}

TEST(AggregateGroupOfGroups, MmluShape) {
  // Two "categories" of subjects; the top level pools the categories' pooled
  // stderrs (as lm-eval's nested groups do) and its value is the micro mean.
  const std::vector<double> s1{1, 0, 1, 1}, s2{0, 1}, s3{1, 1, 1, 0, 0};
  const auto stem = aggregate_group(std::vector<TaskScore>{score_task(s1), score_task(s2)});
  const auto other = aggregate_group(std::vector<TaskScore>{score_task(s3)});
  const auto top = aggregate_group_of_groups(std::vector<GroupScore>{stem, other});
  EXPECT_NEAR(top.score.value, 7.0 / 11.0, 1e-15);  // micro mean of 11 docs
  EXPECT_EQ(top.score.samples, 11u);
  EXPECT_NEAR(top.leaf_macro_mean, (0.75 + 0.5 + 0.6) / 3.0, 1e-15);
  EXPECT_NEAR(top.macro_mean, (4.0 / 6.0 + 0.6) / 2.0, 1e-15);
  // Pooled over {stem: n 6, se .2282...}, {other: n 5, se sqrt(.3/5)}:
  // ((5 * .3125/6 * 6) + (4 * .06 * 5)) / (11 - 2) / 11.
  const double se_other = std::sqrt(0.3 / 5.0);
  EXPECT_NEAR(*other.score.stderr_value, std::sqrt((4 * se_other * se_other * 5) / 4.0 / 5.0), 1e-15);
  const double expected = std::sqrt((5 * (0.3125 / 6.0) * 6 + 4 * 0.06 * 5) / 9.0 / 11.0);
  EXPECT_NEAR(*top.score.stderr_value, expected, 1e-15);
}

}  // namespace
}  // namespace qsweep::scoring
