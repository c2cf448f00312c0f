// lm-eval's regex / take_first filters and the gsm8k chains (SPECS.md B0, B6);
// PyRegex against Python's `re` where python3 is on PATH.
#include "scoring/filters.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <stdexcept>

#include "scoring/pyre.h"
#include "tests/testutil.h"

namespace qsweep::scoring {
namespace {

std::string strict(const std::string& s) { return gsm8k_strict_match({s}); }
std::string flexible(const std::string& s) { return gsm8k_flexible_extract({s}); }

TEST(Gsm8kStrictMatch, FirstHashAnswer) {
  EXPECT_EQ(strict("The answer is 42.\n#### 1,234"), "1,234");
  EXPECT_EQ(strict("#### -5.\n"), "-5.");
  EXPECT_EQ(strict("#### 3\n#### 4"), "3");  // first match
  EXPECT_EQ(strict("So #### 1,000,000.00 dollars"), "1,000,000.00");
  EXPECT_EQ(strict("#### ."), ".");  // the class matches a lone '.'
}

TEST(Gsm8kStrictMatch, NoMatchIsInvalid) {
  EXPECT_EQ(strict("no answer"), "[invalid]");
  EXPECT_EQ(strict("#### $5"), "[invalid]");  // '$' is not in the class
  EXPECT_EQ(strict("####5"), "[invalid]");    // needs the space
  EXPECT_EQ(strict(""), "[invalid]");
}

TEST(Gsm8kFlexibleExtract, LastNumberTupleToFirstNonEmptyGroup) {
  // findall: ('$1,200.', ''), ('', '3'), ('1203.', '') -> last -> '1203.'
  EXPECT_EQ(flexible("She has $1,200. Then 3 more, total 1203."), "1203.");
  EXPECT_EQ(flexible("-7 degrees"), "-7");  // ('', '-7'): second group
  EXPECT_EQ(flexible("The answer is 5"), "5");
  EXPECT_EQ(flexible("1-2"), "-2");
  EXPECT_EQ(flexible("costs $5"), "$5");
  EXPECT_EQ(flexible("#### -5.\n"), "-5.");
  EXPECT_EQ(flexible("#### 3\n#### 4"), "4");
  EXPECT_EQ(flexible("####5"), "5");
  // A run of two or more '.' is a "number" for the first alternative.
  EXPECT_EQ(flexible("So the answer is 12. Let me check..."), "...");
  EXPECT_EQ(flexible("I got 5 and 6\xC2\xA0"), "6");
}

TEST(Gsm8kFlexibleExtract, NoMatchIsInvalid) {
  EXPECT_EQ(flexible("abc"), "[invalid]");
  EXPECT_EQ(flexible("#### ."), "[invalid]");  // one '.' is too short
}

TEST(RegexFilter, GroupSelectIndexesLikePython) {
  const RegexFilter first(R"(\d+)", 0), last(R"(\d+)", -1), second(R"(\d+)", 1), minus3(R"(\d+)", -3);
  EXPECT_EQ(first.apply("a1 b22 c333"), "1");
  EXPECT_EQ(last.apply("a1 b22 c333"), "333");
  EXPECT_EQ(second.apply("a1 b22 c333"), "22");
  EXPECT_EQ(minus3.apply("a1 b22 c333"), "1");
  EXPECT_THROW(minus3.apply("a1 b22"), std::out_of_range);  // Python IndexError
  EXPECT_THROW(second.apply("a1"), std::out_of_range);
}

TEST(RegexFilter, StripsPythonWhitespaceAndKeepsCustomFallback) {
  const RegexFilter f(R"(answer:(.*))", 0, "none");
  EXPECT_EQ(f.apply("answer:  \t 7 \xE3\x80\x80\n"), "7");  // U+3000 is whitespace
  EXPECT_EQ(f.apply("nothing"), "none");
  EXPECT_EQ(f.apply("answer:"), "");  // a one-group match is a string, even empty
}

TEST(RegexFilter, TupleWithEveryGroupEmptyThrows) {
  const RegexFilter f(R"((a)?(b)?)", 0);
  EXPECT_THROW(f.apply("zzz"), std::out_of_range);  // ('', '') -> IndexError in Python
}

TEST(RegexFilter, AppliesPerRepeatThenTakeFirst) {
  const RegexFilter f(k_gsm8k_strict_pattern);
  const auto out = f.apply(std::vector<std::string>{"x", "#### 2", "#### 3"});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0], "[invalid]");
  EXPECT_EQ(take_first(out), "[invalid]");
  EXPECT_THROW(take_first({}), std::out_of_range);
}

