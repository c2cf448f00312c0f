// `qsweep run --executor slurm` on a real single-host Slurm cluster (munged,
// slurmctld, slurmd from Debian), started by CTest's slurm_cluster fixture
// (scripts/slurm/local_cluster.sh, in <build>/slurm-cluster) and stopped
// after the last test that needs it. These tests run one at a time
// (RESOURCE_LOCK): they share the cluster's two CPUs.

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <regex>
#include <sstream>

#include <gmock/gmock.h>

#include "tests/e2e/e2e_util.h"

#ifndef QSWEEP_SLURM_TEST_DIR
#error "QSWEEP_SLURM_TEST_DIR must name the test cluster's directory"
#endif

namespace qsweep::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

const fs::path k_cluster = QSWEEP_SLURM_TEST_DIR;

/// A program's path from PATH (run_command wants a path).
std::string which(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/bin:/bin");
  std::string d;
  while (std::getline(ss, d, ':'))
    if (!d.empty() && access((fs::path(d) / name).c_str(), X_OK) == 0) return (fs::path(d) / name).string();
  return "/usr/bin/" + name;
}

class SlurmTest : public E2ETest {
 protected:
  void SetUp() override {
    E2ETest::SetUp();
    if (IsSkipped()) return;
    if (fs::exists(k_cluster / "unavailable"))
      GTEST_SKIP() << "no test Slurm cluster: " << read_file(k_cluster / "unavailable");
    ASSERT_TRUE(fs::exists(k_cluster / "slurm.conf"))
        << "the slurm_cluster fixture did not start a cluster in " << k_cluster
        << " (run `ctest -R slurm`, or scripts/slurm/local_cluster.sh start " << k_cluster << ")";
    setenv("SLURM_CONF", (k_cluster / "slurm.conf").c_str(), 1);
    std::error_code ec;
    jobcomp_start_ = fs::file_size(k_cluster / "jobcomp.log", ec);
    if (ec) jobcomp_start_ = 0;
  }
  uintmax_t jobcomp_start_ = 0;  ///< the job-completion log's size when the test began

  /// `squeue` lines "ID|STATE|..." for the given comma-separated job ids (or the user's jobs).
  std::string squeue(const std::string& jobs = "") {
    std::vector<std::string> argv = {which("squeue"), "--noheader", "--states=all", "--Format=JobID:|,State:|,Comment:|"};
    if (!jobs.empty()) argv.push_back("--jobs=" + jobs);
    return run_command(argv, 30).out;
  }
  /// Ids of this test cache's jobs that are still pending or running.
  std::vector<std::string> active_jobs() {
    std::vector<std::string> ids;
    for (const auto& r : journal().events("", "slurm_submit")) {
      std::string line = squeue(r.value("job", ""));
      if (line.find("|PENDING|") != std::string::npos || line.find("|RUNNING|") != std::string::npos ||
          line.find("|COMPLETING|") != std::string::npos)
        ids.push_back(r.value("job", ""));
    }
    return ids;
  }
  /// Lines of the job-completion log naming this key's job name, by end
  /// state (jobs that ended since the test began: keys repeat across tests).
  std::map<std::string, int> jobcomp_states(const std::string& key) {
    std::map<std::string, int> r;
    const std::string all = read_file(k_cluster / "jobcomp.log");
    std::istringstream in(all.substr(std::min<size_t>(all.size(), jobcomp_start_)));
    std::string line;
    const std::string name = "Name=qsweep-" + key.substr(0, 16) + " ";
    std::smatch m;
    static const std::regex state_re(R"(JobState=(\S+))");
    while (std::getline(in, line))
      if (line.find(name) != std::string::npos && std::regex_search(line, m, state_re)) ++r[m[1]];
    return r;
  }
  /// scancels the first job of node `slow` once it runs.
  void scancel_when_running(Process* p) {
    std::string job;
    ASSERT_TRUE(wait_until(
        [&] {
          for (const auto& r : journal().events("", "node_start"))
            if (r.value("node", "") == "slow") job = r.value("job", "");
          return !job.empty();
        },
        60))
        << p->err_so_far();
    ProcResult c = run_command({which("scancel"), job}, 30);
    ASSERT_EQ(c.exit_code, 0) << describe(c);
  }
  ProcResult slurm_run(std::vector<std::string> extra = {}, double timeout_s = 180) {
    std::vector<std::string> args = {"--executor", "slurm", "--slurm-poll", "0.2", "--slurm-poll-max", "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run(args, timeout_s);
  }
};

// gen -> work[a|b|c] (each sleeps) -> sum.
const char* k_sweep = R"(version: 1
name: slurm-sweep
recipes: {a: {n: 1}, b: {n: 2}, c: {n: 3}}
stages:
  - name: gen
    kind: command
    params:
      argv: [sh, -c, 'echo gen > ${output_dir}/g.txt']
      outputs: [g.txt]
  - name: work
    kind: command
    matrix: {recipe: "*"}
    inputs: {g: gen}
    resources: {threads: 1, memory: 200MiB}
    params:
      argv: [sh, -c, 'sleep @SLEEP@; cat ${inputs.g}/g.txt > ${output_dir}/w.txt; echo ${recipe.n} >> ${output_dir}/w.txt']
      outputs: [w.txt]
  - name: sum
    kind: command
    inputs: {w: ["work[*]"]}
    params:
      argv: [sh, -c, 'for d in ${inputs.w}; do cat $d/w.txt; done > ${output_dir}/s.txt']
      outputs: [s.txt]
)";

