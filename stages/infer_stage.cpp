#include "stages/infer_stage.h"

#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <unordered_map>

#include "cache/hash.h"
#include "stages/infer_backend.h"
#include "model/engine/engine.h"
#include "model/tokenizer/chat_template.h"
#include "model/tokenizer/tokenizer.h"
#include "model/util/text_file.h"
#include "quant/formats/quantized_loader.h"
#include "scoring/eval_set.h"
#include "scoring/task.h"
#include "stages/journaled_answers.h"
#include "stages/model_input.h"
#include "stages/mtbench_answers.h"
#include "stages/node_gpu.h"

namespace qsweep {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::optional<int64_t> opt_int(const json& p, const char* k) {
  if (!p.contains(k) || p[k].is_null()) return std::nullopt;
  return p[k].get<int64_t>();
}

// The journal key of one request: everything of the request that can change
// its answer (the model and backend are in the journal's file name).
std::string request_hash(const scoring::Request& r, int default_max_gen_toks) {
  cache::KeyHasher h;
  h.field("type", scoring::to_string(r.type));
  h.field("context", r.context);
  h.field("continuation", r.continuation);
  if (r.type == scoring::RequestType::generate_until) {
    for (const auto& u : r.gen.until) h.field("until", u);
    h.field("max_gen_toks", int64_t(r.gen.max_gen_toks.value_or(default_max_gen_toks)));
    h.field("do_sample", int64_t(r.gen.do_sample));
    h.field("temperature", json(r.gen.temperature).dump());
  }
  return h.finish().hex();
}

// The answer as it is journaled and written to responses.jsonl.
json answer_json(const model::LoglikelihoodAnswer* ll,
                 const model::RollingAnswer* roll, const std::string* text) {
  json v = json::object();
  if (ll) {
    v["logprob"] = ll->logprob;
    v["is_greedy"] = ll->is_greedy;
    v["context_tokens"] = ll->context_tokens;
    v["continuation_tokens"] = ll->continuation_tokens;
  } else if (roll) {
    v["logprob"] = roll->logprob;
    v["tokens"] = roll->tokens;
  } else {
    v["text"] = *text;
  }
  return v;
}

// Answers `reqs` (indices into set.requests) with one backend call per kind.
std::vector<json> answer(model::Backend& backend, const scoring::EvalSet& set,
                         const std::vector<size_t>& reqs) {
  std::vector<json> out(reqs.size());
  std::vector<size_t> ll_at, roll_at, gen_at;
  std::vector<model::TextLoglikelihood> ll;
  std::vector<std::string> roll;
  std::vector<model::TextGeneration> gen;
  for (size_t k = 0; k < reqs.size(); ++k) {
    const scoring::Request& r = set.requests[reqs[k]];
    switch (r.type) {
      case scoring::RequestType::loglikelihood:
        ll.push_back({r.context, r.continuation});
        ll_at.push_back(k);
        break;
      case scoring::RequestType::loglikelihood_rolling:
        roll.push_back(r.continuation);
        roll_at.push_back(k);
        break;
      case scoring::RequestType::generate_until: {
        model::TextGeneration g;
        g.context = r.context;
        g.until = r.gen.until;
        g.max_gen_toks = r.gen.max_gen_toks.value_or(set.options.default_max_gen_toks);
        g.do_sample = r.gen.do_sample;
        g.temperature = r.gen.temperature;
        gen.push_back(std::move(g));
        gen_at.push_back(k);
        break;
      }
    }
  }
  if (!ll.empty()) {
    const auto a = backend.loglikelihood(ll);
    for (size_t k = 0; k < a.size(); ++k)
      out[ll_at[k]] = answer_json(&a[k], nullptr, nullptr);
  }
  if (!roll.empty()) {
    const auto a = backend.loglikelihood_rolling(roll);
    for (size_t k = 0; k < a.size(); ++k)
      out[roll_at[k]] = answer_json(nullptr, &a[k], nullptr);
  }
  if (!gen.empty()) {
    const auto a = backend.generate_until(gen);
    for (size_t k = 0; k < a.size(); ++k)
      out[gen_at[k]] = answer_json(nullptr, nullptr, &a[k]);
  }
  return out;
}

// The chat template of `chat_template`: the model's (auto) or a family.
model::ChatTemplate chat_template_of(const json& p, const fs::path& model_dir) {
  const std::string fam = p.value("chat_template", std::string("auto"));
  const fs::path cfg = model_dir / "tokenizer_config.json";
  return model::ChatTemplate::from_config(
      cfg.string(), fam == "auto" ? std::nullopt : model::parse_chat_family(fam));
}

}  // namespace

