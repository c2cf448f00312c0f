#include "pipeline/cli/app.h"

#include <cstdio>

#include <CLI/CLI.hpp>

#include "pipeline/cli/commands.h"
#include "qsweep_version.h"

namespace qsweep::cli {

namespace {

// --executor and --slurm-*, shared by `run` and `reproduce`.
void add_executor_options(CLI::App* sub, RunArgs& ra) {
  sub->add_option("--executor", ra.executor, "local (this machine, default) | slurm (one Slurm job per node; docs/slurm.md)")
      ->check(CLI::IsMember({"local", "slurm"}));
  sub->add_option("--slurm-partition", ra.slurm_partition, "sbatch --partition for every job (a stage's slurm.partition wins)");
  sub->add_option("--slurm-account", ra.slurm_account, "sbatch --account");
  sub->add_option("--slurm-qos", ra.slurm_qos, "sbatch --qos");
  sub->add_option("--slurm-constraint", ra.slurm_constraint, "sbatch --constraint");
  sub->add_option("--slurm-time", ra.slurm_time, "sbatch --time (MINUTES, HH:MM:SS, D-HH:MM:SS)");
  sub->add_option("--slurm-sbatch-arg", ra.slurm_sbatch_args, "an extra sbatch argument (repeatable), e.g. --slurm-sbatch-arg=--exclusive")
      ->allow_extra_args(false);
  sub->add_option("--slurm-poll", ra.slurm_poll, "seconds between squeue calls at first (default 2; doubles while nothing changes)");
  sub->add_option("--slurm-poll-max", ra.slurm_poll_max, "longest interval between squeue calls (default 30)");
  sub->add_flag("--slurm-no-probe", ra.slurm_no_probe, "skip the probe job that checks compute nodes see the cache");

}

}  // namespace

int run_cli(int argc, char** argv) {
  CLI::App app{"qsweep " QSWEEP_VERSION
               ": run quantization x benchmark sweeps as a cached, resumable DAG of stages"};
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the sub-command
  app.set_version_flag("--version", QSWEEP_VERSION);
  GlobalOptions g;
  app.add_option("--cache", g.cache_dir, "cache directory (default: $QSWEEP_CACHE, the experiment's `cache:`, .qsweep/cache)");
  app.add_option("--set", g.sets, "override a variable: --set vars.NAME=VALUE (repeatable)");

  RunArgs ra;
  auto* run = app.add_subcommand("run", "run every node that is not cached yet (Ctrl-C: stop after running stages; twice: abort)");
  run->add_option("experiment", ra.experiment, "experiment YAML")->required();
  run->add_option("targets", ra.targets, "only these nodes (ids, stage names or globs) and what they need");
  run->add_option("-j,--jobs", ra.jobs, "nodes in flight at once (default: the thread limit)");
  run->add_flag("-k,--keep-going", ra.keep_going, "after a failure, still run everything that does not depend on it");
  run->add_option("--progress", ra.progress, "auto | live | lines | none")->check(CLI::IsMember({"auto", "live", "lines", "none"}));
  run->add_flag("-v,--verbose", ra.verbose, "print each stage's output lines");
  run->add_option("--threads", ra.threads, "limit CPU threads (overrides limits.threads)");
  run->add_option("--gpus", ra.gpus, "GPU slots (overrides limits.gpu and detection)");
  run->add_option("--api", ra.api, "concurrent API calls (overrides limits.api)");
  add_executor_options(run, ra);

  ExecNodeArgs xa;
  auto* exec_node = app.add_subcommand("exec-node", "run one node from its plan in the cache (what a Slurm job of `run --executor slurm` runs)");
  exec_node->add_option("key", xa.key, "the node's key (its plan is <cache>/plans/KEY.json)")->required();
  exec_node->add_option("--threads", xa.threads, "CPU threads (default: $SLURM_CPUS_PER_TASK or all)");

  ReproduceArgs rp;
  auto* repro = app.add_subcommand(
      "reproduce", "run a manifest's experiment and compare its table with the published numbers");
  repro->add_option("manifest", rp.manifest, "manifest YAML (e.g. experiments/lee2024/manifest.yaml)")->required();
  repro->add_flag("--plan", rp.plan, "only show the sweep the reproduction needs");
  repro->add_flag("--published", rp.published, "check the findings on the published numbers themselves");
  repro->add_option("-o,--out", rp.out, "report folder (default: reproduction/<manifest name>)");
  repro->add_option("-j,--jobs", rp.run.jobs, "nodes in flight at once");
  repro->add_option("--threads", rp.run.threads, "limit CPU threads");
  repro->add_option("--progress", rp.run.progress, "auto | live | lines | none")
      ->check(CLI::IsMember({"auto", "live", "lines", "none"}));
  repro->add_flag("-k,--keep-going", rp.run.keep_going, "after a failure, run what does not depend on it");
  add_executor_options(repro, rp.run);

  std::string exp, node, what, format = "dot";
  std::vector<std::string> targets, keep;
  bool json = false, del = false, dry = false;
  int runs = 5;
  auto* plan = app.add_subcommand("plan", "show every node with its state: cached / to-run / blocked");
  plan->add_option("experiment", exp, "experiment YAML")->required();
  plan->add_option("targets", targets, "only these nodes and what they need");
  plan->add_flag("--json", json, "machine-readable output");

  auto* explain = app.add_subcommand("explain", "why a node is (not) cached: its key fields, and what differs from the artifact it had before");
  explain->add_option("experiment", exp, "experiment YAML")->required();
  explain->add_option("node", node, "node id, e.g. 'quantize[stories260K,gptq-w4g32]'")->required();

  auto* dag = app.add_subcommand("dag", "print the DAG as Graphviz dot or Mermaid, colored by state");
  dag->add_option("experiment", exp, "experiment YAML")->required();
  dag->add_option("--format", format, "dot | mermaid")->check(CLI::IsMember({"dot", "mermaid"}));

  auto* show = app.add_subcommand("show", "print an artifact's manifest: inputs, params, files, timings");
  show->add_option("what", what, "node id (its latest artifact) or key")->required();
  show->add_option("-e,--experiment", exp, "resolve the node's current key from this experiment");
  show->add_flag("--json", json, "print the manifest JSON");

  auto* status = app.add_subcommand("status", "the last runs from the journal: done / failed / running per node");
  status->add_option("experiment", exp, "experiment YAML (to find its cache)");
  status->add_option("-n,--runs", runs, "how many runs to show (default 5)");
  status->add_flag("--json", json, "machine-readable output");

  auto* schema = app.add_subcommand("schema", "print the JSON Schema of experiment files");

  auto* cache = app.add_subcommand("cache", "inspect and maintain the cache");
  cache->require_subcommand(1);
  auto* ls = cache->add_subcommand("ls", "list artifacts");
  ls->add_flag("--json", json, "machine-readable output");
  auto* verify = cache->add_subcommand("verify", "re-hash every artifact's files; report corrupt ones");
  verify->add_flag("--delete", del, "remove corrupt artifacts (they are recomputed on the next run)");
  auto* gc = cache->add_subcommand("gc", "remove artifacts that the named experiments no longer reference");
  gc->add_option("--keep", keep, "experiment YAML files whose artifacts to keep")->required();
  gc->add_flag("-n,--dry-run", dry, "only list what would be removed");

  ModelArgs ma;
  std::string imp_bin, imp_tok, imp_out;
  auto* model = app.add_subcommand("model", "checkpoints and the embedded CPU engine");
  model->require_subcommand(1);
  auto* mimport = model->add_subcommand("import", "convert a llama2.c checkpoint into a Hugging Face folder");
  mimport->add_option("checkpoint", imp_bin, "llama2.c .bin (e.g. stories260K.bin)")->required();
  mimport->add_option("tokenizer", imp_tok, "llama2.c tokenizer .bin (e.g. tok512.bin)")->required();
  mimport->add_option("out", imp_out, "output folder")->required();
  std::string rnd_cfg, rnd_out, rnd_dtype = "bfloat16", rnd_tok;
  uint64_t rnd_seed = 0;
  double rnd_std = 0.02;
  auto* mrandom = model->add_subcommand("random", "a Hugging Face folder with random weights N(0, std^2) for a config.json");
  mrandom->add_option("config", rnd_cfg, "config.json (LlamaForCausalLM, MistralForCausalLM, ...)")->required();
  mrandom->add_option("out", rnd_out, "output folder")->required();
  mrandom->add_option("--seed", rnd_seed, "random seed (default 0)");
  mrandom->add_option("--std", rnd_std, "standard deviation of the weights (default 0.02)");
  mrandom->add_option("--dtype", rnd_dtype, "float32, bfloat16 (default) or float16");
  mrandom->add_option("--tokenizer", rnd_tok, "a folder whose tokenizer files are copied in");
  auto* mgen = model->add_subcommand("generate", "generate text from a prompt (greedy unless --temperature)");
  mgen->add_option("dir", ma.dir, "model folder")->required();
  mgen->add_option("-p,--prompt", ma.prompt, "prompt text (default: empty = start of text)");
  mgen->add_option("-n,--max-tokens", ma.max_tokens, "tokens to generate (default 64)");
  mgen->add_option("--temperature", ma.temperature, "sampling temperature (0 = greedy)");
  mgen->add_option("--seed", ma.seed, "sampling seed");
  mgen->add_option("--threads", ma.threads, "CPU threads (default: all)");
  mgen->add_flag("-v,--verbose", ma.verbose, "print token ids and speed to stderr");
  auto* mscore = model->add_subcommand("score", "log p(continuation | context) and whether it is the greedy continuation");
  mscore->add_option("dir", ma.dir, "model folder")->required();
  mscore->add_option("--context", ma.context, "context text")->required();
  mscore->add_option("--continuation", ma.continuation, "continuation text (e.g. \" Paris\")")->required();
  mscore->add_flag("--bos", ma.bos, "prepend BOS to the context");
  mscore->add_option("--threads", ma.threads, "CPU threads (default: all)");
  std::string kl_quant, kl_json;
  auto* mkl = model->add_subcommand(
      "kl", "KL divergence and perplexity of a quantized model vs its reference (llama.cpp style)");
  mkl->add_option("ref", ma.dir, "reference model folder")->required();
  mkl->add_option("quant", kl_quant, "quantized model folder")->required();
  mkl->add_option("file", ma.file, "texts: .jsonl/.json with a \"text\" field, or blank-line separated")
      ->required();
  mkl->add_option("--max-length", ma.max_length, "tokens per text (default: the model's context)");
  mkl->add_option("--json", kl_json, "also write the result object to this file");
  mkl->add_option("--threads", ma.threads, "CPU threads (default: all)");
  auto* mppl = model->add_subcommand("perplexity", "rolling-window perplexity of a text file");
  mppl->add_option("dir", ma.dir, "model folder")->required();
  mppl->add_option("file", ma.file, "UTF-8 text file")->required();
  mppl->add_option("--max-length", ma.max_length, "window length (default: the model's)");
  mppl->add_option("--threads", ma.threads, "CPU threads (default: all)");

  ServeArgs sv;
  auto* serve = app.add_subcommand("serve", "an OpenAI-compatible HTTP server over the embedded engine (docs/serving.md)");
  serve->add_option("dir", sv.dir, "model folder (fp32 or a quantized artifact)")->required();
  serve->add_option("--host", sv.host, "address to listen on (default 127.0.0.1)");
  serve->add_option("--port", sv.port, "port (default 8000; 0 = any free port, printed)");
  serve->add_option("--served-model-name", sv.served_name, "the model id clients name (default: the folder)");
  serve->add_option("--threads", sv.threads, "CPU threads (default: all)");
  serve->add_option("--max-length", sv.max_length, "context window (default: the model's)");
  serve->add_option("--max-concurrent", sv.max_concurrent, "requests computed at once (default 8)");
  serve->add_option("--max-batch-tokens", sv.max_batch_tokens,
                    "concurrent prompt scoring shares forward passes of up to N tokens (default 4096; 0 = one "
                    "prompt per pass: logprobs bitwise those of the engine scoring it alone)");
  serve->add_option("--chat-template", sv.chat_template, "auto (tokenizer_config.json) or a family name");
  serve->add_option("--api-key-env", sv.api_key_env, "require the key in this environment variable as a bearer token");
  serve->add_option("--device", sv.device, "cpu (default) or cuda: the GPU engine on the first visible GPU");
  serve->add_option("--dtype", sv.dtype, "with --device cuda: float32 (default), bfloat16 or float16");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? k_exit_ok : k_exit_usage;
  }
  try {
    if (*run) return cmd_run(g, ra);
    if (*exec_node) return cmd_exec_node(g, xa);
    if (*plan) return cmd_plan(g, exp, targets, json);
    if (*repro) return cmd_reproduce(g, rp);
    if (*serve) return cmd_serve(sv);
    if (*explain) return cmd_explain(g, exp, node);
    if (*dag) return cmd_dag(g, exp, format);
    if (*show) return cmd_show(g, what, exp, json);
    if (*status) return cmd_status(g, exp, runs, json);
    if (*schema) return cmd_schema();
    if (*mimport) return cmd_model_import(imp_bin, imp_tok, imp_out);
    if (*mrandom) return cmd_model_random(rnd_cfg, rnd_out, rnd_seed, rnd_std, rnd_dtype, rnd_tok);
    if (*mgen) return cmd_model_generate(ma);
    if (*mscore) return cmd_model_score(ma);
    if (*mppl) return cmd_model_perplexity(ma);
    if (*mkl) return cmd_model_kl(ma, kl_quant, kl_json);
    if (*ls) return cmd_cache_ls(g, json);
    if (*verify) return cmd_cache_verify(g, del);
    if (*gc) return cmd_cache_gc(g, keep, dry);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qsweep: internal error: %s\n", e.what());
    return k_exit_failed;
  }
  return k_exit_usage;
}

}  // namespace qsweep::cli
