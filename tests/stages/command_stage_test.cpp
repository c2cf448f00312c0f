// CommandStage: params, placeholder substitution, environment, progress
// protocol and how each way of ending becomes a node result.

#include "stages/command_stage.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <signal.h>

#include "tests/testutil.h"

namespace qsweep {
namespace {

using nlohmann::json;
using testing::read_file;
using testing::TempDir;
using testing::write_file;

class FakeProgress : public ProgressSink {
 public:
  struct Update {
    uint64_t done, total;
    std::string unit;
    friend bool operator==(const Update&, const Update&) = default;
  };
  void update(uint64_t done, uint64_t total, const std::string& unit) override {
    updates.push_back({done, total, unit});
  }
  void log(const std::string& line) override { logs.push_back(line); }
  std::vector<Update> updates;
  std::vector<std::string> logs;
};

// A node's context in a scratch experiment directory, with defaults filled in
// the way the pipeline fills them.
class CommandStageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ctx.node_id = "header[stories260K]";
    ctx.key = "0123456789abcdef0123456789abcdef";
    ctx.output_dir = dir / "out";
    ctx.experiment_dir = dir.path();
    ctx.resources.threads = 3;
    ctx.progress = &progress;
    ctx.cancel = &cancel;
    std::filesystem::create_directories(ctx.output_dir);
  }

  void set_params(json p) {
    for (const auto& spec : stage.params())
      if (!p.contains(spec.name) && !spec.required) p[spec.name] = spec.default_value;
    ASSERT_EQ(stage.check_params(p), "");
    ctx.params = std::move(p);
  }

  void add_input(const std::string& name, std::vector<InputArtifact> items, bool is_list = false) {
    ctx.inputs[name] = ResolvedInput{name, is_list, std::move(items)};
  }

  // run() and the message of what it threw ("" when nothing).
  std::string run_error() {
    try {
      stage.run(ctx);
    } catch (const std::exception& e) {
      return e.what();
    }
    return {};
  }

