// The judge stage end to end (issue #8): MT-Bench single grading through
// `qsweep run`, with (1) a small scripted loopback judge (the one case where
// a real judge is not available offline) whose judgments include malformed
// ratings — parse fallbacks and failures counted per turn, identical
// (question, answer, judge) triples of two variants judged once, usage and
// cost reported, a budget stop that loses nothing, a resume — and (2) a
// real local judge: a managed `qsweep serve` of stories260K.

#include <atomic>
#include <fstream>
#include <mutex>
#include <regex>
#include <thread>

#include <gmock/gmock.h>

#include "tests/e2e/e2e_util.h"

#include <httplib.h>  // last (see pipeline/cli/cmd_serve.cpp)

namespace qsweep::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class JudgeTest : public E2ETest {
 protected:
  // data/: three questions (writing 81, reasoning 101, math 111: the last two
  // need reference answers), the judge prompts and references; answers of
  // variants a, b (b differs only on question 111) and c.
  bool setup_data() {
    const fs::path mt = shared_data_dir() / "benchmarks" / "mt_bench";
    if (shared_data_dir().empty() || !fs::exists(mt / "question.jsonl")) return false;
    fs::create_directories(path("data"));
    fs::copy_file(mt / "judge_prompts.jsonl", path("data/judge_prompts.jsonl"));
    fs::copy_file(mt / "reference_answer_gpt-4.jsonl", path("data/reference_answer_gpt-4.jsonl"));
    std::ifstream in(mt / "question.jsonl");
    std::string q;
    for (std::string l; std::getline(in, l);) {
      const json j = json::parse(l);
      const int id = j["question_id"];
      if (id == 81 || id == 101 || id == 111) q += l + "\n";
    }
    write("data/question.jsonl", q);
    for (const std::string v : {"a", "b", "c"}) {
      std::string lines;
      for (int id : {81, 101, 111}) {
        const std::string who = (v == "b" && id != 111) ? "a" : v;  // b = a except on 111
        lines += json({{"question_id", id},
                       {"model_id", v},
                       {"choices", {{{"index", 0}, {"turns", {"ANSWER-" + who + "-" + std::to_string(id) + "-1",
                                                             "ANSWER-" + who + "-" + std::to_string(id) + "-2"}}}}}})
                     .dump() +
                 "\n";
      }
      write("answers_" + v + "/answers.jsonl", lines);
    }
    return true;
  }
};

// The scripted judge: its rating depends on the answer it is shown.
class ScriptedJudge {
 public:
  ScriptedJudge() {
    svr_.Get("/v1/models", [](const httplib::Request&, httplib::Response& r) {
      r.set_content(R"({"data": [{"id": "judge-1", "max_model_len": 8192}]})", "application/json");
    });
    svr_.Get("/version", [](const httplib::Request&, httplib::Response& r) {
      r.set_content(R"({"version": "scripted-1"})", "application/json");
    });
    svr_.Post("/v1/chat/completions", [this](const httplib::Request& q, httplib::Response& r) {
      const json req = json::parse(q.body);
      const std::string user = req["messages"][1]["content"];
      std::string text = "The answer is fine. Rating: [[8]]";
      if (user.find("ANSWER-a-101") != std::string::npos) text = "Decent. [7]";  // the [rating] fallback
      if (user.find("ANSWER-a-111") != std::string::npos) text = "I cannot rate this.";  // unparsed
      if (user.find("ANSWER-b-111") != std::string::npos) text = "Weak. [[3.5]]";
      {
        std::lock_guard<std::mutex> lk(mu);
        users.push_back(user);
        systems.push_back(req["messages"][0]["content"]);
      }
      r.set_content(json({{"choices", {{{"index", 0}, {"message", {{"role", "assistant"}, {"content", text}}},
                                        {"finish_reason", "stop"}}}},
                          {"usage", {{"prompt_tokens", 1000}, {"completion_tokens", 100}}}})
                        .dump(),
                    "application/json");
    });
    port_ = svr_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { svr_.listen_after_bind(); });
  }
  ~ScriptedJudge() {
    svr_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  size_t calls() {
    std::lock_guard<std::mutex> lk(mu);
    return users.size();
  }
  std::mutex mu;
  std::vector<std::string> users, systems;

 private:
  httplib::Server svr_;
  int port_ = 0;
  std::thread thread_;
};

const char* k_exp = R"(version: 1
name: judge-test
recipes: {a: {}, b: {}, c: {}}
vars: {budget: null, batch: 2}
stages:
  - name: judge
    kind: judge
    matrix: {recipe: "*"}
    inputs: {answers: "file:answers_${recipe}", dataset: "file:data"}
    params:
      judge: {kind: openai, endpoints: ["@URL@"], model: judge-1, max_attempts: 2, backoff_s: 0.1}
      judge_snapshot: judge-1-2026
      batch_size: ${vars.batch}
      budget_usd: ${vars.budget}
)";

