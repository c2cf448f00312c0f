#pragma once
// The `command` stage: runs an external program with a templated argv and
// caches what it writes into its output folder, like any other stage.
//
//   - name: header
//     kind: command
//     inputs: {ckpt: "fetch[${model}]", script: "file:scripts/header.sh"}
//     params:
//       argv: [sh, "${inputs.script}", "${inputs.ckpt}/model.bin", "${output_dir}/config.json"]
//       outputs: [config.json]
//
// Run-time placeholders (in argv, env values and cwd):
//   ${output_dir}       absolute path of the node's output folder
//   ${inputs.NAME}      the input's path; a list input gives its paths joined
//                       by spaces, or one argv element per item when the argv
//                       element is exactly "${inputs.NAME}"
//   ${inputs.NAME.key}  the input's key (a list: keys, expanded the same way)
//   ${params.PATH}      a resolved param, e.g. ${params.vars.lr}
//   ${qsweep}           the running qsweep executable (e.g. for `${qsweep} model import`)
//   ${node} ${key} ${threads}
//
// The child's environment: the parent's, plus QSWEEP_OUTPUT_DIR, QSWEEP_NODE,
// QSWEEP_KEY, QSWEEP_THREADS, OMP_NUM_THREADS (= threads), plus `env`.
// stdout and stderr are captured into stdout.txt and stderr.txt of the output
// folder; each stdout line goes to the progress log, except progress lines:
//
//   qsweep-progress: DONE/TOTAL [UNIT]     (TOTAL 0 = unknown)
//
// Exit conventions: 0 = success (every declared output must exist);
// 75 (EX_TEMPFAIL from sysexits.h) = a transient failure, asks for a retry
// (RetryableError, up to the node's `retries`); any other code fails the node
// with the last lines of stderr. On cancel the program gets SIGINT (it may
// checkpoint and exit: if it still exits 0 with its outputs, the node is done
// and published), then SIGKILL on a second cancel.

#include <string>
#include <vector>

#include "pipeline/stage.h"
#include "stages/process.h"

namespace qsweep {

/// Exit code by which a command asks to be retried (sysexits.h EX_TEMPFAIL).
constexpr int k_exit_retry = 75;

class CommandStage : public Stage {
 public:
  /// `runner` launches the program; tests may pass a fake.
  explicit CommandStage(ProcessRunner runner = run_process) : runner_(std::move(runner)) {}

  std::string kind() const override { return "command"; }
  int64_t version() const override { return 1; }
  std::string description() const override;
  std::vector<ParamSpec> params() const override;
  std::vector<std::string> runtime_placeholders() const override;
  std::string check_params(const nlohmann::json& params) const override;
  void run(StageContext& ctx) const override;

 private:
  ProcessRunner runner_;
};

/// Parses "qsweep-progress: DONE/TOTAL [UNIT]"; false for any other line.
bool parse_progress_line(const std::string& line, uint64_t* done, uint64_t* total,
                         std::string* unit);

}  // namespace qsweep