  TempDir dir;
  CommandStage stage;
  FakeProgress progress;
  std::atomic<int> cancel{0};
  StageContext ctx;
};

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> r;
  size_t start = 0;
  while (start < s.size()) {
    size_t nl = s.find('\n', start);
    r.push_back(s.substr(start, nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return r;
}

TEST_F(CommandStageTest, SubstitutesArgvPlaceholders) {
  write_file(dir / "ckpt" / "model.bin", "x");
  add_input("ckpt", {{"fetch[m]", "k1", dir / "ckpt"}});
  add_input("shards", {{"s[0]", "ka", dir / "a"}, {"s[1]", "kb", dir / "b"}}, true);
  add_input("none", {}, true);
  // sh -c SCRIPT $0 $1 ...: writes every argument on its own line to $0.
  set_params({{"argv",
               {"sh", "-c", "printf '%s\\n' \"$@\" > \"$0\"", "${output_dir}/args.txt",
                "${inputs.ckpt}/model.bin", "${inputs.shards}", "x ${inputs.shards} y",
                "${inputs.none}", "${inputs.shards.key}", "${inputs.ckpt.key}", "${params.vars.lr}",
                "${params.vars.list.1}", "${node}|${key}|${threads}", "$${literal}"}},
              {"vars", {{"lr", 0.5}, {"list", {"p", "q"}}}},
              {"outputs", {"args.txt"}}});
  ASSERT_EQ(run_error(), "");
  std::string a = (dir / "a").string(), b = (dir / "b").string();
  EXPECT_EQ(lines_of(read_file(ctx.output_dir / "args.txt")),
            (std::vector<std::string>{(dir / "ckpt" / "model.bin").string(), a, b,
                                      "x " + a + " " + b + " y", "ka", "kb", "k1", "0.5", "q",
                                      "header[stories260K]|" + ctx.key + "|3", "${literal}"}));
  // The artifact records the templates, not cache-location paths.
  EXPECT_EQ(ctx.outputs["exit_code"], 0);
  EXPECT_EQ(ctx.outputs["argv"], ctx.params["argv"]);
  EXPECT_TRUE(ctx.outputs["seconds"].is_number());
}

TEST_F(CommandStageTest, CapturesStdoutAndStderrIntoOutputDir) {
  set_params({{"argv", {"sh", "-c", "echo hello; echo warn >&2"}}});
  ASSERT_EQ(run_error(), "");
  EXPECT_EQ(read_file(ctx.output_dir / "stdout.txt"), "hello\n");
  EXPECT_EQ(read_file(ctx.output_dir / "stderr.txt"), "warn\n");
  EXPECT_EQ(progress.logs, std::vector<std::string>{"hello"});
}

TEST_F(CommandStageTest, DeclaredOutputsMustExist) {
  set_params(
      {{"argv",
        {"sh", "-c", "mkdir -p \"$0/sub\" && echo {} > \"$0/sub/config.json\"", "${output_dir}"}},
       {"outputs", {"sub/config.json", "sub"}}});
  EXPECT_EQ(run_error(), "");

  set_params({{"argv", {"true"}}, {"outputs", {"config.json"}}});
  std::string e = run_error();
  EXPECT_EQ(e.rfind("declared output 'config.json' was not written by true", 0), 0u) << e;
}

TEST_F(CommandStageTest, NonZeroExitReportsStderrTail) {
  set_params({{"argv", {"sh", "-c", "echo loading >&2; echo 'bad header' >&2; exit 3"}}});
  std::string e = run_error();
  EXPECT_EQ(e, "'sh' exited with code 3; last lines of stderr:\nloading\nbad header");
}

TEST_F(CommandStageTest, ExitCode75IsRetryable) {
  set_params({{"argv", {"sh", "-c", "echo 'server busy' >&2; exit 75"}}});
  try {
    stage.run(ctx);
    FAIL() << "expected RetryableError";
  } catch (const RetryableError& e) {
    EXPECT_NE(std::string(e.what()).find("server busy"), std::string::npos) << e.what();
  }
}

TEST_F(CommandStageTest, KilledBySignalNamesIt) {
  set_params({{"argv", {"sh", "-c", "kill -SEGV $$"}}});
  std::string e = run_error();
  EXPECT_NE(e.find("'sh' was killed by signal 11 (SIGSEGV"), std::string::npos) << e;
}

TEST_F(CommandStageTest, TimeoutMessage) {
  set_params({{"argv", {"sleep", "30"}}, {"timeout_s", 0.2}});
  std::string e = run_error();
  EXPECT_EQ(e.rfind("'sleep' timed out after 0.2 s", 0), 0u) << e;
}

TEST_F(CommandStageTest, CancelledThrows) {
  cancel = 1;
  set_params({{"argv", {"sleep", "30"}}});
  EXPECT_EQ(run_error(), "cancelled");
}

TEST_F(CommandStageTest, ProgramThatFinishesAfterSigintIsKept) {
  // First Ctrl-C: the program gets SIGINT, writes its result and exits 0.
  set_params({{"argv", {"sh", "-c", "trap 'echo ok > \"$0/r.txt\"; exit 0' INT; echo ready; while :; do sleep 0.02; done",
                        "${output_dir}"}},
              {"outputs", {"r.txt"}}});
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    cancel = 1;
  });
  std::string e = run_error();
  t.join();
  EXPECT_EQ(e, "");
  EXPECT_EQ(testing::read_file(ctx.output_dir / "r.txt"), "ok\n");
}

TEST_F(CommandStageTest, ProgramThatFailsAfterSigintIsCancelled) {
  set_params({{"argv", {"sh", "-c", "trap 'exit 130' INT; while :; do sleep 0.02; done"}}});
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    cancel = 1;
  });
  EXPECT_EQ(run_error(), "cancelled");
  t.join();
}

TEST_F(CommandStageTest, MissingProgram) {
  set_params({{"argv", {"qsweep-no-such-tool", "--help"}}});
  std::string e = run_error();
  EXPECT_EQ(e.rfind("cannot execute 'qsweep-no-such-tool': No such file or directory", 0), 0u) << e;
}

