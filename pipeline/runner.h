#pragma once
// The local executor: runs a Plan as a oneTBB flow graph of continue_nodes
// (one per node that runs; an edge per dependency between them). Each node:
//   skip if cancelled or an upstream node failed
//   -> acquire resources (pipeline/resources.h)
//   -> execute_node (node_exec.h): key lock, run with retries, publish, journal
//   -> release.
// Fail-fast by default (stop scheduling after the first failure, let running
// nodes finish); keep_going runs everything that does not depend on a failure.
// Only this file includes tbb/flow_graph.h.

#include <atomic>
#include <string>
#include <vector>

#include "cache/journal.h"
#include "cache/store.h"
#include "pipeline/executor.h"
#include "pipeline/graph.h"
#include "pipeline/plan.h"
#include "pipeline/progress.h"
#include "pipeline/resources.h"
#include "pipeline/scan.h"

namespace qsweep {

struct RunOptions {
  int jobs = 0;             ///< nodes in flight at once; 0 = resource capacity threads
  bool keep_going = false;  ///< run what does not depend on a failure
  Resources capacity;       ///< global limits (machine_capacity())
  double retry_base_s = 1;  ///< first retry delay; doubles per attempt, capped at 60 s
  std::string run_id;       ///< journal run id
};

class Runner : public Executor {
 public:
  Runner(const Graph& g, const ScanResult& scan, const Plan& plan, cache::Store& store,
         cache::Journal& journal, ProgressView& progress, RunOptions opts);

  /// Runs the plan. cancel: 0 run, 1 stop scheduling and let running stages
  /// stop at a checkpoint, 2 abort running stages. Never throws.
  RunSummary run(std::atomic<int>& cancel) override;

 private:
  /// *ran: seconds the stage body ran (set only when it started; the wait
  /// for resources and locks is not counted).
  NodeOutcome execute(int i, std::atomic<int>& cancel, std::string* msg, double* ran);

  const Graph& g_;
  const ScanResult& scan_;
  const Plan& plan_;
  cache::Store& store_;
  cache::Journal& journal_;
  ProgressView& progress_;
  RunOptions opts_;
  ResourcePool pool_;
  std::vector<std::atomic<int>> outcome_;  ///< -1 pending, else NodeOutcome
  std::atomic<bool> stop_scheduling_{false};
};

/// A fresh run id: UTC time + pid, e.g. "20261125T152125Z-4242".
std::string make_run_id();

}  // namespace qsweep
