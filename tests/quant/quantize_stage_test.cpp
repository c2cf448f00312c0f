// The `quantize` stage: params, and run() on the llama2 fixture folder.
#include "stages/quantize_stage.h"

#include <gtest/gtest.h>

#include "quant/cuda_plugin.h"

#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>

#include "model/checkpoint/checkpoint.h"
#include "model/engine/engine.h"
#include "quant/formats/quantized_loader.h"
#include "tests/quant/char_tokenizer.h"
#include "quant/calibrate.h"
#include "stages/calibrate_stage.h"
#include <fstream>
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
  auto ok = [&](json p) { EXPECT_EQ(s.check_params(params(p)), "") << p.dump(); };
  auto bad = [&](json p, const std::string& field) {
    const std::string e = s.check_params(params(p));
    EXPECT_NE(e.find("params." + field), std::string::npos) << p.dump() << " -> " << e;
  };
  ok({{"method", "rtn"}, {"bits", 4}});
  ok({{"method", "rtn"}, {"bits", 8}, {"group_size", -1}, {"format", "gptq"}});
  ok({{"method", "gptq"}, {"preset", "transformers"}, {"act_order", true}});
  ok({{"method", "gptq"}, {"bits", 8}, {"group_size", -1}, {"activations", "int8"},
      {"smoothquant_alpha", 0.8}});
  ok({{"method", "awq"}, {"format", "awq"}});
  ok({{"method", "smoothquant"}, {"preset", "llmcompressor"}, {"alpha", 0.85}});
  ok({{"method", "fp8"}, {"preset", "FP8_DYNAMIC"}});
  bad({{"method", "nope"}}, "method");
  bad({{"method", "rtn"}, {"bits", 3}}, "bits");
  bad({{"method", "rtn"}, {"group_size", 16}}, "group_size");
  bad({{"method", "rtn"}, {"format", "xyz"}}, "format");
  bad({{"method", "gptq"}, {"preset", "autoawq"}}, "preset");
  bad({{"method", "awq"}, {"sym", true}}, "sym");
  ok({{"method", "rtn"}, {"activations", "int8"}});  // W8A8: 8-bit per channel by default
  bad({{"method", "rtn"}, {"bits", 4}, {"activations", "int8"}}, "activations");
  bad({{"method", "rtn"}, {"activations", "fp8-static"}}, "activations");
  bad({{"method", "awq"}, {"act_order", true}}, "act_order");
  bad({{"method", "smoothquant"}, {"alpha", 1.5}}, "alpha");
  bad({{"method", "awq"}, {"smoothquant_alpha", 0.5}}, "smoothquant_alpha");
  bad({{"method", "gptq"}, {"damp", 0}}, "damp");
}

// Runs a stage on one context; inputs by name -> folder.
StageContext make_ctx(const fs::path& out, json p, std::map<std::string, fs::path> inputs,
                      RecordingSink* sink, std::atomic<int>* cancel) {
  fs::create_directories(out);
  StageContext ctx;
  ctx.node_id = "node";
  ctx.key = "k";
  ctx.output_dir = out;
  ctx.params = std::move(p);
  for (const auto& [name, path] : inputs) ctx.inputs[name] = {name, false, {{"up", "00", path}}};
  ctx.progress = sink;
  ctx.cancel = cancel;
  ctx.resources.threads = 1;
  return ctx;
}