TEST_F(CommandStageTest, UndefinedPlaceholderListsDeclaredInputs) {
  add_input("ckpt", {{"fetch[m]", "k1", dir / "ckpt"}});
  add_input("script", {{"file:s.sh", "k2", dir / "s.sh"}});
  set_params({{"argv", {"sh", "${inputs.script}", "${inputs.foo}"}}});
  EXPECT_EQ(run_error(),
            "argv[2]: undefined variable ${inputs.foo}; declared inputs: ckpt, script");

  set_params({{"argv", {"sh", "${params.vars.nope}"}}});
  std::string e = run_error();
  EXPECT_EQ(e.rfind("argv[1]: undefined variable ${params.vars.nope}; params: ", 0), 0u) << e;

  set_params({{"argv", {"true"}}, {"env", {{"X", "${model}"}}}});
  e = run_error();
  EXPECT_EQ(e.rfind("env.X: undefined variable ${model}; known: output_dir", 0), 0u) << e;
}

TEST_F(CommandStageTest, ProgressProtocolCallsUpdate) {
  set_params({{"argv",
               {"sh", "-c",
                "echo start; echo 'qsweep-progress: 3/10 requests'; "
                "echo 'qsweep-progress: 7/0'; echo 'qsweep-progress: soon'"}}});
  ASSERT_EQ(run_error(), "");
  EXPECT_EQ(progress.updates, (std::vector<FakeProgress::Update>{{3, 10, "requests"}, {7, 0, ""}}));
  EXPECT_EQ(progress.logs, (std::vector<std::string>{"start", "qsweep-progress: soon"}));
}

TEST_F(CommandStageTest, EnvironmentReachesChild) {
  set_params({{"argv",
               {"sh", "-c",
                "echo \"$GREETING|$QSWEEP_NODE|$QSWEEP_KEY|$QSWEEP_THREADS|"
                "$OMP_NUM_THREADS|$LC_ALL\"; [ \"$QSWEEP_OUTPUT_DIR\" = \"$0\" ]",
                "${output_dir}"}},
              {"env", {{"GREETING", "hi ${node}"}, {"LC_ALL", "C"}}}});
  ASSERT_EQ(run_error(), "");
  EXPECT_EQ(progress.logs, std::vector<std::string>{"hi header[stories260K]|header[stories260K]|" +
                                                    ctx.key + "|3|3|C"});
}

TEST_F(CommandStageTest, EnvParamOverridesThreadVariables) {
  set_params(
      {{"argv", {"sh", "-c", "echo $OMP_NUM_THREADS"}}, {"env", {{"OMP_NUM_THREADS", "1"}}}});
  ASSERT_EQ(run_error(), "");
  EXPECT_EQ(progress.logs, std::vector<std::string>{"1"});
}

TEST_F(CommandStageTest, CwdDefaultsToExperimentDir) {
  std::filesystem::create_directories(dir / "scripts");
  write_file(dir / "scripts" / "hello.sh", "echo hello from script\n");
  set_params({{"argv", {"sh", "scripts/hello.sh"}}});
  ASSERT_EQ(run_error(), "");
  EXPECT_EQ(progress.logs, std::vector<std::string>{"hello from script"});

  progress.logs.clear();
  set_params({{"argv", {"sh", "-c", "pwd"}}, {"cwd", "scripts"}});
  ASSERT_EQ(run_error(), "");
  ASSERT_EQ(progress.logs.size(), 1u);
  EXPECT_EQ(std::filesystem::canonical(progress.logs[0]),
            std::filesystem::canonical(dir / "scripts"));
}

TEST_F(CommandStageTest, UsesInjectedRunner) {
  ProcessSpec seen;
  CommandStage fake([&](const ProcessSpec& spec, const std::atomic<int>*, const LineCallback& cb,
                        ProcessResult* r, std::string*) {
    seen = spec;
    cb("qsweep-progress: 1/2 steps");
    r->exit_code = 0;
    r->seconds = 1.5;
    return true;
  });
  set_params({{"argv", {"tool", "${output_dir}"}}, {"timeout_s", 60}});
  fake.run(ctx);
  EXPECT_EQ(seen.argv,
            (std::vector<std::string>{"tool", std::filesystem::absolute(ctx.output_dir).string()}));
  EXPECT_EQ(seen.stdout_path, ctx.output_dir / "stdout.txt");
  EXPECT_EQ(seen.stderr_path, ctx.output_dir / "stderr.txt");
  EXPECT_EQ(seen.timeout_s, 60);
  EXPECT_EQ(seen.cwd, ctx.experiment_dir);
  EXPECT_EQ(seen.env_add.at("QSWEEP_NODE"), ctx.node_id);
  EXPECT_EQ(seen.env_add.at("QSWEEP_THREADS"), "3");
  EXPECT_EQ(progress.updates, (std::vector<FakeProgress::Update>{{1, 2, "steps"}}));
  EXPECT_EQ(ctx.outputs["seconds"], 1.5);
}

