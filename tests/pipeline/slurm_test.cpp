// The Slurm executor's pure parts (sbatch command lines, parsing squeue /
// sacct / jobcomp output, end-state messages), the node plan round trip, and
// the executor's logic against a simulated cluster (FakeSlurm below: a
// CommandRunner that queues jobs, honours afterok dependencies and runs each
// job's node in process from its plan file, as `qsweep exec-node` does), for
// what a real one-host cluster cannot produce on demand: NODE_FAIL and
// PREEMPTED. tests/e2e/slurm_test.cpp runs the real thing.
#include "pipeline/slurm/slurm_executor.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "pipeline/node_exec.h"
#include "pipeline/node_task.h"
#include "tests/pipeline/pipeline_fixture.h"

namespace qsweep {
namespace {

using namespace slurm;
using testing::FakeBehaviour;
using testing::FakeStage;
using testing::load_and_expand;
using testing::TempDir;

TEST(SlurmJob, SbatchArgvMapsResourcesSettingsAndDependencies) {
  SlurmSettings s;
  s.partition = "gpu";
  s.account = "proj";
  s.qos = "high";
  s.constraint = "h100";
  s.time = "4:00:00";
  s.sbatch_args = {"--exclusive"};
  JobSpec j;
  j.job_name = "qsweep-0123";
  j.comment = "qsweep:abcd:0123";
  j.log = "/c/slurm/k/%j.log";
  j.script = "/c/slurm/k/job.sh";
  j.after_ok = {"12", "13"};
  j.resources = {8, 3ull << 30, 2, 0};
  auto a = sbatch_argv(s, j);
  std::vector<std::string> want = {"sbatch", "--parsable", "--job-name=qsweep-0123", "--comment=qsweep:abcd:0123",
                                   "--output=/c/slurm/k/%j.log", "--open-mode=append", "--cpus-per-task=8",
                                   "--mem=3G", "--gres=gpu:2", "--time=4:00:00", "--partition=gpu",
                                   "--account=proj", "--qos=high", "--constraint=h100",
                                   "--dependency=afterok:12:13", "--kill-on-invalid-dep=no", "--exclusive",
                                   "/c/slurm/k/job.sh"};
  EXPECT_EQ(a, want);
  // Nothing optional: no memory, GPU, time, partition or dependency flags.
  JobSpec bare;
  bare.job_name = "n";
  bare.comment = "c";
  bare.log = "l";
  bare.script = "s";
  bare.resources = {1, 1500000, 0, 0};  // 1.5 MB rounds up to 2 MiB
  a = sbatch_argv(SlurmSettings{}, bare);
  EXPECT_EQ(a, (std::vector<std::string>{"sbatch", "--parsable", "--job-name=n", "--comment=c", "--output=l",
                                         "--open-mode=append", "--cpus-per-task=1", "--mem=2M", "s"}));
}

TEST(SlurmJob, StageBlockOverridesCommandLine) {
  SlurmSettings cli;
  cli.partition = "cpu";
  cli.account = "me";
  cli.sbatch_args = {"--nice=5"};
  auto s = effective_settings(cli, {{"partition", "gpu"}, {"time", "30"}, {"sbatch_args", {"--exclusive"}},
                                    {"retry_on", {"TIMEOUT"}}, {"resubmits", 5}, {"local", true}});
  EXPECT_EQ(s.partition, "gpu");
  EXPECT_EQ(s.account, "me");
  EXPECT_EQ(s.time, "30");
  EXPECT_EQ(s.sbatch_args, (std::vector<std::string>{"--nice=5", "--exclusive"}));
  EXPECT_EQ(s.retry_on, (std::vector<std::string>{"TIMEOUT"}));
  EXPECT_EQ(s.resubmits, 5);
  EXPECT_TRUE(s.local);
  EXPECT_EQ(effective_settings(cli, nlohmann::json::object()).partition, "cpu");
}

TEST(SlurmJob, JobScriptRunsExecNodeWithQuotedPaths) {
  std::string sh = job_script("/opt/q sweep/qsweep", "/shared/it's/cache", "0123abcd", "score[a,b]", "run-1");
  EXPECT_NE(sh.find("exec '/opt/q sweep/qsweep' exec-node --cache '/shared/it'\\''s/cache' 0123abcd\n"),
            std::string::npos)
      << sh;
  EXPECT_NE(sh.find("export QSWEEP_RUN_ID='run-1'"), std::string::npos);
  EXPECT_EQ(sh.rfind("#!/bin/sh\n", 0), 0u);
}

TEST(SlurmJob, ParsesSqueueSacctAndJobcomp) {
  auto q = parse_squeue(
      "12|RUNNING|None|0|qsweep:aa:k1|\n"
      "13|PENDING|Dependency|0|(null)|\n"
      "garbage line\n"
      "14|FAILED|JobLaunchFailure|9|qsweep:aa:k3|\n");
  ASSERT_EQ(q.size(), 3u);
  EXPECT_EQ(q[0].id, "12");
  EXPECT_EQ(q[0].state, "RUNNING");
  EXPECT_EQ(q[0].reason, "");
  EXPECT_EQ(q[0].comment, "qsweep:aa:k1");
  EXPECT_EQ(q[1].reason, "Dependency");
  EXPECT_EQ(q[1].comment, "");
  EXPECT_EQ(q[2].exit_code, "9");

  auto a = parse_sacct("20|COMPLETED|None|0:0|qsweep:aa:k|\n20.batch|COMPLETED||0:0|\n21|CANCELLED by 0|None|0:15|c\n");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].id, "20");
  EXPECT_EQ(a[1].state, "CANCELLED");
  EXPECT_EQ(a[1].exit_code, "0:15");