TEST(CalibrateAndQuantizeStages, GptqW4OnLlama2FixtureInASubFolder) {
  qsweep::testing::TempDir tmp;
  // a download artifact keeps repo paths: the model sits in a sub-folder
  fs::create_directories(tmp / "art/llama2");
  for (const auto& e : fs::directory_iterator(fixture("llama2")))
    fs::copy_file(e.path(), tmp / "art/llama2" / e.path().filename());
  // the fixture has no tokenizer: a character-level one within its 128 ids
  qsweep::testing::write_char_tokenizer(
      tmp / "art/llama2", {"\u2581t", "he", "\u2581the", "\u2581d", "oc", "\u2581f", "ox"});
  {  // calibration text: documents of a few dozen tokens
    std::ofstream f(tmp / "calib.jsonl");
    for (int i = 0; i < 40; ++i)
      f << json{{"text", "document " + std::to_string(i) + " says the quick brown fox jumps over "
                          "the lazy dog " + std::to_string(i * 7) + " times."}}.dump() << "\n";
  }
  RecordingSink sink;
  std::atomic<int> cancel{0};
  StageContext cal = make_ctx(tmp / "cal", json{{"preset", "autoawq"}, {"seq_len", 64}},
                              {{"checkpoint", tmp / "art"}, {"dataset", tmp / "calib.jsonl"}},
                              &sink, &cancel);
  for (const auto& spec : CalibrateStage().params())
    if (!cal.params.contains(spec.name)) cal.params[spec.name] = spec.default_value;
  CalibrateStage().run(cal);
  const json cj = json::parse(qsweep::testing::read_file(tmp / "cal/calibration.json"));
  EXPECT_EQ(cj["preset"], "autoawq");
  EXPECT_EQ(cj["n_samples"], 128);  // the preset's
  EXPECT_EQ(cj["seq_len"], 64);
  EXPECT_GE(cj["sequences"].get<int>(), 1);
  EXPECT_EQ(cj["tokens"].get<int>(), 64 * cj["sequences"].get<int>());
  EXPECT_TRUE(fs::exists(tmp / "cal/stats.safetensors"));

  StageContext ctx = make_ctx(tmp / "out", params({{"method", "gptq"}, {"bits", 4}, {"group_size", 32}}),
                              {{"checkpoint", tmp / "art"}, {"calibration", tmp / "cal"}}, &sink,
                              &cancel);
  ctx.scratch_dir = tmp / "scratch";
  sink.updates.clear();
  QuantizeStage().run(ctx);
  const model::Checkpoint src(fixture("llama2"));
  const size_t n_layer = size_t(src.config().n_layer), n_linear = 7 * n_layer;
  ASSERT_EQ(sink.updates.size(), n_layer);
  EXPECT_EQ(sink.updates.back(), (std::pair<uint64_t, uint64_t>{n_layer, n_layer}));
  EXPECT_EQ(sink.unit, "layers");
  const json m = json::parse(qsweep::testing::read_file(tmp / "out/quantize.json"));
  EXPECT_EQ(m["recipe"]["method"], "gptq");
  EXPECT_EQ(m["recipe"]["preset"], "autogptq");
  EXPECT_EQ(m["recipe"]["format"], "compressed-tensors");
  EXPECT_EQ(m["source"], "llama2");
  EXPECT_EQ(m["quantized"].size(), n_linear);
  EXPECT_EQ(ctx.outputs["layers_quantized"], n_linear);
  const json conf = json::parse(qsweep::testing::read_file(tmp / "out/config.json"));
  EXPECT_EQ(conf["quantization_config"]["quant_method"], "compressed-tensors");
  EXPECT_EQ(conf["quantization_config"]["format"], "pack-quantized");
  EXPECT_TRUE(fs::exists(tmp / "out/generation_config.json"));
  EXPECT_TRUE(fs::exists(tmp / "out/model.safetensors.index.json"));

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
  EXPECT_LE(d, 0.3f * amax);

  // Bad calibration settings: a clear error naming the field.
  StageContext bad = make_ctx(tmp / "cal2", cal.params, {{"checkpoint", tmp / "art"},
                              {"dataset", tmp / "calib.jsonl"}}, &sink, &cancel);
  bad.params["seq_len"] = 100000;
  try {
    CalibrateStage().run(bad);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("params.seq_len"), std::string::npos) << e.what();
  }
  bad.params["seq_len"] = 200;  // the documents hold fewer tokens than one block
  bad.params["n_samples"] = 2;
  EXPECT_THROW(CalibrateStage().run(bad), std::runtime_error);
  // GPTQ without a calibration input
  StageContext nocal = make_ctx(tmp / "out2", params({{"method", "gptq"}}),
                                {{"checkpoint", tmp / "art"}}, &sink, &cancel);
  try {
    QuantizeStage().run(nocal);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("calibration"), std::string::npos) << e.what();
  }
}

