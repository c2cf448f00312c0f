// The shipped experiments/eval_stories.yaml (issue #5) on the local data
// mirror: the six OLL v1 tasks on stories260K through `qsweep run`, with a
// SIGKILL in the middle of an infer node and a rerun that recomputes no
// journaled request; the scores are lm-eval-shaped and marked as limited.

#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <gmock/gmock.h>

#include "tests/e2e/e2e_util.h"

namespace qsweep::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class EvalTest : public E2ETest {};

const std::vector<std::string> k_tasks = {"arc_challenge", "hellaswag", "winogrande",
                                          "mmlu", "truthfulqa_mc2", "gsm8k"};

// Every line of every request journal: key -> times written.
std::map<std::string, int> journal_keys(const fs::path& cache, size_t* lines) {
  std::map<std::string, int> keys;
  *lines = 0;
  for (const auto& name : list_dir(cache / "journal" / "infer")) {
    std::ifstream in(cache / "journal" / "infer" / name);
    std::string line;
    while (std::getline(in, line)) {
      const json j = json::parse(line, nullptr, false);
      if (!j.is_object() || !j.contains("k")) continue;
      ++*lines;
      ++keys[j["k"].get<std::string>()];
    }
  }
  return keys;
}

json read_json(const fs::path& p) {
  std::ifstream in(p);
  return json::parse(in, nullptr, false);
}

TEST_F(EvalTest, SixTasksSurviveSigkillMidInferAndResumeFromTheJournal) {
  const fs::path data = shared_data_dir();
  if (data.empty())
    GTEST_SKIP() << "../shared/data (the local mirror of the model and benchmark files) is absent "
                    "next to the source tree";
  const fs::path yaml = source_dir() / "experiments" / "eval_stories.yaml";
  ASSERT_TRUE(fs::exists(yaml)) << yaml;
  // 8 docs per task (per MMLU subject): ~2,900 requests, 2 threads.
  const std::vector<std::string> args = {qsweep_bin().string(), "run", yaml.string(), "score_fp32[*]",
                                         "--set", "vars.limit=8", "--progress", "lines",
                                         "--threads", "2", "--cache", cache().string()};
  const std::map<std::string, std::string> env = {{"QSWEEP_HUB_MIRROR", data.string()}};

  // First run: killed (runner and stages, SIGKILL) once the journal holds
  // answers of the big MMLU node while it is still running.
  {
    Process p(args, dir_.path(), env);
    size_t lines = 0;
    const bool got = wait_until(
        [&] {
          journal_keys(cache(), &lines);
          const Journal j = journal();
          return lines >= 300 && j.find("", "node_done", "infer_fp32[stories260K,mmlu]").is_null();
        },
        240);
    ASSERT_TRUE(got) << "no journaled answers while infer_fp32[stories260K,mmlu] ran:\n"
                     << p.err_so_far();
    p.kill_session();
    p.wait(10);
  }
  size_t before_lines = 0;
  const auto before = journal_keys(cache(), &before_lines);
  ASSERT_GT(before.size(), 0u);

  // Rerun: completes; nothing journaled is asked again.
  ProcResult r = run_command(args, 600, dir_.path(), env);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  size_t after_lines = 0;
  const auto after = journal_keys(cache(), &after_lines);
  for (const auto& [k, n] : after) EXPECT_EQ(n, 1) << "request " << k << " was computed " << n << " times";
  for (const auto& [k, n] : before) EXPECT_TRUE(after.count(k)) << k;
  EXPECT_EQ(after_lines, after.size());
  const Journal j = journal();
  const auto keys = j.keys();
  size_t resumed = 0;
  for (const auto& t : k_tasks) {
    const std::string infer_id = "infer_fp32[stories260K," + t + "]";
    const std::string score_id = "score_fp32[stories260K," + t + "]";
    ASSERT_TRUE(keys.count(infer_id) && keys.count(score_id)) << t;
    const auto out = [&](const std::string& id) {
      const std::string k = keys.at(id);
      return cache() / "objects" / k.substr(0, 2) / k / "out";
    };
    const json infer = read_json(out(infer_id) / "infer.json");
    EXPECT_EQ(infer["limit"], 8) << t;
    resumed += infer["from_journal"].get<size_t>();
    const json res = read_json(out(score_id) / "results.json");
    ASSERT_TRUE(res.is_object()) << t;
    EXPECT_EQ(res["config"]["limit"], 8) << t;
    for (const char* k : {"results", "configs", "versions", "n-shot", "n-samples", "config"})
      EXPECT_TRUE(res.contains(k)) << t << " results.json lacks " << k;
    const json summary = read_json(out(score_id) / "summary.json");
    ASSERT_TRUE(summary.contains(t)) << summary.dump();
    for (const auto& [metric, v] : summary[t].items()) {
      EXPECT_EQ(v["limit"], 8) << t << " " << metric;
      const double x = v["value"].get<double>();
      EXPECT_TRUE(x >= 0 && x <= 1) << t << " " << metric << " = " << x;
    }
    std::ifstream samples(out(score_id) / "samples.jsonl");
    size_t n = 0;
    for (std::string line; std::getline(samples, line);) ++n;
    EXPECT_EQ(n, t == "mmlu" ? 57u * 8u : 8u) << t;
  }
  // The killed MMLU node ran again and took what it had answered from the journal.
  EXPECT_FALSE(j.find(j.last_run(), "node_done", "infer_fp32[stories260K,mmlu]").is_null());
  EXPECT_GT(resumed, 0u);
  // gsm8k reports both of lm-eval's filter chains.
  const std::string g = keys.at("score_fp32[stories260K,gsm8k]");
  const json gs = read_json(cache() / "objects" / g.substr(0, 2) / g / "out" / "summary.json");
  EXPECT_TRUE(gs["gsm8k"].contains("exact_match,strict-match")) << gs.dump();
  EXPECT_TRUE(gs["gsm8k"].contains("exact_match,flexible-extract")) << gs.dump();
}