TEST_F(SlurmTest, SweepRunsAsJobsWithTheLocalExecutorsKeysAndResults) {
  write_exp(k_sweep, {{"SLEEP", "1"}});
  ProcResult r = slurm_run({"-v"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("slurm-sweep: 5 done, 0 cached, 0 failed"));
  EXPECT_THAT(r.err, HasSubstr("5 job(s) submitted"));
  Journal j = journal();
  EXPECT_EQ(j.events(j.last_run(), "slurm_submit").size(), 5u);
  EXPECT_EQ(j.events(j.last_run(), "slurm_probe").size(), 1u);
  // exec-node journaled each node with its job and host.
  for (const auto& rec : j.events(j.last_run(), "node_done")) EXPECT_FALSE(rec.value("job", "").empty()) << rec;
  const auto slurm_keys = object_keys(cache());
  const std::string sum = read_file(cache() / "objects" / j.keys()["sum"].substr(0, 2) / j.keys()["sum"] / "out" / "s.txt");
  EXPECT_EQ(sum, "gen\n1\ngen\n2\ngen\n3\n");

  // qsweep status shows each node's job and its Slurm state.
  ProcResult st = qsweep({"status", "-n", "1"});
  ASSERT_EQ(st.exit_code, 0) << describe(st);
  for (const auto& rec : j.events(j.last_run(), "slurm_submit"))
    EXPECT_THAT(st.out, HasSubstr(rec.value("node", "") + "  [job " + rec.value("job", "") + " COMPLETED]")) << st.out;

  // The local executor computes the same keys and the same files.
  const fs::path local_cache = path("local-cache");
  ProcResult loc = qsweep({"run", exp().string(), "--progress", "none", "--cache", local_cache.string()});
  ASSERT_EQ(loc.exit_code, 0) << describe(loc);
  EXPECT_EQ(object_keys(local_cache), slurm_keys);
  const std::string k = j.keys()["sum"];
  EXPECT_EQ(read_file(local_cache / "objects" / k.substr(0, 2) / k / "out" / "s.txt"), sum);

  // A rerun submits nothing.
  ProcResult again = slurm_run();
  ASSERT_EQ(again.exit_code, 0) << describe(again);
  EXPECT_THAT(again.err, HasSubstr("all 5 node(s) cached"));

  // `cache gc` drops the plans and job folders of keys no experiment refers to.
  EXPECT_EQ(list_dir(cache() / "plans").size(), 5u);
  write_exp(k_sweep, {{"SLEEP", "2"}});  // work[*] and sum get new keys; gen keeps its own
  ProcResult gc = qsweep({"cache", "gc", "--keep", exp().string()});
  ASSERT_EQ(gc.exit_code, 0) << describe(gc);
  EXPECT_THAT(gc.out, HasSubstr("8 node plan(s) / Slurm job folder(s)"));
  EXPECT_EQ(list_dir(cache() / "plans"), std::vector<std::string>{j.keys()["gen"] + ".json"});
}

TEST_F(SlurmTest, KilledRunnerIsRestartedAdoptsItsJobsAndNothingRunsTwice) {
  write_exp(k_sweep, {{"SLEEP", "4"}});
  auto p = start_run({"--executor", "slurm", "--slurm-poll", "0.2", "--slurm-poll-max", "1"});
  // Wait until the work jobs run, then SIGKILL the runner (its jobs live on in Slurm).
  ASSERT_TRUE(wait_until([&] { return journal().events("", "node_start").size() >= 2; }, 60)) << p->err_so_far();
  p->kill_session();
  p->wait(10);
  std::string first_run = journal().last_run();
  const size_t submitted = journal().events(first_run, "slurm_submit").size();
  EXPECT_EQ(submitted, 5u);
  EXPECT_FALSE(active_jobs().empty());  // work[c] and sum at least are still queued
  // Lose the journal's submission records too, as if the runner had died
  // between sbatch and writing them: the restarted runner finds its jobs by
  // their comment (cache id + key) in squeue.
  {
    std::istringstream in(read_file(cache() / "journal.jsonl"));
    std::string line, kept;
    while (std::getline(in, line))
      if (line.find("\"slurm_submit\"") == std::string::npos) kept += line + "\n";
    write_file(cache() / "journal.jsonl", kept);
  }

  ProcResult r = slurm_run({"-v"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("adopted Slurm job"));
  Journal j = journal();
  EXPECT_GE(j.events(j.last_run(), "slurm_adopt").size(), 1u);
  // No node ran twice: one node_start per key over both runs, one COMPLETED
  // job per key in Slurm's job-completion log, and no other job of it.
  std::map<std::string, int> starts;
  for (const auto& rec : j.events("", "node_start")) ++starts[rec.value("node", "")];
  for (const char* n : {"gen", "work[a]", "work[b]", "work[c]", "sum"}) {
    EXPECT_EQ(starts[n], 1) << n;
    const auto states = jobcomp_states(j.keys()[n]);
    EXPECT_EQ(states, (std::map<std::string, int>{{"COMPLETED", 1}})) << n;
  }
  const std::string k = j.keys()["sum"];
  EXPECT_EQ(read_file(cache() / "objects" / k.substr(0, 2) / k / "out" / "s.txt"), "gen\n1\ngen\n2\ngen\n3\n");
}

TEST_F(SlurmTest, MemoryOverrunIsReportedWithSlurmsReason) {
  write_exp(R"(version: 1
name: slurm-mem
stages:
  - name: hog
    kind: command
    resources: {threads: 1, memory: 100MiB}
    params:
      argv: [perl, -e, '$x = "a" x 400000000; sleep 4; open(F, ">", "$ARGV[0]/h.txt")', '${output_dir}']
      outputs: [h.txt]
)");
  ProcResult r = slurm_run();
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("ended OUT_OF_MEMORY"));
  EXPECT_THAT(r.err, HasSubstr("--mem=100M"));
  EXPECT_THAT(r.err, HasSubstr("raise the stage's resources.memory"));
  ProcResult st = qsweep({"status", "-n", "1"});
  EXPECT_THAT(st.out, HasSubstr("OUT_OF_MEMORY]")) << st.out;
}

const char* k_cancel = R"(version: 1
name: slurm-cancel
stages:
  - name: slow
    kind: command
    @SLURM@
    params:
      # The first job sleeps (and is scancelled); a resubmitted one finishes.
      argv: [sh, -c, 'if [ -e @DIR@/mark ]; then echo ok > ${output_dir}/s.txt; else touch @DIR@/mark; sleep 60; fi']
      outputs: [s.txt]
  - name: after
    kind: command
    inputs: {s: slow}
    params:
      argv: [sh, -c, 'cat ${inputs.s}/s.txt > ${output_dir}/a.txt']
      outputs: [a.txt]
)";