// params.device: cuda through the stage (the CUDA plugin, quant/cuda_plugin.h).
// Where a GPU and the plugin are there (the GPU machine: QSWEEP_CUDA_PLUGIN)
// the GPU run's codes match the CPU run's; elsewhere the run fails with a
// message naming params.device and why.
// The CUDA plugin when a GPU is usable; otherwise checks that `run` (a stage
// with device: cuda) refuses with the stage's message, sets *why and returns
// null (the caller skips its GPU half).
const quant::CudaPlugin* gpu_or_refusal(const std::function<void()>& run, std::string* why) {
  const quant::CudaPlugin* plugin = quant::cuda_plugin(why);
  if (plugin && plugin->available(why)) return plugin;
  try {
    run();
    ADD_FAILURE() << "device: cuda ran without a GPU";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("params.device is cuda but "), std::string::npos) << e.what();
  }
  return nullptr;
}

TEST(QuantizeStage, DeviceCudaRunsGptqOnTheGpuOrSaysWhyNot) {
  QuantizeStage s;
  EXPECT_EQ(s.check_params(params({{"method", "awq"}, {"device", "cuda"}})), "");
  EXPECT_NE(s.check_params(params({{"method", "rtn"}, {"device", "cuda"}})).find("rtn has none"), std::string::npos);
  EXPECT_NE(s.check_params(params({{"method", "smoothquant"}, {"device", "cuda"}})).find("calibrate stage"),
            std::string::npos);
  EXPECT_EQ(CalibrateStage().check_params(json{{"device", "tpu"}}), "params.device: 'tpu' is not cpu or cuda");
  EXPECT_NE(s.check_params(params({{"method", "gptq"}, {"device", "tpu"}})).find("params.device: 'tpu'"),
            std::string::npos);
  EXPECT_EQ(s.check_params(params({{"method", "gptq"}, {"device", "cuda"}})), "");
  EXPECT_EQ(s.check_params(params({{"method", "gptq"}, {"device", "cuda"}, {"tf32", true}})), "");
  EXPECT_NE(s.check_params(params({{"method", "gptq"}, {"tf32", true}})).find("params.tf32 applies to device: cuda"),
            std::string::npos);

  qsweep::testing::TempDir tmp;
  const fs::path model = tmp / "art";
  fs::create_directories(model);
  for (const auto& e : fs::directory_iterator(fixture("llama3"))) fs::copy_file(e.path(), model / e.path().filename());
  fs::create_directories(tmp / "cal");
  {  // a calibration artifact as calibrate writes it: token sequences
    json seqs = json::array();
    for (int i = 0; i < 6; ++i) {
      json seq = json::array();
      for (int t = 0; t < 24; ++t) seq.push_back(1 + (i * 31 + t * 17) % 100);
      seqs.push_back(seq);
    }
    std::ofstream(tmp / "cal/tokens.json") << json{{"seqs", seqs}}.dump();
  }
  RecordingSink sink;
  std::atomic<int> cancel{0};
  auto run = [&](const std::string& device, const fs::path& out) {
    StageContext ctx = make_ctx(out, params({{"method", "gptq"}, {"bits", 4}, {"group_size", 32}, {"format", "gptq"}, {"device", device}}),
                                {{"checkpoint", model}, {"calibration", tmp / "cal"}}, &sink, &cancel);
    ctx.resources.gpu = 1;
    ctx.gpu_ids = {0};
    QuantizeStage().run(ctx);
  };
  std::string why;
  const quant::CudaPlugin* plugin = gpu_or_refusal([&] { run("cuda", tmp / "gpu"); }, &why);
  if (!plugin) GTEST_SKIP() << "the GPU half needs a GPU and the CUDA plugin: " << why;
  run("cpu", tmp / "cpu");
  sink.lines.clear();
  run("cuda", tmp / "gpu");
  bool said = false;
  for (const auto& l : sink.lines) said = said || l.find("GPTQ Hessians and solves, and the calibration passes, on cuda:0") != std::string::npos;
  EXPECT_TRUE(said);
  // Same checkpoint layout; the packed weights agree to >= 99.5% of the codes.
  const model::Checkpoint a(tmp / "cpu"), b(tmp / "gpu");
  size_t same = 0, total = 0;
  for (const auto& name : a.tensor_names()) {
    if (name.find("qweight") == std::string::npos) continue;
    const auto &ta = a.view(name), &tb = b.view(name);
    ASSERT_EQ(ta.n_bytes, tb.n_bytes) << name;
    const auto* pa = reinterpret_cast<const uint32_t*>(ta.data);
    const auto* pb = reinterpret_cast<const uint32_t*>(tb.data);
    for (size_t i = 0; i < ta.n_bytes / 4; ++i)
      for (int nib = 0; nib < 8; ++nib) {
        same += ((pa[i] >> (4 * nib)) & 15u) == ((pb[i] >> (4 * nib)) & 15u);
        ++total;
      }
  }
  ASSERT_GT(total, 0u);
  EXPECT_GE(double(same) / double(total), 0.995);

  // The GPU engine runs the GPTQ checkpoint with its dequantized weights:
  // logits equal the CPU engine's int4 kernels to fp32 rounding.
  const model::Checkpoint q(tmp / "gpu");
  const std::unique_ptr<model::TokenEngine> g = plugin->make_engine(q, {});
  const auto c = model::Engine::load(q, {.threads = 2, .linear_loader = quant::quantized_linear_loader()});
  std::vector<int> ids;
  for (int i = 0; i < 20; ++i) ids.push_back((i * 29 + 3) % 128);
  const std::vector<float> lg = g->logits(ids), lc = c->logits(ids);
  ASSERT_EQ(lg.size(), lc.size());
  float worst = 0;
  for (size_t i = 0; i < lg.size(); ++i) worst = std::max(worst, std::abs(lg[i] - lc[i]));
  std::printf("[ gpu ] GPTQ checkpoint on the GPU engine: max |logits - CPU int4 kernels| = %.3g\n", worst);
  EXPECT_LE(worst, 1e-4f);

  // AWQ with its calibration passes, its block scale searches (q|k|v and
  // gate|up), its clip search and its o_proj / down_proj scale searches on
  // the GPU: the same searches, sums in another order — codes nearly all
  // equal to the CPU run's.
  auto run_awq = [&](const std::string& device, const fs::path& out) {
    StageContext ctx = make_ctx(out, params({{"method", "awq"}, {"bits", 4}, {"group_size", 32}, {"format", "awq"}, {"device", device}}),
                                {{"checkpoint", model}, {"calibration", tmp / "cal"}}, &sink, &cancel);
    ctx.resources.gpu = 1;
    ctx.gpu_ids = {0};
    QuantizeStage().run(ctx);
  };
  run_awq("cpu", tmp / "awq-cpu");
  run_awq("cuda", tmp / "awq-gpu");
  const model::Checkpoint aa(tmp / "awq-cpu"), ab(tmp / "awq-gpu");
  size_t asame = 0, atotal = 0;
  for (const auto& name : aa.tensor_names()) {
    if (name.find("qweight") == std::string::npos) continue;
    const auto &ta = aa.view(name), &tb = ab.view(name);
    ASSERT_EQ(ta.n_bytes, tb.n_bytes) << name;
    for (size_t i = 0; i < ta.n_bytes; ++i) {
      asame += (ta.data[i] & 15) == (tb.data[i] & 15);
      asame += (ta.data[i] >> 4) == (tb.data[i] >> 4);
      atotal += 2;
    }
  }
  std::printf("[ gpu ] AWQ with GPU calibration passes and searches: %.4f of the codes equal the CPU run's\n",
              double(asame) / double(atotal));
  EXPECT_GE(double(asame) / double(atotal), 0.99);
}

