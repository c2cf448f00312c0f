// Remote inference end to end (issue #8): `qsweep serve` over TCP, started by
// the infer stage (backend kind qsweep) or by the test (kind openai), against
// the in-process engine on the quickstart's benchmarks; the managed server is
// stopped after the node; a server killed mid-run makes the node retry and
// then fail with a clear message instead of hanging.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <regex>

#include <gmock/gmock.h>

#include "tests/e2e/e2e_util.h"

namespace qsweep::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class ServeTest : public E2ETest {
 protected:
  // model/ (stories260K), data/ (TruthfulQA) and task.yaml as plain file
  // inputs; false when ../shared/data is absent.
  bool setup_files() {
    const fs::path data = shared_data_dir();
    if (data.empty()) return false;
    ProcResult imp = import_stories260k(path("model"));
    EXPECT_EQ(imp.exit_code, 0) << describe(imp);
    fs::create_directories(path("data"));
    fs::copy_file(data / "benchmarks" / "truthfulqa" / "mc_task.json", path("data/mc_task.json"));
    fs::copy_file(source_dir() / "experiments" / "tasks" / "truthfulqa_mc2.yaml", path("task.yaml"));
    return imp.exit_code == 0;
  }
};

std::vector<json> lines_of(const fs::path& p) {
  std::vector<json> v;
  std::ifstream in(p);
  for (std::string l; std::getline(in, l);) v.push_back(json::parse(l));
  return v;
}