// Issue #6: the Open LLM Leaderboard v2 tasks, the MMLU-Pro CoT variant and
// MT-Bench answers through `qsweep run` with a limit; a larger limit reuses
// every journaled request.
TEST_F(EvalTest, LeaderboardV2AndMtBenchRunWithALimitAndResume) {
  const fs::path data = shared_data_dir();
  if (data.empty())
    GTEST_SKIP() << "../shared/data (the local mirror of the model and benchmark files) is absent "
                    "next to the source tree";
  const fs::path yaml = source_dir() / "experiments" / "eval_stories_v2.yaml";
  const std::map<std::string, std::string> env = {{"QSWEEP_HUB_MIRROR", data.string()}};
  auto run_with = [&](int limit) {
    return run_command({qsweep_bin().string(), "run", yaml.string(), "score_fp32[*]", "mt_bench_fp32[*]",
                        "--set", "vars.limit=" + std::to_string(limit), "--progress", "lines",
                        "--cache", cache().string()},
                       600, dir_.path(), env);
  };
  ProcResult r = run_with(2);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  ProcResult r3 = run_with(3);
  ASSERT_EQ(r3.exit_code, 0) << describe(r3);
  const Journal j = journal();
  const auto keys = j.keys();
  const auto out = [&](const std::string& id) {
    const std::string k = keys.at(id);
    return cache() / "objects" / k.substr(0, 2) / k / "out";
  };
  const std::vector<std::string> tasks = {"leaderboard_bbh",      "leaderboard_gpqa",   "leaderboard_musr",
                                          "leaderboard_mmlu_pro", "mmlu_pro_cot",       "leaderboard_math_hard",
                                          "leaderboard_ifeval"};
  for (const auto& t : tasks) {
    const std::string infer_id = "infer_fp32[stories260K," + t + "]";
    const std::string score_id = "score_fp32[stories260K," + t + "]";
    ASSERT_TRUE(keys.count(infer_id) && keys.count(score_id)) << t;
    const json infer = read_json(out(infer_id) / "infer.json");
    EXPECT_EQ(infer["limit"], 3) << t;
    EXPECT_GT(infer["from_journal"].get<size_t>(), 0u) << t << ": the limit-2 answers are reused";
    const json summary = read_json(out(score_id) / "summary.json");
    ASSERT_TRUE(summary.contains(t)) << t << " " << summary.dump();
    if (t != "mmlu_pro_cot") {
      const json norm = read_json(out(score_id) / "normalized.json");
      const double v = norm["value"].get<double>();
      EXPECT_TRUE(v >= 0 && v <= 100) << t << " normalized " << v;
    }
  }
  const json mt = read_json(out("mt_bench_fp32[stories260K]") / "infer.json");
  EXPECT_EQ(mt["questions"], 3);
  EXPECT_EQ(mt["computed"], 2) << "only the third question's two turns are new";
  std::ifstream answers(out("mt_bench_fp32[stories260K]") / "answers.jsonl");
  size_t n = 0;
  for (std::string line; std::getline(answers, line);) {
    const json a = json::parse(line);
    EXPECT_EQ(a["choices"][0]["turns"].size(), 2u);
    ++n;
  }
  EXPECT_EQ(n, 3u);
}

}  // namespace
}  // namespace qsweep::testing
