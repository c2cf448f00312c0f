// The `quantize` stage: params, and run() on the llama2 fixture folder.
#include "stages/quantize_stage.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "model/checkpoint/checkpoint.h"
#include "model/engine/engine.h"
#include "quant/formats/quantized_loader.h"
#include "quant/gptq_checkpoint.h"
#include "tests/testutil.h"

namespace qsweep {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path fixture(const std::string& name) {
  return fs::path(QSWEEP_QUANT_TEST_SOURCE_DIR) / "tests/fixtures/models" / name;
}

class RecordingSink : public ProgressSink {
 public:
  void update(uint64_t done, uint64_t total, const std::string& unit) override {
    updates.push_back({done, total});
    this->unit = unit;
  }
  void log(const std::string& line) override { lines.push_back(line); }
  std::vector<std::pair<uint64_t, uint64_t>> updates;
  std::string unit;
  std::vector<std::string> lines;
};

json params(json p) {
  // what the runner passes: defaults filled in
  for (const auto& spec : QuantizeStage().params())
    if (!p.contains(spec.name) && !spec.default_value.is_null()) p[spec.name] = spec.default_value;
  return p;
}

TEST(QuantizeStage, CheckParams) {
  QuantizeStage s;
  EXPECT_EQ(s.kind(), "quantize");
  EXPECT_EQ(s.check_params(params({{"method", "rtn"}, {"bits", 4}})), "");
  EXPECT_EQ(s.check_params(params({{"method", "rtn"}, {"bits", 8}, {"group_size", -1}})), "");
  for (const char* m : {"gptq", "awq", "smoothquant", "fp8"}) {
    const std::string e = s.check_params(params({{"method", m}, {"bits", 4}}));
    EXPECT_NE(e.find("not implemented yet (issue #4)"), std::string::npos) << e;
    EXPECT_NE(e.find("params.method"), std::string::npos) << e;
  }
  EXPECT_NE(s.check_params(params({{"method", "nope"}, {"bits", 4}})).find("params.method"),
            std::string::npos);
  EXPECT_NE(s.check_params(params({{"method", "rtn"}, {"bits", 3}})).find("params.bits"),
            std::string::npos);
  EXPECT_NE(s.check_params(params({{"method", "rtn"}, {"bits", 4}, {"group_size", 16}}))
                .find("params.group_size"),
            std::string::npos);
  EXPECT_NE(s.check_params(params({{"method", "rtn"}, {"bits", 4}, {"format", "awq"}}))
                .find("not implemented yet"),
            std::string::npos);
  EXPECT_NE(s.check_params(params({{"method", "rtn"}, {"bits", 4}, {"format", "xyz"}}))
                .find("params.format"),
            std::string::npos);
}

TEST(QuantizeStage, RunOnLlama2FixtureInASubFolder) {
  qsweep::testing::TempDir tmp;
  // a download artifact keeps repo paths: the model sits in a sub-folder
  fs::create_directories(tmp / "art/llama2");
  for (const auto& e : fs::directory_iterator(fixture("llama2")))
    fs::copy_file(e.path(), tmp / "art/llama2" / e.path().filename());
  fs::create_directories(tmp / "out");
  RecordingSink sink;
  std::atomic<int> cancel{0};
  StageContext ctx;
  ctx.node_id = "quantize[llama2]";
  ctx.output_dir = tmp / "out";
  ctx.params = params({{"method", "rtn"}, {"bits", 8}, {"group_size", 32}});
  ctx.inputs["checkpoint"] = {"checkpoint", false, {{"fetch", "00", tmp / "art"}}};
  ctx.progress = &sink;
  ctx.cancel = &cancel;
  QuantizeStage().run(ctx);

  const model::Checkpoint src(fixture("llama2"));
  const size_t n_linear = 7 * size_t(src.config().n_layer);
  ASSERT_EQ(sink.updates.size(), n_linear);
  EXPECT_EQ(sink.updates.back(), (std::pair<uint64_t, uint64_t>{n_linear, n_linear}));
  EXPECT_EQ(sink.unit, "layers");
  const json m = json::parse(qsweep::testing::read_file(tmp / "out/quantize.json"));
  EXPECT_EQ(m["method"], "rtn");
  EXPECT_EQ(m["bits"], 8);
  EXPECT_EQ(m["group_size"], 32);
  EXPECT_EQ(m["source"], "llama2");
  EXPECT_EQ(m["quantized"].size(), n_linear);
  EXPECT_EQ(ctx.outputs["layers_quantized"], n_linear);
  const json conf = json::parse(qsweep::testing::read_file(tmp / "out/config.json"));
  EXPECT_EQ(conf["quantization_config"]["group_size"], 32);
  EXPECT_TRUE(fs::exists(tmp / "out/quantize_config.json"));
  EXPECT_TRUE(fs::exists(tmp / "out/generation_config.json"));

  // infer-ready: the engine loads it and its logits stay close to fp32
  auto ref = model::Engine::load(fixture("llama2"), {.threads = 1});
  auto eng = model::Engine::load(tmp / "out",
                                 {.threads = 1, .linear_loader = quant::quantized_linear_loader()});
  const std::vector<int> ids = {1, 5, 9, 17, 33, 65, 100, 7};
  const auto a = ref->logits(ids), b = eng->logits(ids);
  float d = 0, amax = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    d = std::max(d, std::fabs(a[i] - b[i]));
    amax = std::max(amax, std::fabs(a[i]));
  }
  EXPECT_LE(d, 0.05f * amax);  // see gptq_checkpoint_test.cpp for the bound
}

TEST(QuantizeStage, RunFailsWithoutAModelFolderOrWhenCancelled) {
  qsweep::testing::TempDir tmp;
  fs::create_directories(tmp / "empty");
  fs::create_directories(tmp / "out");
  RecordingSink sink;
  std::atomic<int> cancel{0};
  StageContext ctx;
  ctx.output_dir = tmp / "out";
  ctx.params = params({{"method", "rtn"}, {"bits", 4}});
  ctx.progress = &sink;
  ctx.cancel = &cancel;
  EXPECT_THROW(QuantizeStage().run(ctx), std::runtime_error);  // no input
  ctx.inputs["checkpoint"] = {"checkpoint", false, {{"fetch", "00", tmp / "empty"}}};
  EXPECT_THROW(QuantizeStage().run(ctx), std::runtime_error);  // no config.json
  ctx.inputs["checkpoint"] = {"checkpoint", false, {{"fetch", "00", fixture("llama2")}}};
  cancel = 1;
  EXPECT_THROW(QuantizeStage().run(ctx), std::runtime_error);
  EXPECT_FALSE(fs::exists(tmp / "out/model.safetensors"));
  ctx.params = params({{"method", "gptq"}, {"bits", 4}});
  cancel = 0;
  EXPECT_THROW(QuantizeStage().run(ctx), std::runtime_error);
}

}  // namespace
}  // namespace qsweep
