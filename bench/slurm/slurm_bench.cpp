// Submission and monitoring overhead of the Slurm executor (issue #9) on a
// real cluster: a sweep of N trivial `command` nodes (N/2 `a[i]`, each
// feeding one `b[i]`, so half the jobs wait on an afterok dependency) run by
// `qsweep run --executor slurm` to completion.
//
// Measured:
//   plan + submit   process start -> the last node's sbatch (journal times)
//   total           process start -> exit
//   monitoring      every squeue / sacct / scontrol call, logged by wrappers
//                   put first in PATH: count, and the smallest gap between
//                   two calls (>= the polling interval means at most one call
//                   per interval, whatever the number of jobs)
//
//   slurm_bench [N=1000] [POLL_S=1]
// Uses $SLURM_CONF when set; otherwise starts a one-host cluster with
// scripts/slurm/local_cluster.sh in a temporary directory (needs root).

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;

namespace {

double now_s() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

// "2026-11-26T03:44:10.432Z" -> seconds since the epoch.
double iso_to_s(const std::string& t) {
  std::tm tm{};
  strptime(t.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  double ms = t.size() > 20 ? std::atof(t.substr(19).c_str()) : 0;  // ".432"
  return static_cast<double>(timegm(&tm)) + ms;
}

int sh(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

std::string which(const std::string& name) {
  std::stringstream ss(std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin");
  std::string d;
  while (std::getline(ss, d, ':'))
    if (!d.empty() && access((fs::path(d) / name).c_str(), X_OK) == 0) return (fs::path(d) / name).string();
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 1000;
  const double poll = argc > 2 ? std::atof(argv[2]) : 1.0;
  const fs::path src = QSWEEP_SOURCE_DIR;
  const fs::path qsweep = QSWEEP_BIN;
  const fs::path dir = fs::temp_directory_path() / ("qsweep-slurm-bench-" + std::to_string(getpid()));
  fs::create_directories(dir);

  bool own_cluster = false;
  if (!std::getenv("SLURM_CONF")) {
    const fs::path cl = dir / "cluster";
    if (sh("bash '" + (src / "scripts/slurm/local_cluster.sh").string() + "' start '" + cl.string() + "' >/dev/null") != 0) {
      std::fprintf(stderr, "slurm_bench: could not start a test cluster (see %s)\n", cl.c_str());
      return 1;
    }
    setenv("SLURM_CONF", (cl / "slurm.conf").c_str(), 1);
    own_cluster = true;
  }

  // Wrappers that log each monitoring call (command + time) and run the real one.
  const fs::path wrap = dir / "bin", log = dir / "calls.log";
  fs::create_directories(wrap);
  for (const char* c : {"squeue", "sacct", "scontrol"}) {
    const std::string real = which(c);
    std::ofstream f(wrap / c);
    // `--version` and `show config` are qsweep's one-time check at start, not monitoring.
    f << "#!/bin/sh\ncase \"$1\" in --version|show) ;; *) echo \"" << c << " $(date +%s.%N)\" >> '" << log.string()
      << "' ;; esac\nexec '" << real << "' \"$@\"\n";
    f.close();
    fs::permissions(wrap / c, fs::perms::owner_all);
  }
  setenv("PATH", (wrap.string() + ":" + std::getenv("PATH")).c_str(), 1);

  {
    std::ofstream f(dir / "exp.yaml");
    f << "version: 1\nname: slurm-bench\nmodels:\n";
    for (int i = 0; i < n / 2; ++i) f << "  m" << i << ": {i: " << i << "}\n";
    f << "stages:\n"
         "  - name: a\n    kind: command\n    matrix: {model: '*'}\n    resources: {threads: 1, memory: 64MiB}\n"
         "    params: {argv: [sh, -c, 'echo ${model.i} > ${output_dir}/x'], outputs: [x]}\n"
         "  - name: b\n    kind: command\n    matrix: {model: '*'}\n    inputs: {a: 'a[${model}]'}\n"
         "    resources: {threads: 1, memory: 64MiB}\n"
         "    params: {argv: [sh, -c, 'cat ${inputs.a}/x > ${output_dir}/y'], outputs: [y]}\n";
  }
  char pbuf[32];
  std::snprintf(pbuf, sizeof pbuf, "%g", poll);
  const double t0 = now_s();
  const int rc = sh("'" + qsweep.string() + "' run '" + (dir / "exp.yaml").string() + "' --cache '" +
                    (dir / "cache").string() + "' --executor slurm --slurm-poll " + pbuf + " --slurm-poll-max " +
                    std::to_string(std::max(poll, 5.0)) + " --progress none -v 2> '" + (dir / "run.err").string() + "'");
  const double t_end = now_s();

  // The journal: submissions and the run's own counters.
  double last_submit = 0, first_submit = 1e300;
  size_t submits = 0;
  nlohmann::json stats;
  {
    std::ifstream j(dir / "cache" / "journal.jsonl");
    std::string line;
    while (std::getline(j, line)) {
      auto r = nlohmann::json::parse(line, nullptr, false);
      if (r.is_discarded()) continue;
      const std::string ev = r.value("event", "");
      if (ev == "slurm_submit") {
        double t = iso_to_s(r.value("t", ""));
        last_submit = std::max(last_submit, t);
        first_submit = std::min(first_submit, t);
        ++submits;
      } else if (ev == "run_end") {
        stats = r.value("slurm", nlohmann::json());
      }
    }
  }
  // Monitoring calls, from the wrappers' log.
  std::map<std::string, int> calls;
  std::vector<double> times;
  {
    std::ifstream l(log);
    std::string c;
    double t;
    while (l >> c >> t) {
      ++calls[c];
      times.push_back(t);
    }
  }
  double min_gap = 1e300;
  for (size_t i = 1; i < times.size(); ++i) min_gap = std::min(min_gap, times[i] - times[i - 1]);

  std::printf("slurm_bench: %d nodes (%d a[i] + %d b[i] after a[i]), polling from %g s, exit %d\n", n, n / 2, n / 2,
              poll, rc);
  std::printf("  plan + submit (start -> last sbatch): %.2f s   [%zu sbatch; first at +%.2f s]\n", last_submit - t0,
              submits, first_submit - t0);
  std::printf("  sweep to completion: %.1f s\n", t_end - t0);
  std::printf("  monitoring calls: squeue %d, sacct %d, scontrol %d over %s polling intervals\n",
              calls["squeue"], calls["sacct"], calls["scontrol"], stats.is_object() ? std::to_string(stats.value("polls", 0)).c_str() : "?");
  std::printf("  smallest gap between two monitoring calls: %.3f s\n", min_gap);
  std::printf("  qsweep's own counters: %s\n", stats.dump().c_str());
  std::printf("  files in %s\n", dir.c_str());
  if (own_cluster)
    sh("bash '" + (src / "scripts/slurm/local_cluster.sh").string() + "' stop '" + (dir / "cluster").string() + "' >/dev/null");
  return rc;
}