std::string InferStage::description() const {
  return "answers the lm-eval requests of a task (input `task`: a task file; `dataset`: its data "
         "folder) with a model (input `checkpoint`), one record per request, resumable from a "
         "request journal";
}

std::vector<ParamSpec> InferStage::params() const {
  return {
      {"mode", ParamType::kString, false, "lm_eval",
       "lm_eval (the task file's requests) or mt_bench (two-turn answers to MT-Bench "
       "questions with the chat template, FastChat's settings)"},
      {"backend", ParamType::kAny, false, "embedded",
       "embedded (the CPU engine; quantized checkpoints run their quantized kernels), or "
       "{kind: openai, endpoints: [URL...], model, api_key_env, concurrency, chat} for running "
       "OpenAI-compatible servers, or {kind: vllm|qsweep, launch, model, health_timeout_s, "
       "keep_alive_s} for a server qsweep starts (docs/serving.md)"},
      {"limit", ParamType::kInt, false, nullptr,
       "lm-eval --limit: only the first N docs (per subtask); results are marked as limited"},
      {"num_fewshot", ParamType::kInt, false, nullptr, "shots (default: the task file's)"},
      {"apply_chat_template", ParamType::kBool, false, false,
       "lm-eval --apply_chat_template: prompts rendered with the model's chat template"},
      {"fewshot_as_multiturn", ParamType::kBool, false, false,
       "lm-eval --fewshot_as_multiturn: each example a user/assistant turn (needs "
       "apply_chat_template)"},
      {"system_instruction", ParamType::kString, false, "",
       "lm-eval --system_instruction: prepended to the description"},
      {"chat_template", ParamType::kString, false, "auto",
       "auto (the model's tokenizer_config.json chat_template) or a family (llama2, llama3, "
       "llama3.1, gemma, gemma1, vicuna_v1.1, chatml)"},
      {"add_bos_token", ParamType::kBool, false, false,
       "lm-eval model arg add_bos_token: prompts start with BOS (lm-eval's default: no)"},
      {"max_length", ParamType::kInt, false, 0,
       "context length in tokens (0: the model's max_position_embeddings)"},
      {"max_gen_toks", ParamType::kInt, false, 256,
       "generation length when the task sets none (lm-eval's model default 256)"},
      {"max_new_tokens", ParamType::kInt, false, 1024,
       "mt_bench: new tokens per answer (FastChat's --max-new-token)"},
      {"seed", ParamType::kInt, false, 0, "mt_bench: base of the per-question sampling seeds"},
      {"questions", ParamType::kString, false, "question.jsonl",
       "mt_bench: the questions file in the dataset folder"},
      {"data_dir", ParamType::kString, false, "",
       "sub-folder of the dataset artifact holding the task's data files"},
      {"batch_size", ParamType::kInt, false, 64,
       "requests per backend call and journal write (a kill loses at most one batch)"},
      {"threads", ParamType::kInt, false, 0, "engine threads (0: the node's granted threads)"},
      {"device", ParamType::kString, false, nullptr,
       device_param_doc("the embedded backend's GPU engine (dense, weight-only, W8A8 and FP8 checkpoints); a server "
                        "backend places itself")},
      {"dtype", ParamType::kString, false, "float32",
       "device cuda: float32, bfloat16 or float16 weights, GEMM inputs and KV cache (fp32 "
       "accumulation); the CPU engine is float32 only"},
      {"tf32", ParamType::kBool, false, false, "device cuda, dtype float32: TF32 tensor-core GEMMs"},
      {"max_batch_tokens", ParamType::kInt, false, 0,
       "embedded backend: tokens per forward pass when scoring (0: 4096 on the CPU, 8192 on a GPU)"},
      {"batch_invariant", ParamType::kBool, false, false,
       "answers independent of batching: the embedded engine scores each request in a pass of its "
       "own (a managed `qsweep serve` gets --max-batch-tokens 0), so in-process and HTTP answers are "
       "bitwise equal; slower"},
  };
}