  auto c = parse_jobcomp(
      "JobId=2 UserId=root(0) GroupId=root(0) Name=mem.sh JobState=FAILED Partition=debug ExitCode=0:9 \n"
      "JobId=3 UserId=root(0) Name=wrap JobState=CANCELLED ExitCode=0:0\n");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].id, "2");
  EXPECT_EQ(c[0].state, "FAILED");
  EXPECT_EQ(c[0].exit_code, "0:9");
  EXPECT_EQ(c[1].state, "CANCELLED");

  EXPECT_TRUE(is_active("PENDING"));
  EXPECT_TRUE(is_active("COMPLETING"));
  EXPECT_FALSE(is_active("COMPLETED"));
  EXPECT_FALSE(is_active("NODE_FAIL"));
}

TEST(SlurmJob, EndMessagesNameSlurmsReasonAndTheFix) {
  Resources r{1, 100ull << 20, 0, 0};
  // Without cgroups, slurmstepd's memory kill shows as FAILED + a log line.
  JobInfo j{"25", "FAILED", "JobLaunchFailure", "9", ""};
  const std::string log = "slurmstepd-vm: error: StepId=25.batch exceeded memory limit (436367360 > 104857600), being killed\n";
  EXPECT_EQ(effective_state(j, log), "OUT_OF_MEMORY");
  EXPECT_EQ(effective_state(j, "some other error"), "FAILED");
  std::string m = end_message(j, log, r, "");
  EXPECT_NE(m.find("Slurm job 25 ended OUT_OF_MEMORY"), std::string::npos) << m;
  EXPECT_NE(m.find("--mem=100M"), std::string::npos) << m;
  EXPECT_NE(m.find("resources.memory"), std::string::npos) << m;
  m = end_message({"26", "TIMEOUT", "TimeLimit", "0:15", ""}, "", r, "0:10:00");
  EXPECT_NE(m.find("--time=0:10:00"), std::string::npos) << m;
  EXPECT_NE(m.find("slurm.time"), std::string::npos) << m;
  m = end_message({"27", "CANCELLED", "", "0:15", ""}, "", r, "");
  EXPECT_NE(m.find("scancel"), std::string::npos) << m;
  m = end_message({"28", "NODE_FAIL", "", "", ""}, "", r, "");
  EXPECT_NE(m.find("compute node failed"), std::string::npos) << m;
  m = end_message({"29", "PREEMPTED", "", "", ""}, "", r, "");
  EXPECT_NE(m.find("preempted"), std::string::npos) << m;
}

TEST(SlurmJob, CommentPrefixIsPerCache) {
  TempDir a, b;
  EXPECT_EQ(comment_prefix(a.path()), comment_prefix(a.path()));
  EXPECT_NE(comment_prefix(a.path()), comment_prefix(b.path()));
  EXPECT_EQ(comment_prefix(a.path()).size(), std::string("qsweep:12345678:").size());
}

// ---- a simulated cluster ---------------------------------------------------

struct FakeSlurm {
  struct Job {
    std::string id, key, comment, state = "PENDING", reason;
    std::vector<std::string> after;
    std::vector<std::string> argv;
  };
  std::map<std::string, Job> jobs;  // by id
  std::vector<std::string> order;   // submission order
  int next = 100;
  size_t monitor = 0;
  /// node key -> end states forced on its first submissions, in order (e.g. NODE_FAIL).
  std::map<std::string, std::vector<std::string>> forced;
  std::function<void(const std::string& key, std::string* state)> run_job;  // runs the node

