// The download stage: its key holds the resolved commit, run() builds a
// self-contained artifact, failures publish nothing, and the whole path
// through scan, plan, runner and cache works against the fake Hub (and with
// real files from ../shared/data when present).

#include "stages/download_stage.h"

#include <gtest/gtest.h>

#include <fstream>

#include "cache/journal.h"
#include "cache/store.h"
#include "pipeline/plan.h"
#include "pipeline/progress.h"
#include "pipeline/runner.h"
#include "pipeline/scan.h"
#include "tests/model/hub/hub_fixture.h"
#include "tests/pipeline/pipeline_util.h"

namespace qsweep {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::read_file;

class RecordingProgress : public ProgressSink {
 public:
  void update(uint64_t done, uint64_t total, const std::string& unit) override {
    last_done = done;
    last_total = total;
    unit_ = unit;
    ++updates;
  }
  void log(const std::string& line) override { logs.push_back(line); }
  uint64_t last_done = 0, last_total = 0;
  std::string unit_;
  int updates = 0;
  std::vector<std::string> logs;
};

class DownloadStageTest : public testing::HubFixture {
 protected:
  std::unique_ptr<DownloadStage> make_stage(bool offline = false) {
    model::HubEnv e = env();
    e.offline = offline;
    e.token = k_token;
    return std::make_unique<DownloadStage>(
        http, [e] { return e; }, retry());
  }
  json params(json p) {
    for (const auto& spec : stage->params())
      if (!p.contains(spec.name) && !spec.required) p[spec.name] = spec.default_value;
    EXPECT_EQ(stage->check_params(p), "");
    return p;
  }
  std::string resolved(const Stage& s, const json& p) {
    auto fp = s.fingerprint(p);
    EXPECT_EQ(fp.size(), 1u);
    EXPECT_EQ(fp.at(0).name, "resolved");
    return fp.at(0).value;
  }
  // run() into a fresh output folder; the message it threw, or "".
  std::string run(const json& p) {
    out = dir / ("out" + std::to_string(++runs));
    fs::create_directories(out);
    ctx = StageContext{};
    ctx.node_id = "fetch";
    ctx.output_dir = out;
    ctx.experiment_dir = dir.path();
    ctx.params = p;
    ctx.progress = &progress;
    ctx.cancel = &cancel;
    try {
      stage->run(ctx);
    } catch (const std::exception& e) {
      return e.what();
    }
    return "";
  }

  std::unique_ptr<DownloadStage> stage = make_stage();
  RecordingProgress progress;
  std::atomic<int> cancel{0};
  StageContext ctx;
  fs::path out;
  int runs = 0;
};

TEST_F(DownloadStageTest, KeyHoldsTheResolvedCommit) {
  json p = params({{"source", "hf://tiny/model"}});
  EXPECT_EQ(resolved(*stage, p), sha);
  std::string sha2 = hub.commit("tiny/model", files);
  EXPECT_EQ(resolved(*stage, p), sha)
      << "memoised for this process: run() fetches what the key names";
  auto fresh = make_stage();
  EXPECT_EQ(resolved(*fresh, p), sha2) << "main moved: a new artifact";
  EXPECT_EQ(resolved(*fresh, params({{"source", "hf://tiny/model@" + sha}})), sha);
}

TEST_F(DownloadStageTest, FingerprintErrorsAreClear) {
  try {
    stage->fingerprint(params({{"source", "hf://tiny/absent"}}));
    ADD_FAILURE() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("no such repo"), std::string::npos) << e.what();
  }
  auto offline = make_stage(true);
  try {
    offline->fingerprint(params({{"source", "hf://tiny/model"}}));
    ADD_FAILURE() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("HF_HUB_OFFLINE"), std::string::npos) << e.what();
  }
}

TEST_F(DownloadStageTest, UnreachableHubSuggestsTheCachedRevision) {
  json p = params({{"source", "hf://tiny/model"}});
  ASSERT_EQ(run(p), "");
  model::HubEnv e = env();
  e.endpoint = "http://127.0.0.1:1";  // nothing listens there
  DownloadStage down(http, [e] { return e; }, retry());
  try {
    down.fingerprint(p);
    ADD_FAILURE() << "expected an error";
  } catch (const RetryableError& ex) {
    std::string m = ex.what();
    EXPECT_NE(m.find("main = " + sha), std::string::npos) << m;
    EXPECT_NE(m.find("HF_HUB_OFFLINE=1"), std::string::npos) << m;
  }
}

