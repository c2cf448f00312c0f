#include "cache/manifest.h"

#include <gtest/gtest.h>

#include <functional>

namespace qsweep::cache {
namespace {

using nlohmann::json;

Manifest sample() {
  Manifest m;
  m.key = "0123456789abcdef0123456789abcdef";
  m.node = "quantize[stories260K,gptq-w4g32]";
  m.kind = "command";
  m.stage_version = 3;
  m.experiment = "sweep";
  m.params = {{"bits", 4}, {"group", 32}};
  m.inputs = {{"checkpoint", "fedcba9876543210fedcba9876543210", "download[stories260K]"}};
  m.key_fields = {{"kind", "command"}, {"stage_version", "3"}};
  m.files = {{"a.txt", 5, 1700000000123456789, "00000000000000000000000000000001"},
             {"sub/b.bin", 0, -1, "ffffffffffffffffffffffffffffffff"}};
  m.outputs = {{"exit_code", 0}};
  m.started_at = "2026-11-25T15:21:25.123Z";
  m.finished_at = "2026-11-25T15:21:26.456Z";
  m.seconds = 1.333;
  m.host = "node1";
  m.qsweep_version = "0.1.0";
  return m;
}

void expect_same(const Manifest& a, const Manifest& b) {
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.node, b.node);
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.stage_version, b.stage_version);
  EXPECT_EQ(a.experiment, b.experiment);
  EXPECT_EQ(a.params, b.params);
  ASSERT_EQ(a.inputs.size(), b.inputs.size());
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    EXPECT_EQ(a.inputs[i].name, b.inputs[i].name);
    EXPECT_EQ(a.inputs[i].key, b.inputs[i].key);
    EXPECT_EQ(a.inputs[i].node, b.inputs[i].node);
  }
  EXPECT_EQ(a.key_fields, b.key_fields);
  ASSERT_EQ(a.files.size(), b.files.size());
  for (size_t i = 0; i < a.files.size(); ++i) {
    EXPECT_EQ(a.files[i].path, b.files[i].path);
    EXPECT_EQ(a.files[i].size, b.files[i].size);
    EXPECT_EQ(a.files[i].mtime_ns, b.files[i].mtime_ns);
    EXPECT_EQ(a.files[i].xxh3, b.files[i].xxh3);
  }
  EXPECT_EQ(a.outputs, b.outputs);
  EXPECT_EQ(a.started_at, b.started_at);
  EXPECT_EQ(a.finished_at, b.finished_at);
  EXPECT_DOUBLE_EQ(a.seconds, b.seconds);
  EXPECT_EQ(a.host, b.host);
  EXPECT_EQ(a.qsweep_version, b.qsweep_version);
}

TEST(Manifest, RoundTrip) {
  Manifest m = sample(), back;
  std::string text = manifest_to_json(m), err;
  ASSERT_TRUE(manifest_from_json(text, &back, &err)) << err;
  expect_same(m, back);
  EXPECT_EQ(manifest_to_json(back), text);  // stable output
}

TEST(Manifest, StableMemberOrder) {
  std::string text = manifest_to_json(sample());
  const char* order[] = {"\"format\"",        "\"version\"",       "\"key\"",        "\"node\"",
                         "\"kind\"",          "\"stage_version\"", "\"experiment\"", "\"params\"",
                         "\"inputs\"",        "\"key_fields\"",    "\"files\"",      "\"outputs\"",
                         "\"started_at\"",    "\"finished_at\"",   "\"seconds\"",    "\"host\"",
                         "\"qsweep_version\""};
  size_t pos = 0;
  for (const char* name : order) {
    size_t at = text.find(std::string("\n  ") + name);
    ASSERT_NE(at, std::string::npos) << name;
    EXPECT_GT(at, pos) << name << " out of order in\n" << text;
    pos = at;
  }
  EXPECT_NE(text.find("\"format\": \"qsweep-artifact\""), std::string::npos);
}

std::string mutated(const std::function<void(json&)>& f) {
  json j = json::parse(manifest_to_json(sample()));
  f(j);
  return j.dump();
}

std::string parse_error(const std::string& text) {
  Manifest m;
  std::string err;
  EXPECT_FALSE(manifest_from_json(text, &m, &err));
  return err;
}

TEST(Manifest, RejectsOtherVersionWithClearMessage) {
  std::string err = parse_error(mutated([](json& j) { j["version"] = 2; }));
  EXPECT_EQ(err,
            "manifest format version 2 is not supported by this qsweep (supports 1); run `qsweep "
            "cache verify` or upgrade qsweep");
}

TEST(Manifest, RejectsOtherFormat) {
  std::string err = parse_error(mutated([](json& j) { j["format"] = "something-else"; }));
  EXPECT_NE(err.find("something-else"), std::string::npos) << err;
  EXPECT_NE(err.find("qsweep-artifact"), std::string::npos) << err;
}

TEST(Manifest, RejectsBadKey) {
  std::string err = parse_error(mutated([](json& j) { j["key"] = "abc"; }));
  EXPECT_NE(err.find("\"abc\" is not 32 hex digits"), std::string::npos) << err;
  err = parse_error(mutated([](json& j) { j["key"] = std::string(31, 'a') + "z"; }));
  EXPECT_NE(err.find("not 32 hex digits"), std::string::npos) << err;
}

TEST(Manifest, RejectsMissingFieldsAndWrongTypes) {
  EXPECT_NE(parse_error(mutated([](json& j) { j.erase("node"); })).find("missing field \"node\""),
            std::string::npos);
  EXPECT_NE(parse_error(mutated([](json& j) { j.erase("files"); })).find("missing field \"files\""),
            std::string::npos);
  EXPECT_NE(parse_error(mutated([](json& j) {
              j["stage_version"] = "3";
            })).find("\"stage_version\" must be an integer"),
            std::string::npos);
  EXPECT_NE(parse_error(mutated([](json& j) {
              j["files"][1]["size"] = -1;
            })).find("files[1]: field \"size\" must be a non-negative integer"),
            std::string::npos);
  EXPECT_NE(parse_error(mutated([](json& j) {
              j["inputs"] = json::object();
            })).find("\"inputs\" must be an array"),
            std::string::npos);
  EXPECT_NE(parse_error(mutated([](json& j) {
              j["files"][0]["path"] = "../escape";
            })).find("not a relative path inside out/"),
            std::string::npos);
  EXPECT_NE(
      parse_error(mutated([](json& j) { j.erase("version"); })).find("missing field \"version\""),
      std::string::npos);
}

TEST(Manifest, RejectsGarbage) {
  EXPECT_EQ(parse_error("{\"format\": "), "manifest is not valid JSON");
  EXPECT_EQ(parse_error("[1,2]"), "manifest is not a JSON object");
  EXPECT_EQ(parse_error(""), "manifest is not valid JSON");
}

}  // namespace
}  // namespace qsweep::cache