TEST(CommandStageParams, CheckParamsRejectsBadValues) {
  CommandStage s;
  auto with = [](json extra) {
    json p = {{"argv", {"echo", "hi"}},
              {"env", json::object()},
              {"outputs", json::array()},
              {"timeout_s", 0},
              {"cwd", ""},
              {"vars", json::object()}};
    if (!extra.is_null()) p.update(extra);  // `{}` is null in nlohmann::json
    return p;
  };
  EXPECT_EQ(s.check_params(with({})), "");
  EXPECT_NE(s.check_params(with({{"argv", json::array()}})).find("params.argv"), std::string::npos);
  EXPECT_NE(s.check_params(with({{"argv", {""}}})).find("params.argv[0]"), std::string::npos);
  EXPECT_NE(s.check_params(with({{"argv", {"x", "${oops"}}})).find("params.argv[1]: unterminated"),
            std::string::npos);
  EXPECT_NE(s.check_params(with({{"timeout_s", -1}})).find("params.timeout_s"), std::string::npos);
  EXPECT_NE(s.check_params(with({{"outputs", {"/etc/passwd"}}})).find("must be relative"),
            std::string::npos);
  EXPECT_NE(s.check_params(with({{"outputs", {"a/../../x"}}})).find("no '..'"), std::string::npos);
  EXPECT_NE(s.check_params(with({{"outputs", {""}}})).find("params.outputs[0]"), std::string::npos);
  EXPECT_NE(s.check_params(with({{"env", {{"A=B", "x"}}}})).find("params.env"), std::string::npos);
  EXPECT_NE(s.check_params(with({{"cwd", "${x"}})).find("params.cwd"), std::string::npos);
  EXPECT_EQ(s.check_params(with({{"outputs", {"sub/dir/x.json", "./y"}}, {"timeout_s", 2.5}})), "");
}

TEST(CommandStageParams, DeclaresParamsAndPlaceholders) {
  CommandStage s;
  EXPECT_EQ(s.kind(), "command");
  EXPECT_EQ(s.version(), 1);
  std::vector<std::string> names;
  for (const auto& p : s.params()) names.push_back(p.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"argv", "env", "outputs", "timeout_s", "cwd", "vars"}));
  EXPECT_TRUE(s.params()[0].required);
  EXPECT_EQ(s.params()[0].type, ParamType::kStringList);
  EXPECT_EQ(s.runtime_placeholders(), (std::vector<std::string>{"node", "key", "threads", "qsweep"}));
}

TEST(ProgressLine, Parses) {
  uint64_t done = 0, total = 0;
  std::string unit;
  EXPECT_TRUE(parse_progress_line("qsweep-progress: 12/345 prompts\r", &done, &total, &unit));
  EXPECT_EQ(done, 12u);
  EXPECT_EQ(total, 345u);
  EXPECT_EQ(unit, "prompts");
  EXPECT_TRUE(parse_progress_line("qsweep-progress:1/2", &done, &total, &unit));
  EXPECT_EQ(unit, "");
  EXPECT_FALSE(parse_progress_line("qsweep-progress: 1 /2", &done, &total, &unit));
  EXPECT_FALSE(parse_progress_line("qsweep-progress: 1/2x", &done, &total, &unit));
  EXPECT_FALSE(parse_progress_line("qsweep-progress: -1/2", &done, &total, &unit));
  EXPECT_FALSE(parse_progress_line("progress: 1/2", &done, &total, &unit));
  EXPECT_FALSE(
      parse_progress_line("qsweep-progress: 99999999999999999999999/1", &done, &total, &unit));
}

}  // namespace
}  // namespace qsweep