bool port_open(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(uint16_t(port));
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

TEST_F(ServeTest, ManagedServerAnswersLikeTheEngineAndIsStoppedAfterTheNode) {
  const fs::path data = shared_data_dir();
  if (data.empty()) GTEST_SKIP() << "needs ../shared/data (stories260K and the benchmark files)";
  const fs::path yaml = source_dir() / "experiments" / "serve_stories.yaml";
  const std::map<std::string, std::string> env = {{"QSWEEP_HUB_MIRROR", data.string()}};
  ProcResult r = run_command({qsweep_bin().string(), "run", yaml.string(), "--progress", "lines", "--cache",
                              cache().string(), "--set", "vars.limit=15"},
                             600, dir_.path(), env);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const auto keys = journal().keys();
  for (const std::string task : {"truthfulqa_mc2", "gsm8k"}) {
    auto out = [&](const std::string& node) {
      const std::string k = keys.at(node);
      return cache() / "objects" / k.substr(0, 2) / k / "out";
    };
    const auto local = lines_of(out("infer[stories260K,embedded," + task + "]") / "responses.jsonl");
    const auto http = lines_of(out("infer[stories260K,http," + task + "]") / "responses.jsonl");
    ASSERT_EQ(local.size(), http.size()) << task;
    ASSERT_FALSE(local.empty());
    for (size_t i = 0; i < local.size(); ++i) {
      EXPECT_EQ(local[i]["hash"], http[i]["hash"]) << task << " " << i;
      if (local[i].contains("text")) {
        EXPECT_EQ(local[i]["text"], http[i]["text"]) << task << " " << i;  // greedy generations: identical
      } else {
        // The in-process engine prefills a question's context once for all its
        // choices; the server runs each prompt whole: fp32 sums differ in
        // their last bits only.
        EXPECT_NEAR(local[i]["logprob"].get<double>(), http[i]["logprob"].get<double>(), 1e-4) << task << " " << i;
        EXPECT_EQ(local[i]["is_greedy"], http[i]["is_greedy"]) << task << " " << i;
        EXPECT_EQ(local[i]["context_tokens"], http[i]["context_tokens"]) << task << " " << i;
      }
    }
    const json sl = json::parse(read_file(out("score[stories260K,embedded," + task + "]") / "summary.json"));
    const json sh = json::parse(read_file(out("score[stories260K,http," + task + "]") / "summary.json"));
    // The same metrics: identical accuracies, mc2 (a probability mass) to 1e-6.
    for (const auto& [metric, v] : sl[task].items())
      EXPECT_NEAR(v["value"].get<double>(), sh[task][metric]["value"].get<double>(), 1e-6) << task << " " << metric;
    // With batch_invariant (one request per forward pass in process, a
    // `qsweep serve --max-batch-tokens 0` over HTTP): bit for bit.
    const auto lx = lines_of(out("infer[stories260K,embedded-exact," + task + "]") / "responses.jsonl");
    const auto hx = lines_of(out("infer[stories260K,http-exact," + task + "]") / "responses.jsonl");
    ASSERT_EQ(lx.size(), hx.size());
    for (size_t i = 0; i < lx.size(); ++i) {
      json a = lx[i], b = hx[i];
      EXPECT_EQ(a, b) << task << " " << i;  // every field, logprobs as the same doubles
    }
    const json info = json::parse(read_file(out("infer[stories260K,http," + task + "]") / "infer.json"));
    EXPECT_THAT(info["backend"].get<std::string>(), HasSubstr("openai/v1 model=model server=qsweep-"));
    // The unbatched server's answers have a journal of their own.
    const json ix = json::parse(read_file(out("infer[stories260K,http-exact," + task + "]") / "infer.json"));
    EXPECT_THAT(ix["backend"].get<std::string>(), HasSubstr(" unbatched=1"));
    EXPECT_EQ(info["backend"].get<std::string>().find("unbatched"), std::string::npos);
  }
  // The server was told to stop (its log says so) and its port is closed.
  const fs::path logs = cache() / "journal" / "infer" / "servers";
  const auto files = list_dir(logs);
  ASSERT_FALSE(files.empty());
  std::smatch m;
  const std::string first = files.front();
  ASSERT_TRUE(std::regex_match(first, m, std::regex(R"(server-(\d+)\.err\.log)"))) << first;
  EXPECT_THAT(read_file(logs / first), HasSubstr("stopping"));
  EXPECT_FALSE(port_open(std::stoi(m[1])));
}

TEST_F(ServeTest, KilledServerMakesTheNodeRetryThenFailClearly) {
  if (shared_data_dir().empty()) GTEST_SKIP() << "needs ../shared/data (stories260K and TruthfulQA)";
  ASSERT_TRUE(setup_files());

  Process server({qsweep_bin().string(), "serve", path("model").string(), "--port", "0", "--threads", "1",
                  "--served-model-name", "stories"});
  // "qsweep serve: listening on http://127.0.0.1:PORT/v1 ..." on stdout.
  std::string url;
  ASSERT_TRUE(wait_until([&] {
    std::smatch m;
    const std::string out = server.out_so_far();
    if (!std::regex_search(out, m, std::regex(R"(listening on (http://127\.0\.0\.1:\d+/v1))"))) return false;
    url = m[1];
    return true;
  }, 30)) << server.err_so_far();
  write_exp(R"(version: 1
name: killed-server
stages:
  - name: infer
    kind: infer
    inputs: {checkpoint: "file:model", dataset: "file:data", task: "file:task.yaml"}
    params:
      batch_size: 8
      backend: {kind: openai, endpoints: ["@URL@"], model: stories, concurrency: 1, max_attempts: 3, backoff_s: 0.2}
)", {{"URL", url}});
  auto run = start_run();
  // Kill the server once the node has journaled its first answers.
  const fs::path journal_dir = cache() / "journal" / "infer";
  ASSERT_TRUE(wait_until([&] {
    for (const auto& f : list_dir(journal_dir))
      if (f.ends_with(".jsonl") && !read_file(journal_dir / f).empty()) return true;
    return false;
  }, 60)) << run->err_so_far();
  server.signal(SIGKILL);
  const ProcResult r = run->wait(120);
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("FAILED infer"));
  EXPECT_THAT(r.err, HasSubstr("(gave up after 3 attempts)")) << describe(r);
  // What was answered before the kill stays in the request journal.
  size_t lines = 0;
  for (const auto& f : list_dir(journal_dir))
    if (f.ends_with(".jsonl")) lines += lines_of(journal_dir / f).size();
  EXPECT_GE(lines, 8u);
}

TEST_F(ServeTest, ManagedServerDiesWithAKilledRunner) {
  if (shared_data_dir().empty()) GTEST_SKIP() << "needs ../shared/data (stories260K and TruthfulQA)";
  ASSERT_TRUE(setup_files());
  write_exp(R"(version: 1
name: killed-runner
stages:
  - name: infer
    kind: infer
    inputs: {checkpoint: "file:model", dataset: "file:data", task: "file:task.yaml"}
    params: {batch_size: 8, backend: {kind: qsweep, concurrency: 1}}
)");
  auto run = start_run();
  // The server is up once its log exists and its port answers.
  const fs::path logs = cache() / "journal" / "infer" / "servers";
  int port = 0;
  ASSERT_TRUE(wait_until([&] {
    for (const auto& f : list_dir(logs)) {
      std::smatch m;
      if (std::regex_match(f, m, std::regex(R"(server-(\d+)\.err\.log)"))) port = std::stoi(m[1]);
    }
    return port && port_open(port);
  }, 60)) << run->err_so_far();
  run->signal(SIGKILL);  // the runner alone: no chance to stop its server
  run->wait(30);
  EXPECT_TRUE(wait_until([&] { return !port_open(port); }, 15)) << "the server outlived the runner on port " << port;
}

}  // namespace
}  // namespace qsweep::testing