TEST_F(SlurmTest, ScancelFromOutsideFailsTheNodeWithSlurmsReason) {
  write_exp(k_cancel, {{"SLURM", ""}});
  auto p = start_run({"--executor", "slurm", "--slurm-poll", "0.2", "--slurm-poll-max", "1"});
  scancel_when_running(p.get());
  ProcResult r = p->wait(60);
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("ended CANCELLED"));
  EXPECT_THAT(r.err, HasSubstr("cancelled outside qsweep (scancel"));
  EXPECT_THAT(r.err, HasSubstr("skipped after: upstream slow FAILED"));
}

TEST_F(SlurmTest, ScancelledNodeIsResubmittedWhenTheStageSaysSo) {
  write_exp(k_cancel, {{"SLURM", "slurm: {retry_on: [CANCELLED], resubmits: 1}"}});
  auto p = start_run({"--executor", "slurm", "--slurm-poll", "0.2", "--slurm-poll-max", "1"});
  scancel_when_running(p.get());
  ProcResult r = p->wait(90);
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("slurm-cancel: 2 done"));
  Journal j = journal();
  EXPECT_EQ(j.events(j.last_run(), "node_retry").size(), 1u);
  EXPECT_EQ(jobcomp_states(j.keys()["slow"]), (std::map<std::string, int>{{"CANCELLED", 1}, {"COMPLETED", 1}}));
}