TEST(PyRegex, EmptyMatchesFollowPython37) {
  const PyRegex r("x*");
  const auto m = r.findall("abxd");
  std::vector<std::string> flat;
  for (const auto& t : m) flat.push_back(t[0]);
  EXPECT_EQ(flat, (std::vector<std::string>{"", "", "x", "", ""}));
  EXPECT_EQ(r.sub("-", "abxd"), "-a-b--d-");
}

TEST(PyRegex, UnicodeDigitsAndBackslashZ) {
  const PyRegex d(R"(\d+)");
  const auto m = d.findall("\xD9\xA3\xD9\xA4 12");  // Arabic-Indic 3 4, then 12
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0][0], "\xD9\xA3\xD9\xA4");
  EXPECT_EQ(translate_python_pattern(R"(a\Z\\Z)"), R"(a\z\\Z)");
  EXPECT_TRUE(PyRegex(R"(a\Z)").findall("a\n").empty());  // Python \Z: end of string only
  EXPECT_THROW(PyRegex("("), std::invalid_argument);
}

TEST(PythonStrip, UnicodeWhitespace) {
  EXPECT_EQ(python_strip("  \xE2\x80\x83" "a b\x1c\xC2\x85"), "a b");
  EXPECT_EQ(python_strip(" \t\n"), "");
  EXPECT_EQ(python_strip("x"), "x");
}

// -- Live comparison with Python's `re` -----------------------------------

std::string hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

TEST(PyRegexVsPython, FindallAndSubAgree) {
  struct Case {
    std::string pattern, text;
  };
  const std::vector<Case> cases{
      {k_gsm8k_strict_pattern, "The answer is 42.\n#### 1,234\n#### -5."},
      {k_gsm8k_flexible_pattern, "She has $1,200. Then 3 more, total -1203.\n\nQuestion: 7..."},
      {k_gsm8k_flexible_pattern, "\xD9\xA3\xD9\xA4 and 1\xC2\xA0" "2 $ $$ ,, -- -.5"},
      {"(?s).*#### ", "line\n#### 1\nmore\n#### 2"},
      {R"(\.$)", "18.\n"},
      {R"(\.$)", "a.b.\n\n"},
      {R"(\$)", "$1$2"},
      {",", "1,2,,3"},
      {"x*", "abxd"},
      {R"(a|(b))", "ab"},
      {R"((a)|(b)|c)", "cab"},
      {R"(\w+)", "caf\xC3\xA9 na\xC3\xAFve \xE6\x97\xA5\xE6\x9C\xAC"},
      {R"(\s+)", "a\xC2\xA0" "b\xE3\x80\x80" "c\td"},
      {"^.*$", "l1\nl2\n"},
      {"(?m)^.*$", "l1\nl2\n"},
  };
  std::string py = "import re, json\nout = []\n";
  for (const auto& c : cases) {
    py += "p = bytes.fromhex(\"" + hex(c.pattern) + "\").decode()\n";
    py += "s = bytes.fromhex(\"" + hex(c.text) + "\").decode()\n";
    py += "f = [list(m) if isinstance(m, tuple) else [m] for m in re.findall(p, s)]\n";
    py += "out.append([f, re.sub(p, \"\", s)])\n";
  }
  py += "print(json.dumps(out))\n";
  const std::string got = testing::python3_output(py);
  if (got.empty()) GTEST_SKIP() << "python3 not on PATH (or failed)";
  const auto expected = nlohmann::json::parse(got);
  ASSERT_EQ(expected.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    const PyRegex r(cases[i].pattern);
    const auto mine = r.findall(cases[i].text);
    EXPECT_EQ(nlohmann::json(mine), expected[i][0]) << "findall " << cases[i].pattern;
    EXPECT_EQ(r.sub("", cases[i].text), expected[i][1].get<std::string>()) << "sub " << cases[i].pattern;
  }
}

}  // namespace
}  // namespace qsweep::scoring
