// InferStage and ScoreStage in-process on stories260K and the offline MMLU
// anatomy files: outputs, the request journal (resume, torn tail, identical
// requests shared), chat-template prompts, limit marking, errors.

#include "stages/infer_stage.h"

#include <gtest/gtest.h>

#include <fstream>

#include "model/checkpoint/llama2c.h"
#include "model/tokenizer/llama2c_tokenizer.h"
#include "model/util/text_file.h"
#include "quant/cuda_plugin.h"
#include "stages/mtbench_answers.h"
#include "stages/score_stage.h"
#include "tests/testutil.h"

namespace qsweep {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::TempDir;

struct NullProgress : ProgressSink {
  void update(uint64_t done, uint64_t total, const std::string& unit) override {
    last_done = done, last_total = total, last_unit = unit;
  }
  void log(const std::string& line) override { logs.push_back(line); }
  uint64_t last_done = 0, last_total = 0;
  std::string last_unit;
  std::vector<std::string> logs;
};

std::vector<json> jsonl(const fs::path& p) {
  std::vector<json> out;
  std::ifstream in(p);
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

class InferStageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = testing::shared_data_dir();
    if (data_.empty()) GTEST_SKIP() << "needs ../shared/data (stories260K and benchmarks/mmlu)";
    const fs::path bin = data_ / "models/stories260K/stories260K.bin";
    model::import_llama2c(bin, bin.parent_path() / "tok512.bin", dir_ / "model");
    model::write_hf_tokenizer(*model::Llama2cTokenizer::load((bin.parent_path() / "tok512.bin").string()),
                              (dir_ / "model").string());
  }

  // An infer node's context: output into `out`, the shared journal, the
  // stage's defaults overridden by `params`, the imported model as checkpoint.
  StageContext node_ctx(const std::string& out, const json& params) {
    StageContext ctx;
    ctx.node_id = "infer[test]";
    ctx.output_dir = dir_ / out;
    fs::create_directories(ctx.output_dir);
    ctx.journal_dir = dir_ / "journal";
    ctx.resources.threads = 2;
    ctx.progress = &progress_;
    ctx.params = json::object();
    for (const auto& s : InferStage().params()) ctx.params[s.name] = s.default_value;
    for (const auto& [k, v] : params.items()) ctx.params[k] = v;
    ctx.inputs["checkpoint"] = {"checkpoint", false, {{"hf[m]", "model-key-1", dir_ / "model"}}};
    return ctx;
  }

  // Runs the infer stage into `out` with `params` over the defaults.
  std::string run_infer(const std::string& out, json params = json::object(),
                        const fs::path& task = {}) {
    InferStage st;
    StageContext ctx = node_ctx(out, params);
    const json& p = ctx.params;
    const fs::path tf = task.empty() ? testing::source_dir() / "experiments/tasks/mmlu_anatomy.yaml" : task;
    ctx.inputs["dataset"] = {"dataset", false, {{"data[mmlu]", "data-key", data_ / "benchmarks/mmlu"}}};
    ctx.inputs["task"] = {"task", false, {{"file:t.yaml", "task-key", tf}}};
    if (std::string e = st.check_params(p); !e.empty()) return e;
    try {
      st.run(ctx);
    } catch (const std::exception& e) {
      return e.what();
    }
    return {};
  }

  json infer_json(const std::string& out) { return model::read_json_file(dir_ / out / "infer.json"); }

  fs::path data_;
  TempDir dir_;
  NullProgress progress_;
};