TEST_F(JudgeTest, ScriptedJudgeCountsUnparsedDedupesBudgetsAndResumes) {
  if (!setup_data()) GTEST_SKIP() << "needs ../shared/data/benchmarks/mt_bench";
  ScriptedJudge judge;
  write_exp(k_exp, {{"URL", judge.url()}});
  // a and b: 6 judgments each, 4 of them the same (question, answer, judge).
  ProcResult r = run({"judge[a]", "judge[b]"}, 120);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(judge.calls(), 8u);
  // FastChat's prompts: the system prompt and, for math, the reference answer.
  bool saw_system = false, saw_ref = false;
  for (const auto& sp : judge.systems) saw_system = saw_system || sp == "You are a helpful assistant.";
  EXPECT_TRUE(saw_system);
  for (const auto& u : judge.users) saw_ref = saw_ref || u.find("[The Start of Reference Answer]") != std::string::npos;
  EXPECT_TRUE(saw_ref);
  const auto keys = journal().keys();
  auto out = [&](const std::string& n) {
    const std::string k = keys.at(n);
    return cache() / "objects" / k.substr(0, 2) / k / "out";
  };
  const json a = json::parse(read_file(out("judge[a]") / "summary.json"))["mt_bench"];
  EXPECT_DOUBLE_EQ(a["turn1"]["value"].get<double>(), 7.5);  // 81: [[8]], 101: [7], 111: unparsed
  EXPECT_DOUBLE_EQ(a["turn2"]["value"].get<double>(), 7.5);
  EXPECT_DOUBLE_EQ(a["avg"]["value"].get<double>(), 7.5);
  EXPECT_EQ(a["unparsed"]["turn1"], 1);
  EXPECT_EQ(a["unparsed"]["turn2"], 1);
  EXPECT_EQ(a["avg"]["samples"], 4);
  const json b = json::parse(read_file(out("judge[b]") / "summary.json"))["mt_bench"];
  EXPECT_NEAR(b["turn1"]["value"].get<double>(), (8 + 7 + 3.5) / 3, 1e-12);
  EXPECT_EQ(b["unparsed"]["value"], 0);
  const json ja = json::parse(read_file(out("judge[a]") / "judge.json"));
  EXPECT_EQ(ja["usage"]["prompt_tokens"], 6000);
  EXPECT_NEAR(ja["cost_usd"].get<double>(), 6000 * 30e-6 + 600 * 60e-6, 1e-9);
  EXPECT_THAT(read_file(out("judge[a]") / "judgments.jsonl"), HasSubstr("\"score\":-1"));
  // The judge server's served model and version are part of the node's key.
  EXPECT_THAT(read_file(out("judge[a]").parent_path() / "manifest.json"),
              HasSubstr("\"value\": \"model=judge-1 server=scripted-1\""));

  // c under a budget too small for one call (worst case of a call: its
  // prompt bytes / 3 tokens at $30/M plus 2048 tokens at $60/M, about
  // $0.14): stopped before spending anything, with a clear message.
  ProcResult s = run({"judge[c]", "--set", "vars.budget=0.0001", "--set", "vars.batch=1"}, 120);
  EXPECT_EQ(s.exit_code, 1) << describe(s);
  EXPECT_THAT(s.err, HasSubstr("judging stopped before exceeding budget_usd"));
  EXPECT_EQ(judge.calls(), 8u);
  // $0.20, one call per batch: two calls (each really costs $0.036) fit, the
  // third's worst case would not; the two are journaled.
  ProcResult s2 = run({"judge[c]", "--set", "vars.budget=0.2", "--set", "vars.batch=1"}, 120);
  EXPECT_EQ(s2.exit_code, 1) << describe(s2);
  EXPECT_EQ(judge.calls(), 10u);
  // Resume without a budget: only the 4 remaining judgments are made.
  ProcResult s3 = run({"judge[c]", "--set", "vars.batch=1"}, 120);
  ASSERT_EQ(s3.exit_code, 0) << describe(s3);
  EXPECT_EQ(judge.calls(), 14u);
}

TEST_F(JudgeTest, ARealLocalJudgeServedByQsweep) {
  if (!setup_data()) GTEST_SKIP() << "needs ../shared/data/benchmarks/mt_bench and stories260K";
  ProcResult imp = import_stories260k(path("model"));
  ASSERT_EQ(imp.exit_code, 0) << describe(imp);
  write_exp(R"(version: 1
name: judge-real
stages:
  - name: judge
    kind: judge
    inputs: {answers: "file:answers_a", dataset: "file:data", judge_model: "file:model"}
    params:
      judge:
        kind: qsweep
        launch: "{qsweep} serve {model_dir} --port {port} --served-model-name {model} --threads 1 --max-length 4096 --chat-template vicuna_v1.1"
      max_tokens: 40
)");
  ProcResult r = run({}, 300);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const std::string k = journal().keys().at("judge");
  const fs::path out = cache() / "objects" / k.substr(0, 2) / k / "out";
  const json s = json::parse(read_file(out / "summary.json"))["mt_bench"];
  const json info = json::parse(read_file(out / "judge.json"));
  // Every judgment is accounted for: parsed or counted as unparsed.
  size_t unparsed = 0, lines = 0;
  std::ifstream in(out / "judgments.jsonl");
  for (std::string l; std::getline(in, l); ++lines) unparsed += json::parse(l)["score"] == -1;
  EXPECT_EQ(lines, 6u);
  EXPECT_EQ(s["unparsed"]["value"], unparsed);
  EXPECT_EQ(s["avg"]["samples"].get<size_t>() + unparsed, 6u);
  EXPECT_GT(info["usage"]["completion_tokens"].get<int>(), 0);  // the server reports usage
  EXPECT_THAT(info["judge_fingerprint"].get<std::string>(), HasSubstr("server=qsweep-"));
}

}  // namespace
}  // namespace qsweep::testing
