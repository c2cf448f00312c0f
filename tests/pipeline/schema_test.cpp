#include "pipeline/schema.h"

#include <gtest/gtest.h>

#include "tests/pipeline/fake_stage.h"

namespace qsweep {
namespace {

using testing::FakeBehaviour;
using testing::FakeStage;

struct SchemaFixture : ::testing::Test {
  SchemaFixture() { reg.add(std::make_unique<FakeStage>(&b)); }
  std::string check(const std::string& yaml) {
    Diagnostics d;
    validate(YAML::Load(yaml), *experiment_schema(reg), "f.yaml", "", &d);
    return format_diagnostics(d);
  }
  FakeBehaviour b;
  StageRegistry reg;
};

TEST_F(SchemaFixture, UnknownKeyNamesLineAndSuggests) {
  std::string e = check("version: 1\nname: x\nrecipies: {}\n");
  EXPECT_NE(e.find("f.yaml:3:1: error: unknown key 'recipies'"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'recipes'?"), std::string::npos) << e;
}

TEST_F(SchemaFixture, UnknownNestedKey) {
  std::string e = check("version: 1\nname: x\nstages:\n  - name: a\n    kind: fake\n    matrx: {}\n");
  EXPECT_NE(e.find("f.yaml:6:5: error: unknown key 'stages[0].matrx'"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'matrix'?"), std::string::npos) << e;
}

TEST_F(SchemaFixture, WrongTypes) {
  EXPECT_NE(check("version: one\nname: x\n").find("f.yaml:1:10: error: 'version': expected an integer, got 'one'"), std::string::npos);
  EXPECT_NE(check("version: 1\nname: [a]\n").find("'name': expected a string, got a list"), std::string::npos);
  EXPECT_NE(check("version: 1\nname: x\nstages: {a: 1}\n").find("'stages': expected a list, got a mapping"), std::string::npos);
  EXPECT_NE(check("version: 1\nname: x\nstages:\n  - {name: a, kind: fake, retries: many}\n").find("'stages[0].retries': expected an integer, got 'many'"), std::string::npos);
  EXPECT_NE(check("version: 1\nname: x\nstages:\n  - {name: a, kind: fake, retries: -1}\n").find("must be at least 0"), std::string::npos);
  EXPECT_NE(check("version: 1\nname: x\nlimits: {memory: lots}\n").find("expected a size"), std::string::npos);
}

TEST_F(SchemaFixture, MissingRequiredAndBadEnum) {
  EXPECT_NE(check("version: 1\nname: x\nstages:\n  - {kind: fake}\n").find("missing required key 'name'"), std::string::npos);
  std::string e = check("version: 1\nname: x\nstages:\n  - {name: a, kind: fak}\n");
  EXPECT_NE(e.find("unknown value 'fak'"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'fake'?"), std::string::npos) << e;
}

TEST_F(SchemaFixture, DuplicateKeys) {
  // yaml-cpp keeps duplicate keys; the validator reports them.
  std::string e = check("version: 1\nname: x\nname: y\n");
  EXPECT_NE(e.find("duplicate key 'name'"), std::string::npos) << e;
}

TEST_F(SchemaFixture, ValidDocumentHasNoErrors) {
  EXPECT_EQ(check("version: 1\nname: x\nvars: {a: 1}\nmodels: {m: {source: s}}\nlimits: {threads: 2, memory: 4GiB}\n"
                  "stages:\n  - name: a\n    kind: fake\n    matrix: {model: '*'}\n    params: {n: 2}\n    resources: {gpu: 1}\n"),
            "");
}

TEST(ScalarToJson, TypesFollowYaml12CoreSchema) {
  nlohmann::json j;
  std::string err;
  ASSERT_TRUE(scalar_to_json("42", false, Schema::Type::kAny, &j, &err));
  EXPECT_TRUE(j.is_number_integer());
  ASSERT_TRUE(scalar_to_json("42", true, Schema::Type::kAny, &j, &err));
  EXPECT_TRUE(j.is_string()) << "quoted scalars stay strings";
  ASSERT_TRUE(scalar_to_json("1e-3", false, Schema::Type::kAny, &j, &err));
  EXPECT_DOUBLE_EQ(j.get<double>(), 1e-3);
  ASSERT_TRUE(scalar_to_json("true", false, Schema::Type::kAny, &j, &err));
  EXPECT_TRUE(j.is_boolean());
  ASSERT_TRUE(scalar_to_json("~", false, Schema::Type::kAny, &j, &err));
  EXPECT_TRUE(j.is_null());
  ASSERT_TRUE(scalar_to_json("0x1F", false, Schema::Type::kAny, &j, &err));
  EXPECT_TRUE(j.is_string());
  ASSERT_TRUE(scalar_to_json("nan", false, Schema::Type::kAny, &j, &err));
  EXPECT_TRUE(j.is_string());
  // Typed params: an int written as 1 and 1.0 becomes the same number.
  nlohmann::json a, b;
  ASSERT_TRUE(scalar_to_json("1", false, Schema::Type::kNumber, &a, &err));
  ASSERT_TRUE(scalar_to_json("1.0", false, Schema::Type::kNumber, &b, &err));
  EXPECT_EQ(a.dump(), b.dump());
  EXPECT_FALSE(scalar_to_json("1.5", false, Schema::Type::kInt, &j, &err));
  EXPECT_FALSE(scalar_to_json("99999999999999999999", false, Schema::Type::kInt, &j, &err));
  EXPECT_FALSE(scalar_to_json("yes", false, Schema::Type::kBool, &j, &err));
}

TEST(ParseSize, Units) {
  uint64_t v = 0;
  ASSERT_TRUE(parse_size("4GiB", &v));
  EXPECT_EQ(v, 4ull << 30);
  ASSERT_TRUE(parse_size("512MB", &v));
  EXPECT_EQ(v, 512'000'000ull);
  ASSERT_TRUE(parse_size("1.5KiB", &v));
  EXPECT_EQ(v, 1536u);
  ASSERT_TRUE(parse_size("123", &v));
  EXPECT_EQ(v, 123u);
  EXPECT_FALSE(parse_size("4 parsecs", &v));
  EXPECT_FALSE(parse_size("-1GB", &v));
  EXPECT_FALSE(parse_size("99999999TiB", &v));
}

TEST_F(SchemaFixture, JsonSchemaTypesParamsPerKind) {
  nlohmann::json j = to_json_schema(reg);
  EXPECT_EQ(j["$schema"], "https://json-schema.org/draft/2020-12/schema");
  EXPECT_EQ(j["properties"]["version"]["type"], "integer");
  EXPECT_EQ(j["additionalProperties"], false);
  auto all_of = j["properties"]["stages"]["items"]["allOf"];
  ASSERT_EQ(all_of.size(), 1u);
  EXPECT_EQ(all_of[0]["if"]["properties"]["kind"]["const"], "fake");
  auto params = all_of[0]["then"]["properties"]["params"];
  EXPECT_EQ(params["properties"]["n"]["type"], "integer");
  EXPECT_EQ(params["properties"]["n"]["default"], 1);
  EXPECT_EQ(params["properties"]["list"]["type"], "array");
  EXPECT_EQ(params["additionalProperties"], false);
}

}  // namespace
}  // namespace qsweep
