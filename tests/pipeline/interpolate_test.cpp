#include "pipeline/interpolate.h"

#include <gtest/gtest.h>

namespace qsweep {
namespace {

Resolver map_resolver(std::map<std::string, std::string> m) {
  return [m](const std::string& p, const std::optional<std::string>&) -> std::optional<std::string> {
    auto it = m.find(p);
    if (it == m.end()) return std::nullopt;
    return it->second;
  };
}

TEST(Interpolate, SubstitutesAndEscapes) {
  std::string out, err;
  ASSERT_TRUE(interpolate("a ${x} b $${x} ${y.z}", map_resolver({{"x", "1"}, {"y.z", "2"}}), &out, &err)) << err;
  EXPECT_EQ(out, "a 1 b ${x} 2");
}

TEST(Interpolate, DefaultsAreTemplatesExpandedOnlyWhenUsed) {
  std::string out, err;
  auto r = map_resolver({{"dir", "/d"}});
  ASSERT_TRUE(interpolate("${env.NOPE:-${dir}/data}", r, &out, &err)) << err;
  EXPECT_EQ(out, "/d/data");
  // The default is not expanded when the name is defined.
  ASSERT_TRUE(interpolate("${dir:-${undefined}}", r, &out, &err)) << err;
  EXPECT_EQ(out, "/d");
  ASSERT_TRUE(interpolate("${a:-}", r, &out, &err));
  EXPECT_EQ(out, "");
}

TEST(Interpolate, UndefinedVariableIsAnError) {
  std::string out, err;
  EXPECT_FALSE(interpolate("x ${vars.nope}", map_resolver({}), &out, &err));
  EXPECT_EQ(err, "undefined variable ${vars.nope}");
}

TEST(Interpolate, MalformedPlaceholders) {
  std::vector<TemplatePart> parts;
  std::string err;
  EXPECT_FALSE(parse_template("abc ${x", &parts, &err));
  EXPECT_NE(err.find("unterminated"), std::string::npos);
  EXPECT_FALSE(parse_template("${}", &parts, &err));
  EXPECT_FALSE(parse_template("${a..b}", &parts, &err));
  EXPECT_FALSE(parse_template("${a b}", &parts, &err));
  EXPECT_TRUE(parse_template("no placeholders $ { }", &parts, &err));
  EXPECT_FALSE(has_placeholder("plain $${escaped}"));
  EXPECT_TRUE(has_placeholder("x${y}"));
}

TEST(Interpolate, JsonPath) {
  auto j = nlohmann::json::parse(R"({"a":{"b":[10,{"c":"x"}]},"n":1.5,"t":true})");
  ASSERT_NE(json_path(j, "a.b.1.c"), nullptr);
  EXPECT_EQ(*json_path(j, "a.b.1.c"), "x");
  EXPECT_EQ(json_path(j, "a.b.2"), nullptr);
  EXPECT_EQ(json_path(j, "a.x"), nullptr);
  EXPECT_EQ(json_path(j, "a.b.x"), nullptr);
  EXPECT_EQ(json_to_text(*json_path(j, "n")), "1.5");
  EXPECT_EQ(json_to_text(*json_path(j, "t")), "true");
  EXPECT_EQ(json_to_text(*json_path(j, "a.b.1.c")), "x");
}

}  // namespace
}  // namespace qsweep
