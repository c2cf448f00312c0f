#include "pipeline/cli/slurm_commands.h"

#include <stdlib.h>

#include <filesystem>

#include "model/util/text_file.h"
#include "stages/process.h"

namespace qsweep::cli {

namespace fs = std::filesystem;

slurm::CommandRunner make_slurm_command_runner() {
  return [](const std::vector<std::string>& argv, std::string* out, std::string* err) -> int {
    out->clear();
    err->clear();
    char tmpl[] = "/tmp/qsweep-slurm-XXXXXX";
    if (!mkdtemp(tmpl)) {
      *err = "cannot create a temporary directory in /tmp";
      return -1;
    }
    const fs::path dir = tmpl;
    ProcessSpec spec;
    spec.argv = argv;
    spec.stdout_path = dir / "out";
    spec.stderr_path = dir / "err";
    spec.timeout_s = 120;
    ProcessResult r;
    std::string e;
    const bool started = run_process(spec, nullptr, nullptr, &r, &e);
    try {
      *out = model::read_text_file(spec.stdout_path);
      *err = model::read_text_file(spec.stderr_path);
    } catch (const std::exception&) {
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
    if (!started) {
      *err = e;
      return -1;
    }
    if (r.timed_out) {
      *err = argv[0] + " did not answer within 120 s" + (err->empty() ? "" : ": " + *err);
      return 124;
    }
    return r.exit_code < 0 ? 128 + r.term_signal : r.exit_code;
  };
}

}  // namespace qsweep::cli