TEST(CalibrateStage, DeviceCudaStatisticsEqualTheCpuOnesOrSaysWhyNot) {
  qsweep::testing::TempDir tmp;
  fs::create_directories(tmp / "art");
  for (const auto& e : fs::directory_iterator(fixture("llama2"))) fs::copy_file(e.path(), tmp / "art" / e.path().filename());
  qsweep::testing::write_char_tokenizer(tmp / "art", {"\u2581t", "he", "\u2581the"});
  {
    std::ofstream f(tmp / "calib.jsonl");
    for (int i = 0; i < 20; ++i) f << json{{"text", "the quick brown fox " + std::to_string(i * 13) + " jumps"}}.dump() << "\n";
  }
  RecordingSink sink;
  std::atomic<int> cancel{0};
  auto run = [&](const std::string& device, const fs::path& out) {
    StageContext cal = make_ctx(out, json{{"preset", "autoawq"}, {"seq_len", 32}, {"n_samples", 16}, {"device", device}},
                                {{"checkpoint", tmp / "art"}, {"dataset", tmp / "calib.jsonl"}}, &sink, &cancel);
    for (const auto& spec : CalibrateStage().params())
      if (!cal.params.contains(spec.name)) cal.params[spec.name] = spec.default_value;
    cal.resources.gpu = 1;
    cal.gpu_ids = {0};
    CalibrateStage().run(cal);
  };
  std::string why;
  if (!gpu_or_refusal([&] { run("cuda", tmp / "gpu"); }, &why))
    GTEST_SKIP() << "the GPU half needs a GPU and the CUDA plugin: " << why;
  run("cpu", tmp / "cpu");
  run("cuda", tmp / "gpu");
  const quant::ActStatsMap a = quant::load_act_stats(tmp / "cpu/stats.safetensors"),
                          b = quant::load_act_stats(tmp / "gpu/stats.safetensors");
  ASSERT_EQ(a.size(), b.size());
  double worst = 0;
  auto rel = [&](const Eigen::VectorXf& u, const Eigen::VectorXf& v, const std::string& what) {
    ASSERT_EQ(u.size(), v.size()) << what;
    for (Eigen::Index i = 0; i < u.size(); ++i)
      worst = std::max(worst, double(std::abs(u[i] - v[i])) / (std::abs(u[i]) + 1e-6));
  };
  for (const auto& [name, sa] : a) {  // every statistic the GPU reduced on the device
    const quant::ActStats& sb = b.at(name);
    rel(sa.absmax, sb.absmax, name + " absmax");
    rel(sa.min, sb.min, name + " min");
    rel(sa.max, sb.max, name + " max");
    rel(sa.absmean, sb.absmean, name + " absmean");
    worst = std::max(worst, std::abs(double(sa.ema_max - sb.ema_max)) / std::abs(double(sa.ema_max)));
    EXPECT_EQ(sa.tokens, sb.tokens) << name;
    EXPECT_EQ(sa.samples, sb.samples) << name;
  }
  std::printf("[ gpu ] calibration statistics on the GPU: max relative |gpu - cpu| = %.3g\n", worst);
  EXPECT_LE(worst, 1e-4);
  EXPECT_EQ(qsweep::testing::read_file(tmp / "cpu/tokens.json"), qsweep::testing::read_file(tmp / "gpu/tokens.json"));
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
  EXPECT_FALSE(fs::exists(tmp / "out/model.safetensors.index.json"));
  ctx.params = params({{"method", "gptq"}, {"bits", 4}});  // no calibration input
  cancel = 0;
  EXPECT_THROW(QuantizeStage().run(ctx), std::runtime_error);
}

}  // namespace
}  // namespace qsweep
