#include "pipeline/runner.h"

#include <gtest/gtest.h>

#include "tests/pipeline/pipeline_fixture.h"

namespace qsweep {
namespace {

using testing::FakeBehaviour;
using testing::FakeStage;
using testing::load_and_expand;
using testing::TempDir;

struct RunFixture : testing::PipelineFixture {
  // Loads, scans against the store, plans, runs.
  RunSummary run(const std::string& yaml, RunOptions o = {}, int cancel_level = 0) {
    load(yaml);
    if (o.capacity.threads == 1 && o.capacity.memory == 0) o.capacity = Resources{4, UINT64_MAX, 1, 8};
    o.retry_base_s = 0.01;
    o.run_id = "test";
    auto view = make_null_progress();
    Runner r(graph, scan, plan, *store, *journal, *view, o);
    std::atomic<int> cancel{cancel_level};
    return r.run(cancel);
  }
};

const char* k_chain = R"(version: 1
name: t
recipes: {r1: {}, r2: {}, r3: {}}
stages:
  - {name: a, kind: fake, matrix: {recipe: "*"}, params: {text: "${recipe}"}}
  - {name: b, kind: fake, matrix: {recipe: "*"}, inputs: {x: "a[${recipe}]"}, params: {text: "${recipe}"}}
  - {name: c, kind: fake, inputs: {all: ["b[*]"]}}
)";

TEST_F(RunFixture, RunsEverythingThenAllHits) {
  RunSummary s = run(k_chain);
  EXPECT_TRUE(s.ok()) << s.text();
  EXPECT_EQ(s.done, 7u);
  EXPECT_EQ(events("node_done"), 7);
  // Artifacts hold the stage's files, a manifest naming inputs.
  cache::Manifest m;
  std::string why;
  ASSERT_EQ(store->check(key_of("c"), &m, &why), cache::ArtifactState::kValid) << why;
  EXPECT_EQ(m.node, "c");
  EXPECT_EQ(m.inputs.size(), 3u);
  EXPECT_EQ(m.experiment, "t");
  std::string out = testing::read_file(store->output_dir(key_of("c")) / "out.txt");
  EXPECT_NE(out.find(store->output_dir(key_of("b[r2]")).string()), std::string::npos);
  s = run(k_chain);
  EXPECT_EQ(s.done, 0u);
  EXPECT_EQ(s.hit, 7u);
  EXPECT_EQ(b.calls["a[r1]"], 1);
}

TEST_F(RunFixture, FailFastStopsSchedulingKeepGoingFinishesIndependentWork) {
  b.fail.insert("a[r1]");
  RunOptions o;
  o.capacity = Resources{1, UINT64_MAX, 0, 8};  // one node at a time
  RunSummary s = run(k_chain, o);
  EXPECT_EQ(s.failed, 1u);
  EXPECT_FALSE(s.ok());
  // Fail-fast: after the failure no node starts.
  std::string err;
  bool after_failure = false;
  for (const auto& r : cache::Journal::load(store->journal_path(), &err)) {
    if (r.value("event", "") == "node_failed") after_failure = true;
    if (after_failure) {
      EXPECT_NE(r.value("event", ""), "node_start") << r.dump();
    }
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir / "cache" / "tmp")) << "the failed node's temp dir is gone";
  for (const auto& k : store->keys(&err)) store->remove(k, &err);
  o.keep_going = true;
  s = run(k_chain, o);
  EXPECT_EQ(s.failed, 1u);
  EXPECT_EQ(s.done, 4u) << s.text();  // a[r2], a[r3], b[r2], b[r3]
  EXPECT_EQ(s.skipped, 2u);           // b[r1], c
  b.fail.clear();
  s = run(k_chain, o);
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.done, 3u);
  EXPECT_EQ(s.hit, 4u);
}

TEST_F(RunFixture, RetryableErrorsAreRetriedWithBackoff) {
  const std::string yaml = "version: 1\nname: t\nstages:\n  - {name: a, kind: fake, retries: 2}\n  - {name: z, kind: fake, params: {text: z}}\n";
  b.retryable_failures["a"] = 2;
  RunSummary s = run(yaml);
  EXPECT_TRUE(s.ok()) << s.text();
  EXPECT_EQ(b.calls["a"], 3);
  EXPECT_EQ(events("node_retry"), 2);
  b.retryable_failures["z"] = 1;  // no retries declared: fails
  std::string err;
  ASSERT_TRUE(store->remove(key_of("z"), &err)) << err;
  s = run(yaml);
  EXPECT_EQ(s.failed, 1u);
}