TEST_F(SlurmTest, SecondCtrlCCancelsTheRunsJobs) {
  write_exp(k_sweep, {{"SLEEP", "60"}});
  auto p = start_run({"--executor", "slurm", "--slurm-poll", "0.2", "--slurm-poll-max", "1"});
  ASSERT_TRUE(wait_until([&] { return journal().events("", "node_start").size() >= 2; }, 60)) << p->err_so_far();
  p->signal(SIGINT);
  EXPECT_TRUE(wait_until([&] { return p->err_so_far().find("no more Slurm jobs are submitted") != std::string::npos; }, 10));
  EXPECT_FALSE(active_jobs().empty());  // the first Ctrl-C leaves queued and running jobs alone
  p->signal(SIGINT);
  ProcResult r = p->wait(60);
  EXPECT_EQ(r.exit_code, 130) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("cancelling this run's Slurm jobs (scancel)"));
  EXPECT_TRUE(wait_until([&] { return active_jobs().empty(); }, 30)) << squeue();
}

TEST_F(SlurmTest, ClearErrorsWithoutSbatchAndForAMissingPartition) {
  write_exp(k_sweep, {{"SLEEP", "0"}});
  ProcResult r = run_command({qsweep_bin().string(), "run", exp().string(), "--executor", "slurm", "--cache",
                              cache().string()},
                             60, dir_.path(), {{"PATH", "/nonexistent"}});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("'sbatch' was not found: --executor slurm needs the Slurm client commands"));

  r = slurm_run({"--slurm-partition", "nope"});
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("partition 'nope' does not exist on this cluster"));
  EXPECT_THAT(r.err, HasSubstr("partitions: debug, gpu"));
  EXPECT_TRUE(object_keys(cache()).empty());
}

