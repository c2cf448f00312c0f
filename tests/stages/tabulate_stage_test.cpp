// TabulateStage on artifacts laid out as the cache keeps them
// (objects/<k[0:2]>/<key>/{manifest.json,out/}): score artifacts with their
// infer and checkpoint provenance, a Hugging Face model folder (parameter
// count, dtype, size), a quantized one (bits from quantize.json), quality.json
// of `qsweep model kl`, and a manifest; every output file.

#include "stages/tabulate_stage.h"

#include <gtest/gtest.h>

#include "model/checkpoint/safetensors.h"
#include "tests/testutil.h"

namespace qsweep {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;
using testing::read_file;
using testing::TempDir;
using testing::write_file;

class NullProgress : public ProgressSink {
 public:
  void update(uint64_t, uint64_t, const std::string&) override {}
  void log(const std::string& l) override { logs.push_back(l); }
  std::vector<std::string> logs;
};

class TabulateStageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ctx.node_id = "tables";
    ctx.key = std::string(32, 'f');
    ctx.output_dir = dir / "out";
    ctx.experiment_dir = dir.path();
    ctx.progress = &progress;
    ctx.cancel = &cancel;
    fs::create_directories(ctx.output_dir);
  }
  // An artifact folder in the cache layout; returns its out/ path.
  fs::path artifact(const std::string& key, const std::string& node, json inputs) {
    const fs::path a = dir / "cache" / "objects" / key.substr(0, 2) / key;
    fs::create_directories(a / "out");
    write_file(a / "manifest.json", json({{"key", key}, {"node", node}, {"inputs", inputs}}).dump());
    return a / "out";
  }
  InputArtifact score(const std::string& key, const std::string& node, const std::string& infer_key,
                      const std::string& ckpt_node, const std::string& ckpt_key,
                      std::vector<std::pair<std::string, std::string>> axes, double acc,
                      std::optional<int> limit = std::nullopt) {
    const std::string infer_node = "infer" + node.substr(node.find('['));
    const fs::path io = artifact(infer_key, infer_node, json::array({{{"name", "checkpoint"}, {"key", ckpt_key}, {"node", ckpt_node}}}));
    (void)io;
    const fs::path out = artifact(key, node, json::array({{{"name", "infer"}, {"key", infer_key}, {"node", infer_node}}}));
    write_file(out / "summary.json",
               json({{"arc", {{"acc,none", {{"value", acc}, {"stderr", 0.01}, {"samples", 50}}}}}}).dump());
    write_file(out / "results.json",
               json({{"config", {{"model", ckpt_node}}},
                     {"qsweep", {{"task", "arc"}, {"limit", limit ? json(*limit) : json(nullptr)},
                                 {"fewshot_from_eval_split", false}}}})
                   .dump());
    return {node, key, out, std::move(axes)};
  }
  void set_params(json p) {
    for (const auto& spec : stage.params())
      if (!p.contains(spec.name) && !spec.required) p[spec.name] = spec.default_value;
    ASSERT_EQ(stage.check_params(p), "");
    ctx.params = std::move(p);
  }
  TempDir dir;
  TabulateStage stage;
  NullProgress progress;
  std::atomic<int> cancel{0};
  StageContext ctx;
};

