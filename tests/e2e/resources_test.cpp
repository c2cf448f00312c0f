// Resource slots: GPUs and nodes in flight (-j).

#include <algorithm>
#include <filesystem>
#include <sstream>

#include <gmock/gmock.h>

#include "tests/e2e/e2e_util.h"

namespace qsweep::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

class ResourceTest : public E2ETest {};

// Two gpu:1 nodes, each logging "node start end" (seconds since the epoch).
constexpr const char* k_gpu = R"~(version: 1
name: e2e-gpu
recipes: {g1: {}, g2: {}}
stages:
  - name: train
    kind: command
    matrix: {recipe: "*"}
    resources: {gpu: 1}
    params:
      argv: [sh, -c, 's=$(date +%s.%N); sleep 0.4; e=$(date +%s.%N); echo "$0 $s $e" >> "$1"; echo ok > "$2/ok"',
             "${recipe}", "@DIR@/gpu.log", "${output_dir}"]
)~";

struct Interval {
  std::string node;
  double start, end;
};

std::vector<Interval> read_intervals(const fs::path& log) {
  std::vector<Interval> v;
  std::istringstream in(read_file(log));
  Interval i;
  while (in >> i.node >> i.start >> i.end) v.push_back(i);
  std::sort(v.begin(), v.end(), [](const Interval& a, const Interval& b) { return a.start < b.start; });
  return v;
}

bool overlap(const std::vector<Interval>& v) {
  for (size_t k = 1; k < v.size(); ++k)
    if (v[k].start < v[k - 1].end) return true;
  return false;
}

TEST_F(ResourceTest, GpuNodesNeverOverlapOnOneGpu) {
  write_exp(k_gpu);
  // Control: with two GPU slots they do run together (the log can show overlap).
  ProcResult two = qsweep({"run", exp().string(), "--gpus", "2", "-j", "4", "--threads", "4",
                           "--cache", path("cache2").string()});
  ASSERT_EQ(two.exit_code, 0) << describe(two);
  auto v2 = read_intervals(path("gpu.log"));
  ASSERT_EQ(v2.size(), 2u) << read_file(path("gpu.log"));
  EXPECT_TRUE(overlap(v2)) << "control run: two GPU slots, yet the nodes ran one after the other";
  fs::remove(path("gpu.log"));

  ProcResult one = run({"--gpus", "1", "-j", "4", "--threads", "4"});
  ASSERT_EQ(one.exit_code, 0) << describe(one);
  auto v1 = read_intervals(path("gpu.log"));
  ASSERT_EQ(v1.size(), 2u) << read_file(path("gpu.log"));
  EXPECT_FALSE(overlap(v1)) << read_file(path("gpu.log"));
}

// Each gpu:1 node runs with CUDA_VISIBLE_DEVICES naming its own slot's device
// (from qsweep's own CUDA_VISIBLE_DEVICES): two overlapping nodes get 5 and 7.
TEST_F(ResourceTest, GpuSlotsBecomeTheNodesCudaVisibleDevices) {
  write_exp(R"~(version: 1
name: e2e-gpu-ids
recipes: {g1: {}, g2: {}}
stages:
  - name: train
    kind: command
    matrix: {recipe: "*"}
    resources: {gpu: 1}
    params:
      argv: [sh, -c, 'sleep 0.5; echo "$CUDA_VISIBLE_DEVICES" > "$0/dev"', "${output_dir}", "${recipe}"]
      outputs: [dev]
)~");
  ProcResult r = run_command({qsweep_bin().string(), "run", exp().string(), "--gpus", "2", "-j", "2", "--threads", "2",
                              "--progress", "none", "--cache", cache().string()},
                             60, dir_.path(), {{"CUDA_VISIBLE_DEVICES", "5,7"}});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  std::vector<std::string> devs;
  for (const auto& [node, key] : journal().keys())
    devs.push_back(read_file(cache() / "objects" / key.substr(0, 2) / key / "out" / "dev"));
  EXPECT_THAT(sorted(devs), ::testing::ElementsAre("5\n", "7\n"));
}

TEST_F(ResourceTest, GpuNodeWithoutGpusFailsNamingGpus) {
  write_exp(k_gpu);
  ProcResult r = run({"--gpus", "0"});
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  Journal j = journal();
  auto failed = j.events(j.last_run(), "node_failed");
  ASSERT_FALSE(failed.empty()) << describe(r);
  EXPECT_THAT(failed[0].value("error", ""), HasSubstr("GPU"));
  EXPECT_THAT(r.err, HasSubstr("GPU")) << describe(r);
  EXPECT_TRUE(j.events("", "node_start").empty()) << "a gpu node started without a GPU";
  EXPECT_FALSE(fs::exists(path("gpu.log")));
}

// Four nodes that only wait (like API calls): -j 4 runs them all at once,
// also on a machine with fewer cores.
constexpr const char* k_waiting = R"~(version: 1
name: e2e-jobs
recipes: {a: {}, b: {}, c: {}, d: {}}
stages:
  - name: wait
    kind: command
    matrix: {recipe: "*"}
    params:
      argv: [sh, -c, 's=$(date +%s.%N); sleep 0.6; e=$(date +%s.%N); echo "$0 $s $e" >> "$1"; echo ok > "$2/ok"',
             "${recipe}", "@DIR@/jobs.log", "${output_dir}"]
)~";

TEST_F(ResourceTest, JobsBeyondTheCoreCountRunTogether) {
  write_exp(k_waiting);
  ProcResult r = run({"-j", "4", "--threads", "4"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_THAT(r.err, Not(HasSubstr("TBB Warning"))) << describe(r);
  auto v = read_intervals(path("jobs.log"));
  ASSERT_EQ(v.size(), 4u) << read_file(path("jobs.log"));
  double last_start = 0, first_end = 1e300;
  for (const auto& i : v) last_start = std::max(last_start, i.start), first_end = std::min(first_end, i.end);
  EXPECT_LT(last_start, first_end) << "-j 4 did not run four waiting nodes at once:\n" << read_file(path("jobs.log"));
}

}  // namespace
}  // namespace qsweep::testing
