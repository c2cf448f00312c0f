// Per-document metrics against hand-computed values (SPECS.md B0, B3, B5, B6).
#include "scoring/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>

namespace qsweep::scoring {
namespace {

TEST(Argmax, FirstMaximumWinsTies) {
  const std::vector<double> v{-2.0, -1.0, -1.0, -3.0};
  EXPECT_EQ(argmax(v), 1u);
  const std::vector<double> all_equal{-1.0, -1.0, -1.0};
  EXPECT_EQ(argmax(all_equal), 0u);
}

TEST(Argmax, NanCountsAsMaximumLikeNumpy) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> v{-1.0, nan, 0.0, nan};
  EXPECT_EQ(argmax(v), 1u);
  EXPECT_THROW(argmax(std::vector<double>{}), std::invalid_argument);
}

TEST(PythonLen, CountsCodePointsNotBytes) {
  EXPECT_EQ(python_len(""), 0u);
  EXPECT_EQ(python_len("abc"), 3u);
  EXPECT_EQ(python_len("\xC3\xA9"), 1u);                  // é (2 bytes)
  EXPECT_EQ(python_len("\xE6\x97\xA5\xE6\x9C\xAC"), 2u);  // 日本 (6 bytes)
  EXPECT_EQ(python_len("\xF0\x9F\x98\x80!"), 2u);         // 😀! (5 bytes)
  EXPECT_EQ(python_len("e\xCC\x81"), 2u);                 // e + combining acute: 2 code points
}

TEST(MultipleChoice, AccIsArgmaxWithLowestIndexOnTies) {
  const std::vector<std::string> choices{"a", "b", "c"};
  const std::vector<double> lls{-1.0, -1.0, -2.0};
  auto s = score_multiple_choice(lls, choices, 0);
  EXPECT_EQ(s.pred, 0u);
  EXPECT_EQ(s.acc, 1.0);
  s = score_multiple_choice(lls, choices, 1);
  EXPECT_EQ(s.acc, 0.0);  // tie goes to index 0, gold is 1
}

TEST(MultipleChoice, AccNormDividesByCharacterLengthWithoutDelimiter) {
  // "a" (1 char) ll -3 -> -3; "bcdefgh" (7 chars) ll -4 -> -0.571...
  const std::vector<std::string> choices{"a", "bcdefgh"};
  const std::vector<double> lls{-3.0, -4.0};
  const auto s = score_multiple_choice(lls, choices, 1);
  EXPECT_EQ(s.pred, 0u);
  EXPECT_EQ(s.pred_norm, 1u);
  EXPECT_EQ(s.acc, 0.0);
  EXPECT_EQ(s.acc_norm, 1.0);
  // With the delimiter " " counted, " a" (2) -> -1.5 and " bcdefgh" (8) -> -0.5:
  // the same winner here, so also check a case where the delimiter flips it:
  // "ab" -2 -> -1.0, "abcd" -3.9 -> -0.975: pred_norm 1. With " " counted:
  // -0.667 vs -0.78 -> 0.
  const std::vector<std::string> c2{"ab", "abcd"};
  const std::vector<double> l2{-2.0, -3.9};
  EXPECT_EQ(score_multiple_choice(l2, c2, 1).pred_norm, 1u);
}

TEST(MultipleChoice, AccNormTieAfterNormalizationGoesToLowestIndex) {
  const std::vector<std::string> choices{"ab", "abcd"};  // -2/2 == -4/4
  const std::vector<double> lls{-2.0, -4.0};
  const auto s = score_multiple_choice(lls, choices, 1);
  EXPECT_EQ(s.pred_norm, 0u);
  EXPECT_EQ(s.acc_norm, 0.0);
}

TEST(MultipleChoice, AccNormUsesCodePointsForUnicodeChoices) {
  // "é" is 1 code point (2 bytes): -1.5/1 = -1.5 vs "ab" -2/2 = -1.0 -> 1.
  // Byte lengths would give -0.75 vs -1.0 -> 0.
  const std::vector<std::string> choices{"\xC3\xA9", "ab"};
  const std::vector<double> lls{-1.5, -2.0};
  EXPECT_EQ(score_multiple_choice(lls, choices, 1).pred_norm, 1u);
  // "日本" 2 code points: -3/2 = -1.5 vs "abcd" -5/4 = -1.25 -> 1 (bytes: -0.5 -> 0).
  const std::vector<std::string> c2{"\xE6\x97\xA5\xE6\x9C\xAC", "abcd"};
  const std::vector<double> l2{-3.0, -5.0};
  EXPECT_EQ(score_multiple_choice(l2, c2, 1).pred_norm, 1u);
}

TEST(MultipleChoice, GoldOutOfRangeScoresZeroAndSizesMustAgree) {
  const std::vector<std::string> choices{"a", "b"};
  const std::vector<double> lls{-1.0, -2.0};
  const auto s = score_multiple_choice(lls, choices, 7);
  EXPECT_EQ(s.acc, 0.0);
  EXPECT_EQ(s.acc_norm, 0.0);
  EXPECT_THROW(score_multiple_choice(std::vector<double>{-1.0}, choices, 0), std::invalid_argument);
}

TEST(TruthfulQaMc2, NormalizedProbabilityMassOfTrueAnswers) {
  // p = {0.3, 0.1 | 0.2, 0.4}: true mass 0.4 of 1.0.
  const std::vector<double> lls{std::log(0.3), std::log(0.1), std::log(0.2), std::log(0.4)};
  const std::vector<int> labels{1, 1, 0, 0};
  EXPECT_NEAR(truthfulqa_mc2(lls, labels), 0.4, 1e-15);
  // Unnormalized: p = {e^-1 | e^-2}: e^-1 / (e^-1 + e^-2) = 1 / (1 + e^-1).
  const std::vector<double> l2{-1.0, -2.0};
  const std::vector<int> lab2{1, 0};
  EXPECT_NEAR(truthfulqa_mc2(l2, lab2), 1.0 / (1.0 + std::exp(-1.0)), 1e-15);
}

TEST(TruthfulQaMc2, SplitsAtTheFirstZeroLabel) {
  // labels {1, 0, 1}: everything from the first 0 on counts as false, the
  // trailing 1 included (lm-eval assumes 1...1 0...0).
  const std::vector<double> lls{0.0, 0.0, 0.0};
  const std::vector<int> labels{1, 0, 1};
  EXPECT_NEAR(truthfulqa_mc2(lls, labels), 1.0 / 3.0, 1e-15);
}

TEST(TruthfulQaMc2, ErrorsAndUnderflow) {
  const std::vector<double> lls{-1.0, -2.0};
  EXPECT_THROW(truthfulqa_mc2(lls, std::vector<int>{1, 1}), std::invalid_argument);
  EXPECT_THROW(truthfulqa_mc2(lls, std::vector<int>{1}), std::invalid_argument);
  // exp(-1000) == 0 on both sides: 0/0 is NaN, as numpy.
  EXPECT_TRUE(std::isnan(truthfulqa_mc2(std::vector<double>{-1000.0, -1000.0}, std::vector<int>{1, 0})));
}

TEST(Winogrande, AccOverContinuationLoglikelihoods) {
  EXPECT_EQ(winogrande_acc(std::vector<double>{-5.0, -4.0}, 1), 1.0);
  EXPECT_EQ(winogrande_acc(std::vector<double>{-5.0, -4.0}, 0), 0.0);
  EXPECT_EQ(winogrande_acc(std::vector<double>{-4.0, -4.0}, 0), 1.0);  // tie -> option 1
  EXPECT_EQ(winogrande_gold("1"), 0u);
  EXPECT_EQ(winogrande_gold("2"), 1u);
  EXPECT_THROW(winogrande_gold("3"), std::invalid_argument);
}

TEST(ExactMatch, PlainComparisonIsExact) {
  const ExactMatchOptions none;
  EXPECT_EQ(exact_match("18", "18", none), 1.0);
  EXPECT_EQ(exact_match("18", "18 ", none), 0.0);
  EXPECT_EQ(exact_match("Abc", "abc", none), 0.0);
}

TEST(ExactMatch, IgnoreCaseLowercasesBothSides) {
  ExactMatchOptions o;
  o.ignore_case = true;
  EXPECT_EQ(exact_match("Abc", "aBC", o), 1.0);
  EXPECT_EQ(exact_match("\xC3\x89t\xC3\xA9", "\xC3\xA9T\xC3\x89", o), 1.0);  // Été / éTÉ
}

TEST(ExactMatch, IgnorePunctuationRemovesAsciiPunctuationOnly) {
  ExactMatchOptions o;
  o.ignore_case = true;
  o.ignore_punctuation = true;
  EXPECT_EQ(exact_match("Hello, World!", "hello world", o), 1.0);
  EXPECT_EQ(exact_match("a-b_c{d}~", "abcd", o), 1.0);
  // U+2019 is not in string.punctuation.
  EXPECT_EQ(exact_match("it\xE2\x80\x99s", "its", o), 0.0);
}

TEST(ExactMatch, IgnoreNumbers) {
  ExactMatchOptions o;
  o.ignore_numbers = true;
  EXPECT_EQ(exact_match("a1b2", "ab", o), 1.0);
}

TEST(ExactMatch, Gsm8kNormalization) {
  const auto o = gsm8k_exact_match_options();
  // Reference: everything through the last "#### " goes.
  EXPECT_EQ(exact_match_normalize("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs.\n"
                                  "She makes 9 * 2 = $<<9*2=18>>18.\n#### 18",
                                  o),
            "18");
  EXPECT_EQ(exact_match_normalize("#### 1\n#### 2", o), "2");  // greedy (?s).*
  EXPECT_EQ(exact_match_normalize("$1,234.", o), "1234");
  EXPECT_EQ(exact_match_normalize("18.00", o), "18.00");  // only a final '.' goes
  EXPECT_EQ(exact_match_normalize("A.B.", o), "a.b");
  // Python's `$` also matches before a final "\n": the '.' goes, the "\n" stays.
  EXPECT_EQ(exact_match_normalize("18.\n", o), "18\n");
  EXPECT_EQ(exact_match_normalize("Total: 5\n#### 7.", o), "7");
  EXPECT_EQ(exact_match("$18", "#### 18", o), 1.0);
  EXPECT_EQ(exact_match("1,234", "#### 1234", o), 1.0);
  EXPECT_EQ(exact_match("18.00", "#### 18", o), 0.0);
  EXPECT_EQ(exact_match("[invalid]", "#### 18", o), 0.0);
}

TEST(PythonLower, FullMappingOfDottedCapitalI) {
  EXPECT_EQ(python_lower("\xC4\xB0STANBUL"), "i\xCC\x87stanbul");
  EXPECT_EQ(python_lower("\xCE\x91\xCE\x92"), "\xCE\xB1\xCE\xB2");  // ΑΒ -> αβ
}

}  // namespace
}  // namespace qsweep::scoring