TEST_F(TabulateStageTest, TablesWithProvenanceSizesBitsQualityAndAReproduction) {
  // The fp32 model: 3 x 4 + 4 = 16 parameters in float32 (64 bytes of data).
  const fs::path hf = artifact("aa000000000000000000000000000001", "hf[m]", json::array());
  fs::create_directories(hf / "model");
  write_file(hf / "model" / "config.json", R"({"torch_dtype": "float32", "model_type": "llama"})");
  std::vector<float> w(12, 0.5f), b(4, 1.f);
  model::write_safetensors(hf / "model" / "model.safetensors",
                           {{"w", model::make_f32_tensor({3, 4}, w.data())}, {"b", model::make_f32_tensor({4}, b.data())}});
  const auto hf_size = fs::file_size(hf / "model" / "model.safetensors");
  // A quantized one: 4-bit weights, activations as the model.
  const fs::path q = artifact("bb000000000000000000000000000002", "quantize[m,w4]", json::array());
  write_file(q / "config.json", R"({"torch_dtype": "float32", "quantization_config": {}})");
  write_file(q / "model.safetensors", std::string(40, 'x'));
  write_file(q / "quantize.json", R"({"recipe": {"method": "gptq", "preset": "autogptq", "bits": 4, "activations": "none", "group_size": 128}})");
  const fs::path ql = artifact("cc000000000000000000000000000003", "quality[m,w4]", json::array());
  write_file(ql / "quality.json",
             R"({"sequences": 2, "positions": 99, "mean_kl": 0.125, "p99_kl": 0.5, "max_kl": 0.9, "ppl_ref": 3.5, "ppl_quant": 3.75, "top1_agree": 0.9})");

  ctx.inputs["baseline"] = {"baseline", true,
                            {score("dd000000000000000000000000000004", "score_fp32[m,arc]", "ee000000000000000000000000000005",
                                   "hf[m]", "aa000000000000000000000000000001", {{"model", "m"}, {"task", "arc"}}, 0.5)}};
  ctx.inputs["scores"] = {"scores", true,
                          {score("ff000000000000000000000000000006", "score[m,w4,arc]", "ab000000000000000000000000000007",
                                 "quantize[m,w4]", "bb000000000000000000000000000002",
                                 {{"model", "m"}, {"recipe", "w4"}, {"task", "arc"}}, 0.4, 30),
                           {"quality[m,w4]", "cc000000000000000000000000000003", ql, {{"model", "m"}, {"recipe", "w4"}}}}};
  ctx.inputs["models"] = {"models", true,
                          {{"hf[m]", "aa000000000000000000000000000001", hf, {{"model", "m"}}},
                           {"quantize[m,w4]", "bb000000000000000000000000000002", q, {{"model", "m"}, {"recipe", "w4"}}}}};
  write_file(dir / "manifest.yaml", R"(version: 1
name: t
experiment: exp.yaml
table: tables
tolerance: {abs: 0.1}
columns:
  arc: {task: arc, metric: "acc,none"}
  kl: {task: kl_vs_fp32, metric: mean_kl, scale: 1}
rows:
  - {row: {model: m, recipe: FP32}, values: {arc: 50.0}}
  - {row: {model: m, recipe: w4}, values: {arc: 41.0, kl: 0.125}}
)");
  ctx.inputs["manifest"] = {"manifest", false, {{"file:manifest.yaml", "d", dir / "manifest.yaml", {}}}};
  set_params({{"rows", {"model", "recipe"}}, {"title", "T"}});
  stage.run(ctx);

  for (const char* f : {"table.md", "table.csv", "table.tex", "table.json", "report.html", "reproduction.json", "reproduction.md"})
    EXPECT_TRUE(fs::is_regular_file(ctx.output_dir / f)) << f;
  const json t = json::parse(read_file(ctx.output_dir / "table.json"));
  ASSERT_EQ(t["rows"].size(), 2u);
  const json& base = t["rows"][0];
  const json& w4 = t["rows"][1];
  EXPECT_EQ(base["id"], "m / FP32");
  EXPECT_EQ(base["storage"]["params"], 16);
  EXPECT_EQ(base["storage"]["measured_bytes"], hf_size);
  EXPECT_DOUBLE_EQ(base["storage"]["nominal_bytes"].get<double>(), 64.0);  // 16 x 32 bit
  EXPECT_EQ(w4["method"]["w_bits"], 4);
  EXPECT_EQ(w4["method"]["a_bits"], 32);  // as the fp32 baseline
  EXPECT_EQ(w4["storage"]["measured_bytes"], 40);
  EXPECT_DOUBLE_EQ(w4["storage"]["nominal_bytes"].get<double>(), 8.0);  // 16 x 4 bit
  const json& cell = w4["cells"]["arc"];
  EXPECT_DOUBLE_EQ(cell["diff"].get<double>(), -10.0);
  EXPECT_EQ(cell["limit"], 30);
  EXPECT_EQ(cell["provenance"]["score_key"], "ff000000000000000000000000000006");
  EXPECT_EQ(cell["provenance"]["infer_key"], "ab000000000000000000000000000007");
  EXPECT_EQ(cell["provenance"]["checkpoint_key"], "bb000000000000000000000000000002");
  EXPECT_EQ(cell["provenance"]["checkpoint_node"], "quantize[m,w4]");
  EXPECT_DOUBLE_EQ(w4["cells"]["kl_vs_fp32"]["value"].get<double>(), 0.125);
  EXPECT_EQ(w4["cells"]["kl_vs_fp32"]["provenance"]["quality_key"], "cc000000000000000000000000000003");
  const json rep = json::parse(read_file(ctx.output_dir / "reproduction.json"));
  EXPECT_EQ(rep["counts"], json({{"match", 2}, {"within_noise", 0}, {"drift", 1}, {"missing", 0}}));
  EXPECT_EQ(ctx.outputs["rows"], 2);
  EXPECT_NE(read_file(ctx.output_dir / "table.md").find("40.00 ▼10.00†"), std::string::npos)
      << read_file(ctx.output_dir / "table.md");
}

TEST_F(TabulateStageTest, ClearErrorsForWrongInputsAndParams) {
  const fs::path notscore = artifact("aa000000000000000000000000000009", "hf[m]", json::array());
  ctx.inputs["scores"] = {"scores", true, {{"hf[m]", "aa000000000000000000000000000009", notscore, {}}}};
  set_params(json::object());
  try {
    stage.run(ctx);
    FAIL();
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("hf[m]: no summary.json in "), std::string::npos) << e.what();
  }
  json p = {{"convention", "z"}};
  for (const auto& spec : stage.params())
    if (!p.contains(spec.name)) p[spec.name] = spec.default_value;
  EXPECT_EQ(stage.check_params(p), "params.convention: 'z' is not raw or normalized");
  p["convention"] = "raw";
  p["formats"] = {"md", "pdf"};
  EXPECT_EQ(stage.check_params(p), "params.formats: unknown format 'pdf' (md, csv, tex, json, html)");
  p["formats"] = {"md"};
  p["column_decimals"] = {{"kl", "four"}};
  EXPECT_EQ(stage.check_params(p), "params.column_decimals.kl: 'four' is not a number of decimal places (0..12)");
  write_file(dir / "bad.yaml", "version: 1\nname: x\nexperiment: e.yaml\ntable: t\ncolumns: {a: {task: a}}\nrows: []\n");
  EXPECT_NE(stage.check_file_input("manifest", dir / "bad.yaml").find("columns.a.metric: missing"), std::string::npos);
  EXPECT_TRUE(stage.keys_input_identity());
}

}  // namespace
}  // namespace qsweep