TEST_F(InferStageTest, WritesOneResponsePerRequestAndResumesFromTheJournal) {
  ASSERT_EQ(run_infer("a", {{"limit", 6}}), "");
  const json a = infer_json("a");
  EXPECT_EQ(a["docs"], 6);
  EXPECT_EQ(a["requests"], 24);
  EXPECT_EQ(a["computed"], 24);
  EXPECT_EQ(a["from_journal"], 0);
  EXPECT_EQ(a["limit"], 6);
  EXPECT_EQ(progress_.last_done, 24u);
  EXPECT_EQ(progress_.last_unit, "requests");
  const auto ra = jsonl(dir_ / "a/responses.jsonl");
  ASSERT_EQ(ra.size(), 24u);
  for (size_t i = 0; i < ra.size(); ++i) {
    EXPECT_EQ(ra[i]["i"], i);
    EXPECT_EQ(ra[i]["doc"], i / 4);
    EXPECT_EQ(ra[i]["index"], i % 4);
    EXPECT_LT(ra[i]["logprob"].get<double>(), 0);
  }
  EXPECT_TRUE(fs::exists(dir_ / "a/eval_set.json"));
  EXPECT_EQ(model::read_text_file(dir_ / "a/task.yaml"),
            model::read_text_file(testing::source_dir() / "experiments/tasks/mmlu_anatomy.yaml"));

  // The same node again (a rerun after a kill before publishing): every
  // answer comes from the journal, identical.
  ASSERT_EQ(run_infer("b", {{"limit", 6}}), "");
  EXPECT_EQ(infer_json("b")["computed"], 0);
  EXPECT_EQ(infer_json("b")["from_journal"], 24);
  EXPECT_EQ(jsonl(dir_ / "b/responses.jsonl"), ra);

  // A larger limit computes only the new docs' requests.
  ASSERT_EQ(run_infer("c", {{"limit", 8}}), "");
  EXPECT_EQ(infer_json("c")["computed"], 8);
  EXPECT_EQ(infer_json("c")["from_journal"], 24);
}

TEST_F(InferStageTest, ATornJournalLineIsRecomputedOnly) {
  ASSERT_EQ(run_infer("a", {{"limit", 3}, {"batch_size", 4}}), "");
  // Cut the journal in the middle of its last record (a SIGKILL mid-write).
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir_ / "journal")) files.push_back(e.path());
  ASSERT_EQ(files.size(), 1u);
  const std::string text = model::read_text_file(files[0]);
  const size_t last = text.rfind('\n', text.size() - 2);
  {
    std::ofstream f(files[0], std::ios::binary | std::ios::trunc);
    f << text.substr(0, last + 1 + (text.size() - last) / 2);
  }
  ASSERT_EQ(run_infer("b", {{"limit", 3}, {"batch_size", 4}}), "");
  EXPECT_EQ(infer_json("b")["computed"], 1);
  EXPECT_EQ(infer_json("b")["from_journal"], 11);
  const auto a = jsonl(dir_ / "a/responses.jsonl"), b = jsonl(dir_ / "b/responses.jsonl");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i + 1 < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << "journaled answers are reused as they are";
  // The recomputed one ran in another batch composition: the same answer up
  // to fp32 summation order.
  EXPECT_NEAR(a.back()["logprob"].get<double>(), b.back()["logprob"].get<double>(), 1e-4);
  EXPECT_EQ(a.back()["hash"], b.back()["hash"]);
}

TEST_F(InferStageTest, SettingsThatChangeAnswersUseAnotherJournal) {
  ASSERT_EQ(run_infer("a", {{"limit", 2}}), "");
  ASSERT_EQ(run_infer("b", {{"limit", 2}, {"add_bos_token", true}}), "");
  EXPECT_EQ(infer_json("b")["computed"], 8) << "add_bos_token is in the backend fingerprint";
  EXPECT_NE(infer_json("a")["backend"], infer_json("b")["backend"]);
  ASSERT_EQ(run_infer("c", {{"limit", 2}, {"num_fewshot", 0}}), "");
  EXPECT_EQ(infer_json("c")["computed"], 8) << "other prompts, other requests";
}