TEST_F(DownloadStageTest, CheckParams) {
  json p = params({{"source", "hf://tiny/model"}});
  p["kind"] = "weights";
  EXPECT_NE(stage->check_params(p).find("params.kind"), std::string::npos);
  p = params({{"source", "hf://tiny/model"}});
  p["source"] = "relative/path";
  EXPECT_NE(stage->check_params(p).find("absolute"), std::string::npos);
  p["source"] = "https://user:hf_secret@example.com/x.bin";
  EXPECT_NE(stage->check_params(p).find("credentials"), std::string::npos);
  p = params({{"source", "hf://tiny/model"}});
  p["split"] = "test";
  EXPECT_NE(stage->check_params(p).find("hf://datasets/"), std::string::npos);
}

TEST_F(DownloadStageTest, RunBuildsASelfContainedArtifact) {
  json p = params({{"source", "hf://tiny/model"}});
  ASSERT_EQ(run(p), "");
  for (const char* f : {"config.json", "model.safetensors", "tokenizer_config.json"}) {
    EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(out / f))) << f << " must be a real file";
    EXPECT_EQ(read_file(out / f), files[f].content) << f;
  }
  EXPECT_FALSE(fs::exists(out / "pytorch_model.bin")) << "safetensors exist: no .bin";
  EXPECT_FALSE(fs::exists(out / "README.md"));
  json m = json::parse(read_file(out / "download.json"));
  EXPECT_EQ(m["format"], 1);
  EXPECT_EQ(m["source"], "hf://tiny/model");
  EXPECT_EQ(m["resolved"], sha);
  ASSERT_EQ(m["files"].size(), 3u);
  EXPECT_EQ(m["files"][1]["path"], "model.safetensors");
  EXPECT_EQ(m["files"][1]["size"], 300000);
  EXPECT_EQ(m["files"][1]["sha256"], testing::sha256_hex(weights));
  EXPECT_EQ(read_file(out / "download.json").find(k_token), std::string::npos);
  EXPECT_EQ(progress.unit_, "bytes");
  EXPECT_EQ(progress.last_done, progress.last_total);
  EXPECT_GT(progress.last_total, 300000u);
  EXPECT_EQ(ctx.outputs["resolved"], sha);
  // The HF cache is filled for other tools; a second run reuses it.
  EXPECT_EQ(read_file(repo_dir() / "refs" / "main"), sha);
  int gets = hub.file_gets();
  ASSERT_EQ(run(p), "");
  EXPECT_EQ(hub.file_gets(), gets);
}

TEST_F(DownloadStageTest, FilesPatternsAndKindFile) {
  ASSERT_EQ(run(params({{"source", "hf://tiny/model"}, {"files", {"sub/*", "README.md"}}})), "");
  EXPECT_EQ(read_file(out / "sub" / "extra.json"), "{}");
  EXPECT_TRUE(fs::exists(out / "README.md"));
  EXPECT_FALSE(fs::exists(out / "config.json"));
  std::string err = run(params({{"source", "hf://tiny/model"}, {"files", {"*.gguf"}}}));
  EXPECT_NE(err.find("'*.gguf' matches no file"), std::string::npos) << err;
  ASSERT_EQ(run(params({{"source", "hf://tiny/model"}, {"kind", "file"}})), "");
  EXPECT_TRUE(fs::exists(out / "pytorch_model.bin")) << "kind file: every file";
}

