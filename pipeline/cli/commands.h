#pragma once
// One function per qsweep sub-command; app.cpp parses the command line.

#include <cstdint>
#include <string>
#include <vector>

#include "pipeline/cli/session.h"

namespace qsweep::cli {

struct RunArgs {
  std::string experiment;
  std::vector<std::string> targets;
  int jobs = 0;
  bool keep_going = false;
  std::string progress = "auto";  ///< auto | live | lines | none
  bool verbose = false;
  int threads = 0, gpus = -1, api = 0;  ///< override limits (0 / -1 = unset)
  std::string executor = "local";       ///< local | slurm
  // --slurm-*: defaults for every job (a stage's `slurm:` block overrides them).
  std::string slurm_partition, slurm_account, slurm_qos, slurm_constraint, slurm_time;
  std::vector<std::string> slurm_sbatch_args;
  double slurm_poll = 2, slurm_poll_max = 30;  ///< polling interval bounds, seconds
  bool slurm_no_probe = false;
};
int cmd_run(const GlobalOptions& g, const RunArgs& a);

/// `qsweep exec-node --cache DIR KEY`: what a Slurm job runs.
struct ExecNodeArgs {
  std::string key;
  int threads = 0;  ///< 0 = the job's allocation ($SLURM_CPUS_PER_TASK) or the machine
};
int cmd_exec_node(const GlobalOptions& g, const ExecNodeArgs& a);

struct ReproduceArgs {
  std::string manifest;
  bool plan = false;       ///< only show what the reproduction needs
  bool published = false;  ///< the findings' checks on the published numbers
  std::string out;         ///< report folder (default reproduction/<manifest name>)
  RunArgs run;             ///< jobs, threads, progress, ...
};
/// Exit 0 when every published cell matches or is within noise, 1 otherwise.
int cmd_reproduce(const GlobalOptions& g, const ReproduceArgs& a);

int cmd_plan(const GlobalOptions& g, const std::string& experiment,
             const std::vector<std::string>& targets, bool json);
/// The plan of an opened session (targets: node indices, empty = all).
int print_plan(const Session& s, const std::vector<int>& targets, bool json);
int cmd_explain(const GlobalOptions& g, const std::string& experiment, const std::string& node);
int cmd_dag(const GlobalOptions& g, const std::string& experiment, const std::string& format);
int cmd_show(const GlobalOptions& g, const std::string& what, const std::string& experiment, bool json);
int cmd_status(const GlobalOptions& g, const std::string& experiment, int runs, bool json);
int cmd_schema();

/// `qsweep model ...` arguments.
struct ModelArgs {
  std::string dir;  ///< a model folder (HF layout, or an imported llama2.c model)
  std::string prompt, context, continuation, file;
  int max_tokens = 64, threads = 0, max_length = 0;
  double temperature = 0;
  uint64_t seed = 0;
  bool bos = false, verbose = false;
};
int cmd_model_import(const std::string& bin, const std::string& tok, const std::string& out);
/// A model folder with random weights for a config.json (benchmarks, GPU runs).
int cmd_model_random(const std::string& config, const std::string& out, uint64_t seed, double stdev,
                     const std::string& dtype, const std::string& tokenizer);
int cmd_model_generate(const ModelArgs& a);
int cmd_model_score(const ModelArgs& a);
int cmd_model_perplexity(const ModelArgs& a);
/// KL divergence / perplexities of quant_dir vs a.dir over the documents of
/// a.file (.jsonl/.json with "text", or blank-line separated text).
int cmd_model_kl(const ModelArgs& a, const std::string& quant_dir, const std::string& json_out);

/// `qsweep serve` arguments.
struct ServeArgs {
  std::string dir;                  ///< model folder (fp32 or quantized)
  std::string host = "127.0.0.1";
  int port = 8000;                  ///< 0 = any free port (printed)
  std::string served_name;          ///< model id clients use (default: dir)
  int threads = 0;                  ///< CPU threads (0 = all)
  int max_length = 0;               ///< context window (0 = the model's)
  int max_concurrent = 8;           ///< requests computed at once
  int max_batch_tokens = 4096;      ///< prompt scoring shares forward passes up to this (0 = one each)
  std::string chat_template = "auto";
  std::string api_key_env;          ///< require "Authorization: Bearer $VAR"
  std::string device = "cpu";       ///< cpu | cuda (the GPU engine)
  std::string dtype = "float32";    ///< cuda: float32 | bfloat16 | float16
};
int cmd_serve(const ServeArgs& a);

int cmd_cache_ls(const GlobalOptions& g, bool json);
int cmd_cache_verify(const GlobalOptions& g, bool delete_corrupt);
int cmd_cache_gc(const GlobalOptions& g, const std::vector<std::string>& keep, bool dry_run);

}  // namespace qsweep::cli