TEST_F(InferStageTest, ChatTemplateModeRendersThePrompts) {
  ASSERT_EQ(run_infer("a", {{"limit", 2}, {"apply_chat_template", true}, {"chat_template", "chatml"},
                            {"fewshot_as_multiturn", true}, {"system_instruction", "Answer."}}),
            "");
  const json set = model::read_json_file(dir_ / "a/eval_set.json");
  const std::string prompt = set["docs"][0]["prompt"];
  EXPECT_EQ(prompt.rfind("<|im_start|>system\nAnswer.\n\nThe following are multiple choice", 0), 0u) << prompt;
  EXPECT_NE(prompt.find("<|im_start|>assistant\nB<|im_end|>"), std::string::npos) << prompt;
  EXPECT_EQ(prompt.substr(prompt.size() - 22), "<|im_start|>assistant\n") << prompt;
  // stories260K's tokenizer_config.json has no chat template: `auto` says so.
  const std::string e = run_infer("b", {{"limit", 2}, {"apply_chat_template", true}});
  EXPECT_NE(e.find("chat_template"), std::string::npos) << e;
}

TEST_F(InferStageTest, ScoreStageMarksTheLimit) {
  ASSERT_EQ(run_infer("a", {{"limit", 5}}), "");
  ScoreStage sc;
  StageContext ctx;
  ctx.node_id = "score[test]";
  ctx.output_dir = dir_ / "score";
  fs::create_directories(ctx.output_dir);
  ctx.progress = &progress_;
  ctx.params = {{"normalize", "none"}};
  ctx.inputs["infer"] = {"infer", false, {{"infer[test]", "k", dir_ / "a"}}};
  sc.run(ctx);
  const json r = model::read_json_file(dir_ / "score/results.json");
  EXPECT_EQ(r["config"]["limit"], 5);
  EXPECT_EQ(r["n-samples"]["mmlu_anatomy"]["effective"], 5);
  EXPECT_EQ(r["n-samples"]["mmlu_anatomy"]["original"], 135);
  EXPECT_EQ(r["n-shot"]["mmlu_anatomy"], 5);
  const json s = model::read_json_file(dir_ / "score/summary.json");
  EXPECT_EQ(s["mmlu_anatomy"]["acc,none"]["limit"], 5);
  EXPECT_EQ(jsonl(dir_ / "score/samples.jsonl").size(), 5u);
  const std::string md = model::read_text_file(dir_ / "score/score.md");
  EXPECT_NE(md.find("Limited run"), std::string::npos) << md;
  const std::string rows = model::read_text_file(dir_ / "score/rows.tsv");
  EXPECT_EQ(rows.rfind("score[test]\tmmlu_anatomy\tacc,none\t", 0), 0u) << rows;
  EXPECT_EQ(rows.substr(rows.size() - 3), "\t5\n") << rows;

  // normalize: oll_v2 -> normalized.json and a labelled row.
  ctx.output_dir = dir_ / "score2";
  fs::create_directories(ctx.output_dir);
  ctx.params["normalize"] = "oll_v2";
  ASSERT_EQ(sc.check_params(ctx.params), "");
  sc.run(ctx);
  const json n = model::read_json_file(dir_ / "score2/normalized.json");
  const double acc = s["mmlu_anatomy"]["acc,none"]["value"];
  EXPECT_NEAR(n["value"].get<double>(), std::max(acc - 0.25, 0.0) / 0.75 * 100, 1e-9);
  const std::string rows2 = model::read_text_file(dir_ / "score2/rows.tsv");
  EXPECT_NE(rows2.find("\toll_v2_normalized(acc)\t"), std::string::npos) << rows2;
  ctx.params["normalize"] = "oll_v3";
  EXPECT_EQ(sc.check_params(ctx.params), "params.normalize: unknown scheme 'oll_v3' (none, oll_v2)");
}

TEST_F(InferStageTest, ErrorsNameWhatToFix) {
  TempDir t;
  testing::write_file(t / "bad.yaml", "task: x\ntest_split: test\ndata_files: {test: nope/*.csv}\n"
                                      "data_format: mmlu_csv\noutput_type: multiple_choice\n"
                                      "doc_to_text: q\ndoc_to_target: answer\ndoc_to_choice: choices\n");
  std::string e = run_infer("a", {}, t / "bad.yaml");
  EXPECT_NE(e.find("nope/*.csv"), std::string::npos) << e;
  EXPECT_NE(e.find("test"), std::string::npos) << e;
  EXPECT_EQ(run_infer("a", {{"limit", 0}}), "params.limit: must be a positive number of docs (or null for all)");
  InferStage st;
  EXPECT_EQ(st.check_file_input("task", t / "bad.yaml"), "") << "missing data is a run-time error";
  testing::write_file(t / "bad2.yaml", "task: x\nnum_fewshot: five\n");
  e = st.check_file_input("task", t / "bad2.yaml");
  EXPECT_NE(e.find("bad2.yaml:2:14: key 'num_fewshot'"), std::string::npos) << e;
  EXPECT_EQ(st.check_file_input("dataset", t / "bad2.yaml"), "") << "only the task input is a task file";
}

