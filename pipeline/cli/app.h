#pragma once
// The qsweep command line: parses argv, dispatches to cmd_*.

namespace qsweep::cli {

/// Runs the CLI; returns the process exit code (session.h k_exit_*).
int run_cli(int argc, char** argv);

}  // namespace qsweep::cli