TEST_F(SlurmTest, CacheTheComputeNodesCannotSeeIsCaughtByTheProbe) {
  if (geteuid() != 0) GTEST_SKIP() << "hiding a directory from slurmd needs root (unshare + mount)";
  // A second cluster whose slurmd sees an empty tmpfs where this test's directory is.
  const fs::path cl = path("hidden-cluster");
  ProcResult up = run_command({which("bash"), (source_dir() / "scripts" / "slurm" / "local_cluster.sh").string(), "start",
                               cl.string(), "--hide", path("work").string()},
                              60);
  struct Stop {
    fs::path cl;
    ~Stop() {
      run_command({which("bash"), (source_dir() / "scripts" / "slurm" / "local_cluster.sh").string(), "stop", cl.string()}, 60);
    }
  } stop{cl};
  if (up.exit_code != 0 && up.err.find("unshare") != std::string::npos)
    GTEST_SKIP() << "unshare is not permitted here: " << up.err;
  ASSERT_EQ(up.exit_code, 0) << describe(up);
  fs::create_directories(path("work"));
  write_exp(k_sweep, {{"SLEEP", "0"}});
  ProcResult r = run_command({qsweep_bin().string(), "run", exp().string(), "--executor", "slurm", "--slurm-poll",
                              "0.2", "--progress", "lines", "--cache", path("work/cache").string()},
                             120, dir_.path(), {{"SLURM_CONF", (cl / "slurm.conf").string()}});
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("compute nodes do not see the cache " + path("work/cache").string()));
  EXPECT_THAT(r.err, HasSubstr("put the cache on a filesystem shared with the compute nodes"));
}

TEST_F(SlurmTest, QuickstartThroughSlurmMatchesTheLocalRun) {
  const fs::path data = shared_data_dir();
  if (data.empty())
    GTEST_SKIP() << "../shared/data (the local mirror of the Hugging Face Hub files) is absent next to the "
                    "source tree; the quickstart would download from the network";
  const fs::path yaml = source_dir() / "experiments" / "quickstart.yaml";
  const std::map<std::string, std::string> env = {{"QSWEEP_HUB_MIRROR", data.string()}};
  ProcResult s = run_command({qsweep_bin().string(), "run", yaml.string(), "--progress", "lines", "--executor",
                              "slurm", "--slurm-poll", "0.5", "--slurm-poll-max", "2", "--cache",
                              path("slurm-cache").string()},
                             290, dir_.path(), env);
  ASSERT_EQ(s.exit_code, 0) << describe(s);
  ProcResult l = run_command({qsweep_bin().string(), "run", yaml.string(), "--progress", "none", "--cache",
                              path("local-cache").string()},
                             290, dir_.path(), env);
  ASSERT_EQ(l.exit_code, 0) << describe(l);
  // Same artifact keys, same printed table (numbers, rows, columns).
  EXPECT_EQ(object_keys(path("slurm-cache")), object_keys(path("local-cache")));
  EXPECT_FALSE(object_keys(path("slurm-cache")).empty());
  const auto table = [](const std::string& out) { return out.substr(out.find("\ntables\n")); };
  std::string ts = table(s.out), tl = table(l.out);
  // The files' folder differs by cache; the table itself must not.
  ts = ts.substr(0, ts.find("\nFiles ("));
  tl = tl.substr(0, tl.find("\nFiles ("));
  EXPECT_EQ(ts, tl);

  // A managed inference server (serve_stories' `http` backend: a `qsweep
  // serve` the infer node starts) runs inside the node's Slurm job.
  const std::string node = "infer[stories260K,http,gsm8k]";
  ProcResult h = run_command({qsweep_bin().string(), "run", (source_dir() / "experiments" / "serve_stories.yaml").string(),
                              node, "--progress", "lines", "--executor", "slurm", "--slurm-poll", "0.5", "--cache",
                              path("slurm-cache").string()},
                             290, dir_.path(), env);
  ASSERT_EQ(h.exit_code, 0) << describe(h);
  json done = read_journal(path("slurm-cache")).find("", "node_done", node);
  ASSERT_FALSE(done.is_null()) << describe(h);
  const std::string job = done.value("job", "");
  ASSERT_FALSE(job.empty()) << done;
  const std::string log = read_file(path("slurm-cache") / "slurm" / done.value("key", "") / (job + ".log"));
  EXPECT_THAT(log, HasSubstr("starting inference server: ")) << log;
  EXPECT_THAT(log, HasSubstr(" serve ")) << log;
}

}  // namespace
}  // namespace qsweep::testing