  int operator()(const std::vector<std::string>& argv, std::string* out, std::string* err) {
    out->clear();
    err->clear();
    const std::string& cmd = argv[0];
    if (cmd == "sbatch") {
      Job j;
      j.id = std::to_string(next++);
      j.argv = argv;
      for (const auto& a : argv) {
        if (a.rfind("--comment=", 0) == 0) j.comment = a.substr(10);
        if (a.rfind("--dependency=afterok:", 0) == 0) {
          std::stringstream ss(a.substr(21));
          std::string x;
          while (std::getline(ss, x, ':')) j.after.push_back(x);
        }
      }
      const auto colon = j.comment.rfind(':');
      j.key = j.comment.substr(colon + 1);
      jobs[j.id] = j;
      order.push_back(j.id);
      *out = j.id + "\n";
      return 0;
    }
    if (cmd == "scancel") {
      for (size_t i = 1; i < argv.size(); ++i)
        if (jobs.count(argv[i]) && (jobs[argv[i]].state == "PENDING" || jobs[argv[i]].state == "RUNNING"))
          jobs[argv[i]].state = "CANCELLED";
      return 0;
    }
    if (cmd == "squeue") {
      ++monitor;
      bool listing = false;  // --user=...: a restarted runner looking for its jobs
      for (const auto& a : argv) listing = listing || a.rfind("--user=", 0) == 0;
      if (!listing) step();
      std::set<std::string> want;
      for (const auto& a : argv)
        if (a.rfind("--jobs=", 0) == 0) {
          std::stringstream ss(a.substr(7));
          std::string x;
          while (std::getline(ss, x, ',')) want.insert(x);
        }
      for (const auto& id : order) {
        if (!want.empty() && !want.count(id)) continue;
        const Job& j = jobs[id];
        *out += j.id + "|" + j.state + "|" + (j.reason.empty() ? "None" : j.reason) + "|0|" + j.comment + "|\n";
      }
      return 0;
    }
    if (cmd == "sacct" || cmd == "scontrol") {
      ++monitor;
      return 0;
    }
    return 0;
  }

  // One scheduling pass: each pending job whose dependencies completed runs to its end.
  void step() {
    for (const auto& id : order) {
      Job& j = jobs[id];
      if (j.state != "PENDING" || j.key == "probe") {
        if (j.key == "probe" && j.state == "PENDING") j.state = "COMPLETED";
        continue;
      }
      bool ready = true, never = false;
      for (const auto& d : j.after) {
        const std::string& s = jobs[d].state;
        if (s != "COMPLETED") ready = false;
        if (s != "COMPLETED" && s != "PENDING" && s != "RUNNING") never = true;
      }
      if (never) j.reason = "DependencyNeverSatisfied";
      if (!ready) continue;
      auto& f = forced[j.key];
      if (!f.empty()) {
        j.state = f.front();
        f.erase(f.begin());
        continue;
      }
      run_job(j.key, &j.state);
    }
  }
};

struct SlurmExecFixture : testing::PipelineFixture {
  SlurmExecFixture() {
    slurm.run_job = [this](const std::string& key, std::string* state) {
      // What `qsweep exec-node` does inside the job.
      NodeTask t;
      std::string e, msg;
      ASSERT_TRUE(read_node_plan(*store, key, &t, &e)) << e;
      std::atomic<int> cancel{0};
      double ran = 0;
      auto view = make_null_progress();
      ExecOptions eo;
      eo.run_id = "job";
      NodeOutcome o = execute_node(t, *reg.find(t.kind), t.resources, *store, *journal, *view, cancel, eo, &msg, &ran);
      *state = o == NodeOutcome::kDone || o == NodeOutcome::kHit ? "COMPLETED" : "FAILED";
    };
  }

  RunSummary run(const std::string& yaml, bool keep_going = false) {
    load(yaml);
    SlurmRunOptions o;
    o.qsweep_bin = "/usr/bin/qsweep";
    o.run_id = "test";
    o.user = "me";
    o.poll_min_s = 0.001;
    o.poll_max_s = 0.002;
    o.keep_going = keep_going;
    o.probe = false;
    o.local_capacity = Resources{2, UINT64_MAX, 0, 4};
    auto view = make_null_progress();
    SlurmExecutor ex(graph, scan, plan, *store, *journal, *view, o,
                     [this](const std::vector<std::string>& a, std::string* out, std::string* err) {
                       return slurm(a, out, err);
                     });
    std::atomic<int> cancel{0};
    RunSummary s = ex.run(cancel);
    stats = ex.stats();
    return s;
  }
  const FakeSlurm::Job& job_of(const std::string& node, int nth = 0) {
    int seen = 0;
    for (const auto& id : slurm.order)
      if (slurm.jobs[id].key == key_of(node) && seen++ == nth) return slurm.jobs[id];
    static FakeSlurm::Job none;
    return none;
  }
  int submissions(const std::string& node) {
    int n = 0;
    for (const auto& id : slurm.order) n += slurm.jobs[id].key == key_of(node);
    return n;
  }

