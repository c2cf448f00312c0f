#pragma once
// The Slurm client commands (sbatch, squeue, sacct, scancel, scontrol, sinfo)
// run through stages/process.h, for the Slurm executor (which only sees a
// CommandRunner and so stays free of process code).

#include "pipeline/slurm/slurm_executor.h"

namespace qsweep::cli {

/// Runs argv (PATH lookup) with a 120 s timeout; stdout/stderr captured.
slurm::CommandRunner make_slurm_command_runner();

}  // namespace qsweep::cli
