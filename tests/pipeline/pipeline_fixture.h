#pragma once
// A store, a journal and the in-process FakeStage, with an experiment loaded,
// scanned against the store and planned: what the executor tests (local
// runner, Slurm) start from.

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "cache/journal.h"
#include "cache/store.h"
#include "pipeline/plan.h"
#include "pipeline/scan.h"
#include "tests/pipeline/fake_stage.h"
#include "tests/pipeline/pipeline_util.h"

namespace qsweep::testing {

struct PipelineFixture : ::testing::Test {
  PipelineFixture() {
    reg.add(std::make_unique<FakeStage>(&b));
    std::string err;
    store = cache::Store::open(dir / "cache", &err);
    EXPECT_TRUE(store) << err;
    journal = std::make_unique<cache::Journal>(store->journal_path());
  }

  /// Loads + expands yaml into graph, scans it against the store, plans every node.
  void load(const std::string& yaml) {
    graph = Graph{};
    EXPECT_EQ(load_and_expand(dir, yaml, reg, &graph), "");
    cache::FileDigestCache digests("");
    Diagnostics d;
    scan = ScanResult{};
    EXPECT_TRUE(scan_graph(graph, digests, store.get(), &scan, &d));
    plan = make_plan(graph, scan, {});
  }
  std::string key_of(const std::string& id) { return scan.nodes[graph.by_id.at(id)].key; }
  /// Journal records with this event.
  int events(const std::string& ev) {
    std::string err;
    int n = 0;
    for (const auto& r : cache::Journal::load(store->journal_path(), &err))
      if (r.value("event", "") == ev) ++n;
    return n;
  }

  FakeBehaviour b;
  StageRegistry reg;
  TempDir dir;
  std::unique_ptr<cache::Store> store;
  std::unique_ptr<cache::Journal> journal;
  Graph graph;
  ScanResult scan;
  Plan plan;
};

}  // namespace qsweep::testing