  FakeSlurm slurm;
  SlurmStats stats;
};

const char* k_chain = R"(version: 1
name: t
recipes: {r1: {}, r2: {}}
stages:
  - {name: a, kind: fake, matrix: {recipe: "*"}, params: {text: "${recipe}"}}
  - {name: b, kind: fake, matrix: {recipe: "*"}, inputs: {x: "a[${recipe}]"}, params: {text: "${recipe}"},
     resources: {threads: 4, memory: 2GiB, gpu: 1}, slurm: {partition: gpu, time: "1:00:00"}}
  - {name: c, kind: fake, inputs: {all: ["b[*]"]}}
)";

TEST_F(SlurmExecFixture, SubmitsEveryNodeUpfrontWithAfterokOnItsInputs) {
  RunSummary s = run(k_chain);
  EXPECT_TRUE(s.ok()) << s.text();
  EXPECT_EQ(s.done, 5u);
  EXPECT_EQ(stats.sbatch_calls, 5u);
  // Submitted in topological order; each waits for its inputs' jobs.
  EXPECT_TRUE(job_of("a[r1]").after.empty());
  EXPECT_EQ(job_of("b[r1]").after, std::vector<std::string>{job_of("a[r1]").id});
  EXPECT_EQ(job_of("c").after, (std::vector<std::string>{job_of("b[r1]").id, job_of("b[r2]").id}));
  // Resources and the stage's slurm block reach sbatch.
  const auto& argv = job_of("b[r2]").argv;
  for (const char* f : {"--cpus-per-task=4", "--mem=2G", "--gres=gpu:1", "--partition=gpu", "--time=1:00:00"})
    EXPECT_NE(std::find(argv.begin(), argv.end(), f), argv.end()) << f;
  // One monitoring call per polling interval, whatever the number of jobs.
  EXPECT_LE(stats.monitor_calls, stats.polls);
  EXPECT_EQ(slurm.monitor, stats.monitor_calls);
  // Every node ran exactly once (in "its job").
  for (const auto& [id, n] : b.calls) EXPECT_EQ(n, 1) << id;
  // A second run: everything cached, nothing submitted.
  slurm.order.clear();
  s = run(k_chain);
  EXPECT_EQ(s.hit, 5u);
  EXPECT_TRUE(slurm.order.empty());
}

TEST_F(SlurmExecFixture, NodeFailAndPreemptionAreResubmittedAndDependentsRepointed) {
  load(k_chain);
  slurm.forced[key_of("a[r1]")] = {"NODE_FAIL", "PREEMPTED"};
  RunSummary s = run(k_chain);
  EXPECT_TRUE(s.ok()) << s.text();
  EXPECT_EQ(submissions("a[r1]"), 3);
  EXPECT_EQ(stats.resubmitted, 2u);
  // b[r1] waited on the failed job: it was cancelled and resubmitted after the new a[r1].
  EXPECT_EQ(slurm.jobs[job_of("b[r1]", 0).id].state, "CANCELLED");
  const auto& b_last = job_of("b[r1]", submissions("b[r1]") - 1);
  EXPECT_EQ(b_last.after, std::vector<std::string>{job_of("a[r1]", 2).id});
  EXPECT_EQ(b_last.state, "COMPLETED");
  EXPECT_EQ(b.calls["a[r1]"], 1);
  EXPECT_EQ(b.calls["b[r1]"], 1);
}

TEST_F(SlurmExecFixture, RetryBudgetEndsInAFailureNamingTheState) {
  load(k_chain);
  slurm.forced[key_of("a[r2]")] = {"NODE_FAIL", "NODE_FAIL", "NODE_FAIL"};
  RunSummary s = run(k_chain, /*keep_going=*/true);
  EXPECT_EQ(s.failed, 1u);
  EXPECT_EQ(s.skipped, 2u);  // b[r2], c
  EXPECT_EQ(s.done, 2u);     // a[r1], b[r1]
  EXPECT_EQ(submissions("a[r2]"), 3);  // first + 2 resubmissions
  ASSERT_EQ(s.failures.size(), 1u);
  EXPECT_NE(s.failures[0].find("NODE_FAIL"), std::string::npos) << s.failures[0];
  EXPECT_NE(s.failures[0].find("compute node failed"), std::string::npos) << s.failures[0];
}