TEST_F(DownloadStageTest, WrongChecksumFailsWithNothingWritten) {
  hub.lie_about_sha256("model.safetensors");
  std::string err = run(params({{"source", "hf://tiny/model"}}));
  EXPECT_NE(err.find("checksum mismatch"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(out / "model.safetensors"));
  EXPECT_FALSE(fs::exists(out / "download.json"));
}

TEST_F(DownloadStageTest, ExhaustedRetriesAreRetryableForTheRunner) {
  hub.fail_with("config.json", 503, 1000);
  out = dir / "o";
  fs::create_directories(out);
  ctx.output_dir = out;
  ctx.params = params({{"source", "hf://tiny/model"}});
  ctx.progress = &progress;
  EXPECT_THROW(stage->run(ctx), RetryableError);
}

TEST_F(DownloadStageTest, CancelStopsTheTransfer) {
  cancel = 2;
  std::string err = run(params({{"source", "hf://tiny/model"}}));
  EXPECT_NE(err.find("cancelled"), std::string::npos) << err;
}

TEST_F(DownloadStageTest, OfflineParamUsesTheCache) {
  json p = params({{"source", "hf://tiny/model"}});
  ASSERT_EQ(run(p), "");
  size_t before = hub.requests().size();
  auto offline_stage = make_stage();
  stage = std::move(offline_stage);
  p["offline"] = true;
  EXPECT_EQ(resolved(*stage, p), sha);
  ASSERT_EQ(run(p), "");
  EXPECT_EQ(read_file(out / "model.safetensors"), weights);
  EXPECT_EQ(hub.requests().size(), before);
}

TEST_F(DownloadStageTest, DatasetRowsAndRawFiles) {
  std::vector<json> rows;
  for (int i = 0; i < 130; ++i) rows.push_back({{"i", i}});
  hub.set_rows("acme/bench", "default", "test", rows);
  hub.commit("datasets/acme/bench",
             {{"data/test.jsonl", {"{\"i\":0}\n", false}}, {"README.md", {"x", false}}});
  ASSERT_EQ(
      run(params({{"source", "hf://datasets/acme/bench"}, {"kind", "dataset"}, {"split", "test"}})),
      "");
  std::string jsonl = read_file(out / "test.jsonl");
  EXPECT_EQ(std::count(jsonl.begin(), jsonl.end(), '\n'), 130);
  json m = json::parse(read_file(out / "download.json"));
  EXPECT_EQ(m["rows"]["count"], 130);
  EXPECT_EQ(m["rows"]["config"], "default");
  ASSERT_EQ(run(params({{"source", "hf://datasets/acme/bench"}, {"kind", "dataset"}})), "");
  EXPECT_EQ(read_file(out / "data" / "test.jsonl"), "{\"i\":0}\n");
  EXPECT_FALSE(fs::exists(out / "README.md"));
  EXPECT_TRUE(fs::exists(dir / "hf" / "hub" / "datasets--acme--bench" / "refs" / "main"));
}

TEST_F(DownloadStageTest, UrlSource) {
  json p = params({{"source", hub.url() + "/tiny/model/resolve/main/config.json?download=true"},
                   {"kind", "file"}});
  EXPECT_EQ(resolved(*stage, p), "url");
  ASSERT_EQ(run(p), "");
  EXPECT_EQ(read_file(out / "config.json"), files["config.json"].content);
  EXPECT_EQ(hub.requests().back().header("Authorization"), "") << "no token to arbitrary URLs";
}

TEST_F(DownloadStageTest, LocalSourceDigestFollowsContent) {
  testing::write_file(dir / "local" / "config.json", "{}");
  testing::write_file(dir / "local" / "w" / "a.bin", "abc");
  json p = params({{"source", (dir / "local").string()}});
  std::string d1 = resolved(*stage, p);
  EXPECT_EQ(d1.rfind("local:", 0), 0u);
  ASSERT_EQ(run(p), "");
  EXPECT_EQ(read_file(out / "w" / "a.bin"), "abc");
  testing::write_file(dir / "local" / "w" / "a.bin", "abd");
  EXPECT_NE(resolved(*stage, p), d1);
  json only =
      params({{"source", "file://" + (dir / "local").string()}, {"files", {"config.json"}}});
  ASSERT_EQ(run(only), "");
  EXPECT_FALSE(fs::exists(out / "w"));
}

// Through load, scan, plan, runner and the cache, as `qsweep run` does it.
class DownloadPipelineTest : public DownloadStageTest {
 protected:
  void SetUp() override {
    DownloadStageTest::SetUp();
    reg.add(make_stage());
    std::string err;
    store = cache::Store::open(dir / "cache", &err);
    ASSERT_TRUE(store) << err;
    journal = std::make_unique<cache::Journal>(store->journal_path());
  }
  bool scan_yaml(const std::string& yaml, Graph* g, ScanResult* scan, Diagnostics* d) {
    EXPECT_EQ(testing::load_and_expand(dir, yaml, reg, g), "");
    cache::FileDigestCache digests("");
    return scan_graph(*g, digests, store.get(), scan, d);
  }
  RunSummary run_yaml(const std::string& yaml, ScanResult* scan) {
    Graph g;
    Diagnostics d;
    EXPECT_TRUE(scan_yaml(yaml, &g, scan, &d)) << format_diagnostics(d);
    Plan plan = make_plan(g, *scan, {});
    RunOptions o;
    o.capacity = Resources{2, UINT64_MAX, 0, 4};
    o.retry_base_s = 0.01;
    o.run_id = "test";
    auto view = make_null_progress();
    Runner r(g, *scan, plan, *store, *journal, *view, o);
    std::atomic<int> c{0};
    return r.run(c);
  }
  StageRegistry reg;
  std::unique_ptr<cache::Store> store;
  std::unique_ptr<cache::Journal> journal;
};

const char* k_exp = R"(version: 1
name: dl
stages:
  - {name: fetch, kind: download, params: {source: "hf://tiny/model"}}
)";