TEST_F(RunFixture, GpuNodesNeverOverlapOnOneGpu) {
  const std::string yaml = R"(version: 1
name: t
recipes: {r1: {}, r2: {}, r3: {}, r4: {}}
stages:
  - {name: g, kind: fake, matrix: {recipe: "*"}, resources: {gpu: 1}, params: {text: "g${recipe}"}}
  - {name: c, kind: fake, matrix: {recipe: "*"}, params: {text: "c${recipe}"}}
)";
  for (const char* r : {"g[r1]", "g[r2]", "g[r3]", "g[r4]", "c[r1]", "c[r2]", "c[r3]", "c[r4]"}) b.sleep_ms[r] = 40;
  RunSummary s = run(yaml);
  EXPECT_TRUE(s.ok()) << s.text();
  EXPECT_EQ(b.max_gpu_running.load(), 1);
  EXPECT_GE(b.max_running.load(), 2) << "CPU nodes run beside the GPU node";
  EXPECT_LE(b.max_running.load(), 4) << "no more than the thread limit";
}

TEST_F(RunFixture, ImpossibleResourceRequestFailsWithAClearMessage) {
  RunOptions o;
  o.capacity = Resources{2, UINT64_MAX, 0, 8};
  RunSummary s = run("version: 1\nname: t\nstages:\n  - {name: g, kind: fake, resources: {gpu: 1}}\n", o);
  EXPECT_EQ(s.failed, 1u);
  std::string err;
  auto recs = cache::Journal::load(store->journal_path(), &err);
  ASSERT_FALSE(recs.empty());
  EXPECT_NE(recs.back().value("error", "").find("needs 1 GPU(s) but 0 are available"), std::string::npos);
}

TEST_F(RunFixture, NodesWithOneKeyAreComputedOnce) {
  // Same kind, params and inputs: one artifact, whatever the node ids.
  RunSummary s = run("version: 1\nname: t\nrecipes: {r1: {}, r2: {}}\nstages:\n  - {name: a, kind: fake, matrix: {recipe: '*'}}\n");
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.done, 1u);
  EXPECT_EQ(s.hit, 1u);
  EXPECT_EQ(b.calls["a[r1]"] + b.calls["a[r2]"], 1);
}

TEST_F(RunFixture, CancelledRunStartsNothing) {
  RunSummary s = run(k_chain, {}, 1);
  EXPECT_EQ(s.done, 0u);
  EXPECT_EQ(s.cancelled, 7u);
  EXPECT_TRUE(b.calls.empty());
}

TEST_F(RunFixture, CorruptArtifactIsRecomputedNeverServed) {
  const std::string yaml = "version: 1\nname: t\nstages:\n  - {name: a, kind: fake}\n";
  ASSERT_TRUE(run(yaml).ok());
  auto f = store->output_dir(key_of("a")) / "out.txt";
  std::filesystem::resize_file(f, 3);
  RunSummary s = run(yaml);
  EXPECT_EQ(s.done, 1u);
  EXPECT_EQ(b.calls["a"], 2);
  std::string why;
  EXPECT_EQ(store->verify(key_of("a"), nullptr, &why), cache::ArtifactState::kValid) << why;
}

TEST(ResourcePool, GpuSlotsAreDistinctLowestFirstAndReturned) {
  ResourcePool pool(Resources{4, UINT64_MAX, 3, 8});
  std::vector<int> a, b, c;
  auto never = [] { return false; };
  ASSERT_TRUE(pool.acquire(Resources{1, 0, 2, 0}, never, &a));
  ASSERT_TRUE(pool.acquire(Resources{1, 0, 1, 0}, never, &b));
  EXPECT_EQ(a, (std::vector<int>{0, 1}));
  EXPECT_EQ(b, (std::vector<int>{2}));
  pool.release(Resources{1, 0, 2, 0}, a);
  ASSERT_TRUE(pool.acquire(Resources{1, 0, 1, 0}, never, &c));
  EXPECT_EQ(c, (std::vector<int>{0}));
  ASSERT_TRUE(pool.acquire(Resources{1, 0, 0, 0}, never, &a));
  EXPECT_TRUE(a.empty());
}

TEST(ResourcePool, CudaVisibleDevicesMapsSlotsThroughTheParentsList) {
  const char* old = std::getenv("CUDA_VISIBLE_DEVICES");
  const std::string saved = old ? old : "";
  unsetenv("CUDA_VISIBLE_DEVICES");
  EXPECT_EQ(cuda_visible_devices({0, 2}), "0,2");
  setenv("CUDA_VISIBLE_DEVICES", "4,GPU-abc,6", 1);
  EXPECT_EQ(cuda_visible_devices({1}), "GPU-abc");
  EXPECT_EQ(cuda_visible_devices({0, 2}), "4,6");
  EXPECT_EQ(cuda_visible_devices({}), "");
  if (old) setenv("CUDA_VISIBLE_DEVICES", saved.c_str(), 1);
  else unsetenv("CUDA_VISIBLE_DEVICES");
}

}  // namespace
}  // namespace qsweep