Resources InferStage::default_resources() const { return Resources::all_threads(); }

void InferStage::resolve_defaults(json& p, const Resources& r) const {
  default_infer_device(p, r);
}

std::string InferStage::check_params(const json& p) const {
  if (const std::string m = p.value("mode", std::string("lm_eval")); m != "lm_eval" && m != "mt_bench")
    return "params.mode: unknown mode '" + m + "' (lm_eval, mt_bench)";
  if (p.value("max_new_tokens", int64_t(1024)) <= 0) return "params.max_new_tokens: must be positive";
  if (std::string e = check_backend_param(p.value("backend", json("embedded"))); !e.empty()) return e;
  if (auto l = opt_int(p, "limit"); l && *l <= 0)
    return "params.limit: must be a positive number of docs (or null for all)";
  if (auto n = opt_int(p, "num_fewshot"); n && *n < 0)
    return "params.num_fewshot: must be >= 0 (or null for the task's)";
  if (p.value("fewshot_as_multiturn", false) && !p.value("apply_chat_template", false))
    return "params.fewshot_as_multiturn: needs apply_chat_template: true (as lm-eval)";
  if (p.value("batch_size", int64_t(64)) <= 0) return "params.batch_size: must be positive";
  if (p.value("max_gen_toks", int64_t(256)) <= 0) return "params.max_gen_toks: must be positive";
  if (p.value("max_length", int64_t(0)) < 0) return "params.max_length: must be >= 0";
  if (p.value("threads", int64_t(0)) < 0) return "params.threads: must be >= 0";
  if (p.value("max_batch_tokens", int64_t(0)) < 0) return "params.max_batch_tokens: must be >= 0";
  if (std::string e = check_device_params(p); !e.empty()) return e;
  const std::string fam = p.value("chat_template", std::string("auto"));
  if (fam != "auto" && !model::parse_chat_family(fam))
    return "params.chat_template: unknown family '" + fam + "' (auto, " +
           model::chat_family_names() + ")";
  return {};
}

std::vector<cache::KeyField> InferStage::fingerprint(const json& p) const {
  const std::string id = remote_backend_identity(p.value("backend", json("embedded")));
  if (id.empty()) return {};
  return {{"server", id}};
}

std::string InferStage::check_file_input(const std::string& input, const fs::path& path) const {
  return check_task_file_input(input, path);
}