TEST_F(SlurmExecFixture, StageFailureFailsFastAndCancelsPendingJobs) {
  b.fail.insert("a[r1]");
  RunSummary s = run(k_chain);
  EXPECT_EQ(s.failed, 1u);
  EXPECT_FALSE(s.ok());
  // Nothing downstream ran; pending jobs of the run were cancelled.
  EXPECT_EQ(b.calls.count("c"), 0u);
  EXPECT_EQ(b.calls.count("b[r1]"), 0u);
  EXPECT_EQ(slurm.jobs[job_of("c").id].state, "CANCELLED");
}

TEST_F(SlurmExecFixture, AdoptsQueuedJobsOfAnEarlierRunnerByComment) {
  load(k_chain);
  // An earlier runner submitted a[r1] and died before journaling it.
  NodeTask t = make_node_task(graph, scan, *store, graph.by_id.at("a[r1]"));
  std::string err;
  ASSERT_TRUE(write_node_plan(*store, t, &err)) << err;
  std::string out;
  slurm({"sbatch", "--comment=" + comment_prefix(store->root()) + key_of("a[r1]"), "job.sh"}, &out, &err);
  const std::string earlier = out.substr(0, out.find('\n'));
  RunSummary s = run(k_chain);
  EXPECT_TRUE(s.ok()) << s.text();
  EXPECT_EQ(stats.adopted, 1u);
  EXPECT_EQ(submissions("a[r1]"), 1);  // not resubmitted
  EXPECT_EQ(job_of("b[r1]").after, std::vector<std::string>{earlier});
  EXPECT_EQ(b.calls["a[r1]"], 1);
}

TEST_F(SlurmExecFixture, LocalStagesRunInTheRunner) {
  const char* yaml = R"(version: 1
name: t
stages:
  - {name: fetch, kind: fake, slurm: {local: true}}
  - {name: work, kind: fake, inputs: {x: fetch}}
)";
  RunSummary s = run(yaml);
  EXPECT_TRUE(s.ok()) << s.text();
  EXPECT_EQ(stats.sbatch_calls, 1u);  // only `work`
  EXPECT_TRUE(job_of("work").after.empty());  // fetch was done before work was submitted
  EXPECT_EQ(b.calls["fetch"], 1);
}

TEST(NodeTask, PlanFileRoundTrips) {
  FakeBehaviour b;
  StageRegistry reg;
  reg.add(std::make_unique<FakeStage>(&b));
  TempDir dir;
  Graph g;
  ASSERT_EQ(load_and_expand(dir, k_chain, reg, &g), "");
  std::string err;
  auto store = cache::Store::open(dir / "cache", &err);
  cache::FileDigestCache digests("");
  Diagnostics d;
  ScanResult scan;
  ASSERT_TRUE(scan_graph(g, digests, store.get(), &scan, &d));
  const int i = g.by_id.at("b[r2]");
  NodeTask t = make_node_task(g, scan, *store, i);
  ASSERT_TRUE(write_node_plan(*store, t, &err)) << err;
  NodeTask back;
  ASSERT_TRUE(read_node_plan(*store, t.key, &back, &err)) << err;
  EXPECT_EQ(node_task_to_json(back), node_task_to_json(t));
  EXPECT_EQ(back.inputs.at("x").items.at(0).axes, (std::vector<std::pair<std::string, std::string>>{{"recipe", "r2"}}));
  EXPECT_EQ(back.resources, (Resources{4, 2ull << 30, 1, 0}));
  // Hostile plan files: clear errors, no crash.
  testing::write_file(node_plan_path(*store, t.key), "{\"format\": \"qsweep-node-plan\", \"version\": 1, \"node\": 3}");
  EXPECT_FALSE(read_node_plan(*store, t.key, &back, &err));
  EXPECT_NE(err.find("malformed node plan"), std::string::npos) << err;
  testing::write_file(node_plan_path(*store, t.key), "{not json");
  EXPECT_FALSE(read_node_plan(*store, t.key, &back, &err));
  EXPECT_NE(err.find("not valid JSON"), std::string::npos) << err;
  EXPECT_FALSE(read_node_plan(*store, std::string(32, 'f'), &back, &err));
  EXPECT_NE(err.find("no node plan"), std::string::npos) << err;
}

}  // namespace
}  // namespace qsweep