TEST_F(InferStageTest, DeviceCudaAnswersLikeTheCpuEngineOrSaysWhyNot) {
  InferStage st;
  auto params = [&](const json& over) {
    json p = json::object();
    for (const auto& s : st.params()) p[s.name] = s.default_value;
    for (const auto& [k, v] : over.items()) p[k] = v;
    return p;
  };
  EXPECT_EQ(st.check_params(params({{"dtype", "bfloat16"}})),
            "params.dtype: the CPU engine computes in float32 only; bfloat16 needs device: cuda");
  EXPECT_EQ(st.check_params(params({{"device", "cuda"}, {"dtype", "fp8"}})),
            "params.dtype: unknown dtype 'fp8' (float32, bfloat16, float16)");
  EXPECT_EQ(st.check_params(params({{"tf32", true}})), "params.tf32: applies to device: cuda with dtype float32 only");
  EXPECT_EQ(st.check_params(params({{"device", "tpu"}})), "params.device: 'tpu' is not cpu or cuda");
  EXPECT_NE(st.check_params(params({{"device", "cuda"}, {"backend", {{"kind", "qsweep"}}}})).find("drop device"),
            std::string::npos);
  EXPECT_EQ(st.check_params(params({{"device", "cuda"}, {"dtype", "bfloat16"}})), "");

  // The GPU needs a slot (resources.gpu) like any GPU stage.
  auto run_gpu = [&](const std::string& out, const json& p) -> std::string {
    StageContext ctx = node_ctx(out, p);
    ctx.inputs["dataset"] = {"dataset", false, {{"data[mmlu]", "data-key", data_ / "benchmarks/mmlu"}}};
    ctx.inputs["task"] = {"task", false,
                          {{"file:t.yaml", "task-key", testing::source_dir() / "experiments/tasks/mmlu_anatomy.yaml"}}};
    ctx.resources.gpu = 1;
    ctx.gpu_ids = {0};
    try {
      InferStage().run(ctx);
    } catch (const std::exception& e) {
      return e.what();
    }
    return {};
  };
  std::string why;
  const quant::CudaPlugin* plugin = quant::cuda_plugin(&why);
  if (!plugin || !plugin->available(&why)) {
    const std::string e = run_gpu("gpu", {{"limit", 6}, {"device", "cuda"}});
    EXPECT_NE(e.find("params.device is cuda but "), std::string::npos) << e;
    GTEST_SKIP() << "the GPU half needs a GPU and the CUDA plugin: " << why;
  }
  ASSERT_EQ(run_infer("cpu", {{"limit", 6}}), "");
  ASSERT_EQ(run_gpu("gpu", {{"limit", 6}, {"device", "cuda"}}), "");
  // Another engine is another journal: nothing is taken from the CPU run's.
  EXPECT_EQ(infer_json("gpu")["computed"], 24);
  bool said = false;
  for (const auto& l : progress_.logs) said = said || l.find("infer: CUDA engine on ") != std::string::npos;
  EXPECT_TRUE(said);
  const auto rc = jsonl(dir_ / "cpu/responses.jsonl"), rg = jsonl(dir_ / "gpu/responses.jsonl");
  ASSERT_EQ(rc.size(), rg.size());
  for (size_t i = 0; i < rc.size(); ++i) {
    EXPECT_NEAR(rg[i]["logprob"].get<double>(), rc[i]["logprob"].get<double>(), 1e-4) << "request " << i;
    EXPECT_EQ(rg[i]["is_greedy"], rc[i]["is_greedy"]) << "request " << i;
  }
  // bf16: answers close to fp32's (documented tolerance), its own journal.
  ASSERT_EQ(run_gpu("bf16", {{"limit", 6}, {"device", "cuda"}, {"dtype", "bfloat16"}}), "");
  EXPECT_EQ(infer_json("bf16")["computed"], 24);
  const auto rb = jsonl(dir_ / "bf16/responses.jsonl");
  for (size_t i = 0; i < rc.size(); ++i)
    EXPECT_NEAR(rb[i]["logprob"].get<double>(), rc[i]["logprob"].get<double>(),
                0.05 * std::abs(rc[i]["logprob"].get<double>()) + 0.05)
        << "request " << i;
}