TEST_F(DownloadPipelineTest, PublishesThenHitsThenMainMoves) {
  ScanResult scan;
  RunSummary s = run_yaml(k_exp, &scan);
  ASSERT_TRUE(s.ok()) << s.text();
  std::string key = scan.nodes[0].key;
  cache::Manifest m;
  std::string why;
  ASSERT_EQ(store->verify(key, &m, &why), cache::ArtifactState::kValid) << why;
  fs::path art = store->output_dir(key);
  EXPECT_EQ(read_file(art / "model.safetensors"), weights);
  EXPECT_EQ(json::parse(read_file(art / "download.json"))["resolved"], sha);
  bool has_resolved = false;
  for (const auto& f : scan.nodes[0].fields)
    if (f.name == "fp:resolved" && f.value == sha) has_resolved = true;
  EXPECT_TRUE(has_resolved);

  ScanResult again;
  s = run_yaml(k_exp, &again);
  EXPECT_EQ(s.hit + s.done, 1u);
  EXPECT_EQ(again.nodes[0].key, key);

  hub.commit("tiny/model",
             {{"config.json", {"{\"v\": 3}", false}}, {"model.safetensors", {"new", true}}});
  reg = StageRegistry{};
  reg.add(make_stage());  // a new process: resolves again
  ScanResult moved;
  s = run_yaml(k_exp, &moved);
  ASSERT_TRUE(s.ok()) << s.text();
  EXPECT_NE(moved.nodes[0].key, key);
}

TEST_F(DownloadPipelineTest, UnresolvableSourceIsADiagnosticNamingTheNode) {
  Graph g;
  ScanResult scan;
  Diagnostics d;
  EXPECT_FALSE(scan_yaml(R"(version: 1
name: dl
stages:
  - {name: fetch, kind: download, params: {source: "hf://tiny/absent"}}
)",
                         &g, &scan, &d));
  std::string text = format_diagnostics(d);
  EXPECT_NE(text.find("fetch: cannot compute the key"), std::string::npos) << text;
  EXPECT_NE(text.find("no such repo"), std::string::npos) << text;
  EXPECT_EQ(text.find(k_token), std::string::npos);
}

TEST_F(DownloadPipelineTest, ChecksumMismatchPublishesNoArtifact) {
  hub.lie_about_sha256("model.safetensors");
  ScanResult scan;
  RunSummary s = run_yaml(k_exp, &scan);
  EXPECT_EQ(s.failed, 1u);
  std::string err, failure;
  for (const auto& r : cache::Journal::load(store->journal_path(), &err))
    if (r.value("event", "") == "node_failed") failure = r.value("error", "");
  EXPECT_NE(failure.find("checksum mismatch"), std::string::npos) << failure;
  std::string why;
  EXPECT_EQ(store->check(scan.nodes[0].key, nullptr, &why), cache::ArtifactState::kMissing);
}

// Real files from ../shared/data served as a Hub repo and a dataset repo.
TEST_F(DownloadStageTest, SharedDataTinyllamasAndBenchmark) {
  fs::path data = testing::shared_data_dir();
  if (data.empty()) GTEST_SKIP() << "../shared/data is absent: no real model files to serve";
  fs::path model = data / "models" / "stories260K";
  fs::path tok = data / "tokenizers" / "llama2" / "tokenizer.json";
  fs::path bench = data / "benchmarks" / "gsm8k" / "test.jsonl";
  for (const auto& p : {model / "stories260K.bin", model / "tok512.bin", tok, bench})
    if (!fs::exists(p)) GTEST_SKIP() << p << " is absent";
  std::string ckpt = read_file(model / "stories260K.bin");
  hub.redirect_lfs_to_cdn(true);
  hub.drop_once_after("stories260K/stories260K.bin", ckpt.size() / 2);
  std::string rsha = hub.commit(
      "karpathy/tinyllamas", {{"stories260K/stories260K.bin", {ckpt, true}},
                              {"stories260K/tok512.bin", {read_file(model / "tok512.bin"), true}},
                              {"tokenizer.json", {read_file(tok), true}},
                              {"README.md", {"tiny llamas", false}}});
  hub.commit("datasets/openai/gsm8k", {{"main/test.jsonl", {read_file(bench), true}}});
  ASSERT_EQ(run(params({{"source", "hf://karpathy/tinyllamas"},
                        {"files", {"stories260K/*", "tokenizer.json"}}})),
            "");
  EXPECT_EQ(read_file(out / "stories260K" / "stories260K.bin"), ckpt);
  json m = json::parse(read_file(out / "download.json"));
  EXPECT_EQ(m["resolved"], rsha);
  std::string hex, err;
  ASSERT_TRUE(model::sha256_file(model / "tok512.bin", &hex, &err));
  bool found = false;
  for (const auto& f : m["files"])
    if (f["path"] == "stories260K/tok512.bin") found = f["sha256"] == hex;
  EXPECT_TRUE(found);
  for (const auto& r : hub.cdn_requests()) EXPECT_EQ(r.header("Authorization"), "");
  ASSERT_EQ(run(params({{"source", "hf://datasets/openai/gsm8k"}, {"kind", "dataset"}})), "");
  EXPECT_EQ(read_file(out / "main" / "test.jsonl"), read_file(bench));
}

}  // namespace
}  // namespace qsweep