void InferStage::run(StageContext& ctx) const {
  if (std::string e = check_params(ctx.params); !e.empty()) throw std::runtime_error(e);
  const json& p = ctx.params;
  const auto t0 = std::chrono::steady_clock::now();
  const InputArtifact& ckpt_in = single_input(ctx, "checkpoint", "a model folder artifact");
  const fs::path model_dir = find_model_dir(ckpt_in.path);
  fs::path data_dir = single_input(ctx, "dataset", "the task's dataset folder").path;
  if (const std::string sub = p.value("data_dir", std::string()); !sub.empty()) data_dir /= sub;
  if (p.value("mode", std::string("lm_eval")) == "mt_bench") {
    run_mt_bench(ctx, ckpt_in, model_dir, data_dir);
    return;
  }
  const InputArtifact& task_in = single_input(ctx, "task", "a task file (file:tasks/NAME.yaml)");
  const scoring::TaskConfig task = scoring::load_task_file(task_in.path);

  // The prompts.
  scoring::PromptOptions opts;
  if (auto n = opt_int(p, "num_fewshot")) opts.num_fewshot = int(*n);
  if (auto l = opt_int(p, "limit")) opts.limit = size_t(*l);
  opts.apply_chat_template = p.value("apply_chat_template", false);
  opts.fewshot_as_multiturn = p.value("fewshot_as_multiturn", false);
  opts.system_instruction = p.value("system_instruction", std::string());
  opts.default_max_gen_toks = int(p.value("max_gen_toks", int64_t(256)));
  std::optional<model::ChatTemplate> chat;
  if (opts.apply_chat_template) {
    chat = chat_template_of(p, model_dir);
    opts.chat_template = &*chat;
  }
  const scoring::EvalSet set = scoring::build_eval_set(task, data_dir, opts);
  ctx.progress->log(task.task + ": " + std::to_string(set.docs.size()) + " docs, " +
                    std::to_string(set.requests.size()) + " requests" +
                    (set.limit ? " (limit " + std::to_string(*set.limit) + ")" : ""));

  const NodeBackend nb = make_node_backend(ctx, model_dir);
  model::Backend& backend = *nb.backend;

  // Answers: from the request journal, or computed a batch at a time.
  JournaledAnswers answers(ctx, ckpt_in.key, backend.fingerprint());
  std::vector<std::string> hashes(set.requests.size());
  for (size_t i = 0; i < set.requests.size(); ++i)
    hashes[i] = request_hash(set.requests[i], set.options.default_max_gen_toks);
  const JournaledAnswers::Stats st = answers.ensure(
      hashes, size_t(p.value("batch_size", int64_t(64))),
      [&](const std::vector<size_t>& chunk) { return answer(backend, set, chunk); }, ctx, "requests");
  const size_t from_journal = st.from_journal;

  // Outputs.
  {
    std::ofstream f(ctx.output_dir / "responses.jsonl", std::ios::binary);
    for (size_t i = 0; i < set.requests.size(); ++i) {
      json line = answers.get(hashes[i]);
      line["i"] = i;
      line["doc"] = set.requests[i].doc;
      line["index"] = set.requests[i].index;
      line["hash"] = hashes[i];
      f << line.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
    }
    if (!f) throw std::runtime_error("cannot write " + (ctx.output_dir / "responses.jsonl").string());
  }
  model::write_text_file(ctx.output_dir / "eval_set.json",
                         set.to_json().dump(-1, ' ', false, json::error_handler_t::replace));
  model::write_text_file(ctx.output_dir / "task.yaml", model::read_text_file(task_in.path));
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  json summary = {{"format", 1},
                  {"task", task.task},
                  {"docs", set.docs.size()},
                  {"requests", set.requests.size()},
                  {"computed", st.computed},
                  {"from_journal", from_journal},
                  {"limit", set.limit ? json(*set.limit) : json(nullptr)},
                  {"fewshot_from_eval_split", set.fewshot_from_eval_split},
                  {"backend", backend.fingerprint()},
                  {"model_args", backend.describe()},
                  {"model", ckpt_in.node},
                  {"seconds", secs}};
  model::write_text_file(ctx.output_dir / "infer.json", summary.dump(2) + "\n");
  ctx.outputs = {{"task", task.task},
                 {"requests", set.requests.size()},
                 {"computed", st.computed},
                 {"from_journal", from_journal},
                 {"limit", summary["limit"]}};
}

void InferStage::run_mt_bench(StageContext& ctx, const InputArtifact& ckpt_in,
                              const fs::path& model_dir, const fs::path& data_dir) const {
  const json& p = ctx.params;
  const auto t0 = std::chrono::steady_clock::now();
  const model::ChatTemplate chat = chat_template_of(p, model_dir);
  const NodeBackend nb = make_node_backend(ctx, model_dir);
  JournaledAnswers answers(ctx, ckpt_in.key, nb.backend->fingerprint());
  MtBenchOptions o;
  if (auto l = opt_int(p, "limit")) o.limit = size_t(*l);
  o.max_new_tokens = int(p.value("max_new_tokens", int64_t(1024)));
  o.seed = uint64_t(p.value("seed", int64_t(0)));
  o.system_prompt = p.value("system_instruction", std::string());
  o.model_id = ckpt_in.node;
  o.batch = size_t(p.value("batch_size", int64_t(64)));
  const fs::path questions = find_data_file(data_dir, p.value("questions", std::string("question.jsonl")));
  json summary = generate_mtbench_answers(ctx, *nb.backend, chat, answers, questions, o);
  summary["format"] = 1;
  summary["mode"] = "mt_bench";
  summary["limit"] = o.limit ? json(*o.limit) : json(nullptr);
  summary["backend"] = nb.backend->fingerprint();
  summary["model_args"] = nb.backend->describe();
  summary["chat_template"] = model::chat_family_name(chat.family());
  summary["model"] = ckpt_in.node;
  summary["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  model::write_text_file(ctx.output_dir / "infer.json", summary.dump(2) + "\n");
  ctx.outputs = {{"mode", "mt_bench"},
                 {"questions", summary["questions"]},
                 {"computed", summary["computed"]},
                 {"from_journal", summary["from_journal"]},
                 {"limit", summary["limit"]}};
}

}  // namespace qsweep