// ---- mode: mt_bench (stages/mtbench_answers.h)

TEST(MtBench, FastChatTemperatures) {
  EXPECT_EQ(mtbench_temperature("writing"), 0.7);
  EXPECT_EQ(mtbench_temperature("roleplay"), 0.7);
  EXPECT_EQ(mtbench_temperature("math"), 0.0);
  EXPECT_EQ(mtbench_temperature("coding"), 0.0);
  EXPECT_EQ(mtbench_temperature("reasoning"), 0.0);
  EXPECT_EQ(mtbench_temperature("extraction"), 0.0);
  EXPECT_EQ(mtbench_temperature("stem"), 0.1);
  EXPECT_EQ(mtbench_temperature("humanities"), 0.1);
  EXPECT_EQ(mtbench_temperature("something-else"), 0.7) << "FastChat's default";
}

TEST_F(InferStageTest, MtBenchAnswersTwoTurnsAndResumes) {
  const fs::path q = data_ / "benchmarks/mt_bench";
  auto run_mt = [&](const std::string& out, int limit) {
    StageContext ctx = node_ctx(out, {{"mode", "mt_bench"}, {"chat_template", "chatml"},
                                      {"limit", limit}, {"max_new_tokens", 48}});
    ctx.inputs["dataset"] = {"dataset", false, {{"data_mt_bench", "k", q}}};
    InferStage().run(ctx);
  };
  run_mt("a", 3);
  const auto a = jsonl(dir_ / "a/answers.jsonl");
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0]["question_id"], 81);
  EXPECT_EQ(a[0]["category"], "writing");
  EXPECT_EQ(a[0]["model_id"], "hf[m]");
  ASSERT_EQ(a[0]["choices"][0]["turns"].size(), 2u);
  for (const auto& x : a)
    for (const auto& t : x["choices"][0]["turns"]) {
      const std::string s = t;
      EXPECT_FALSE(s.empty());
      EXPECT_EQ(s.find("<|im_end|>"), std::string::npos) << "cut at the end of turn";
      EXPECT_NE(s.front(), ' ') << "stripped";
    }
  EXPECT_EQ(infer_json("a")["computed"], 6);
  EXPECT_EQ(infer_json("a")["chat_template"], "chatml");
  // Rerun: nothing regenerated, the same answers (sampled turns included).
  run_mt("b", 3);
  EXPECT_EQ(infer_json("b")["computed"], 0);
  EXPECT_EQ(infer_json("b")["from_journal"], 6);
  EXPECT_EQ(jsonl(dir_ / "b/answers.jsonl"), a);
  // One more question: only its two turns are generated.
  run_mt("c", 4);
  EXPECT_EQ(infer_json("c")["computed"], 2);
}

TEST_F(InferStageTest, MtBenchBadQuestionNamesFileAndLine) {
  TempDir t;
  testing::write_file(t / "question.jsonl",
                      "{\"question_id\": 1, \"category\": \"math\", \"turns\": [\"a\", \"b\"]}\n"
                      "{\"question_id\": 2, \"turns\": [\"only one\"]}\n");
  InferStage st;
  StageContext ctx = node_ctx("x", {{"mode", "mt_bench"}, {"chat_template", "chatml"}});
  ctx.inputs["dataset"] = {"dataset", false, {{"d", "k", t.path()}}};
  try {
    st.run(ctx);
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("question.jsonl:2: field 'turns' must be a list of 2 strings"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace qsweep
