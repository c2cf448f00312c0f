// Evaluation benchmarks (issue #5, Performance). Needs ../shared/data
// (stories260K, the MMLU CSVs, the llama2 tokenizer); prints one line per
// measurement. Threads: QSWEEP_BENCH_THREADS (default: all cores).
//
//   (a) the infer stage on stories260K over the whole MMLU test set (57
//       subjects, 5-shot, 4 choices: 56,168 requests): requests/s, with the
//       request journal written as it goes;
//   (b) the same node again with a fresh output folder: every request is in
//       the journal — the cost of resuming a finished 50k-request node
//       (target < 2 s): task file + data + prompts + hashing + journal load +
//       responses.jsonl / eval_set.json;
//   (c) MMLU-style 5-shot 4-choice requests (the first docs of each subject)
//       through the embedded backend with and without prefix reuse, on
//       stories260K and on a synthetic 110M Llama (hidden 768, 12 layers,
//       vocab 32000, random weights) with the Llama-2 tokenizer: requests/s
//       and the speedup of prefix reuse;
//   (d) greedy generation throughput (new tokens/s) from the long prompts of
//       the generative leaderboard tasks: MATH's 4-shot Minerva prompt (the 4
//       fixed exemplars + a test problem) and MT-Bench first turns in the
//       Vicuna template, 128 new tokens each, several prompts in parallel
//       (as the infer stage batches them), on both models.

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "bench/model/llama_110m.h"
#include "model/backend/embedded_backend.h"
#include "model/checkpoint/llama2c.h"
#include "model/engine/engine.h"
#include "model/engine/transformer.h"
#include "model/tokenizer/chat_template.h"
#include "model/tokenizer/llama2c_tokenizer.h"
#include "model/tokenizer/tokenizer.h"
#include "model/util/text_file.h"
#include "scoring/eval_set.h"
#include "scoring/task.h"
#include "stages/infer_stage.h"

namespace qsweep {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int bench_threads() {
  const char* s = std::getenv("QSWEEP_BENCH_THREADS");
  const int n = s ? std::atoi(s) : 0;
  return n > 0 ? n : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

struct QuietProgress : ProgressSink {
  void update(uint64_t, uint64_t, const std::string&) override {}
  void log(const std::string& line) override { std::fprintf(stderr, "  [infer] %s\n", line.c_str()); }
};

double run_infer(const fs::path& model, const fs::path& data, const fs::path& task,
                 const fs::path& journal, const fs::path& out, int threads, nlohmann::json* summary) {
  InferStage st;
  QuietProgress progress;
  StageContext ctx;
  ctx.node_id = "infer[bench]";
  ctx.output_dir = out;
  ctx.journal_dir = journal;
  fs::create_directories(out);
  ctx.params = nlohmann::json::object();
  for (const auto& p : st.params()) ctx.params[p.name] = p.default_value;
  ctx.params["threads"] = threads;
  ctx.inputs["checkpoint"] = {"checkpoint", false, {{"hf[stories260K]", "bench-model-key", model}}};
  ctx.inputs["dataset"] = {"dataset", false, {{"data[mmlu]", "bench-data-key", data}}};
  ctx.inputs["task"] = {"task", false, {{"file:" + task.string(), "bench-task", task}}};
  ctx.progress = &progress;
  const auto t0 = Clock::now();
  st.run(ctx);
  const double s = since(t0);
  *summary = model::read_json_file(out / "infer.json");
  return s;
}

// Requests/s of the first `docs` docs per MMLU subject on `backend`'s model.
void mc_throughput(const char* name, const model::Engine& engine, const model::Tokenizer& tok,
                   const scoring::TaskConfig& task, const fs::path& data, size_t docs,
                   size_t max_docs) {
  scoring::PromptOptions o;
  o.limit = docs;
  const scoring::EvalSet set = scoring::build_eval_set(task, data, o);
  std::vector<model::TextLoglikelihood> reqs;
  for (const auto& r : set.requests)
    if (r.doc < max_docs) reqs.push_back({r.context, r.continuation});
  double rps[2];
  for (int reuse = 1; reuse >= 0; --reuse) {
    model::EmbeddedBackend b(engine, tok, {.reuse_prefix = reuse == 1});
    const auto t0 = Clock::now();
    const auto a = b.loglikelihood(reqs);
    rps[reuse] = double(reqs.size()) / since(t0);
    size_t ctx_tokens = 0;
    for (const auto& x : a) ctx_tokens += size_t(x.context_tokens);
    std::printf("%s: %zu requests (%zu docs), mean context %.0f tokens, prefix reuse %s: %.2f requests/s\n",
                name, reqs.size(), std::min(max_docs, set.docs.size()), double(ctx_tokens) / double(reqs.size()),
                reuse ? "on " : "off", rps[reuse]);
  }
  std::printf("%s: prefix reuse speedup %.2fx\n", name, rps[1] / rps[0]);
}

// (d): generated tokens per second over `prompts`, `max_new` greedy tokens each.
void generation_throughput(const char* name, const model::Engine& engine, const model::Tokenizer& tok,
                           const std::vector<std::string>& prompts, int max_new) {
  std::vector<std::vector<int>> ids;
  size_t prompt_tokens = 0;
  for (const auto& p : prompts) {
    const auto v = tok.encode(p, false);
    std::vector<int> x(v.begin(), v.end());
    const int keep = std::max(1, engine.max_length() - max_new);
    if (int(x.size()) > keep) x.erase(x.begin(), x.end() - keep);
    prompt_tokens += x.size();
    ids.push_back(std::move(x));
  }
  std::vector<size_t> generated(ids.size());
  model::GenerateOptions g;
  g.max_tokens = max_new;  // no stop: every prompt generates max_new tokens
  const auto t0 = Clock::now();
  tbb::parallel_for(size_t(0), ids.size(), [&](size_t i) { generated[i] = engine.generate(ids[i], g).size(); });
  const double secs = since(t0);
  size_t total = 0;
  for (size_t n : generated) total += n;
  std::printf("%s: %zu prompts (mean %.0f prompt tokens), %zu new tokens in %.2f s = %.1f tokens/s\n", name,
              ids.size(), double(prompt_tokens) / double(ids.size()), total, secs, double(total) / secs);
}

// MATH 4-shot prompts: the fixed Minerva exemplars + each of the first test problems.
std::vector<std::string> math_prompts(const fs::path& shared, size_t n) {
  const nlohmann::json few = model::read_json_file(shared / "benchmarks/math/leaderboard_math_fewshot.json");
  std::string shots;
  for (const auto& ex : few["samples"])
    shots += "Problem:\n" + ex["problem"].get<std::string>() + "\n\nSolution: " + ex["solution"].get<std::string>() + "\n\n";
  std::vector<std::string> out;
  std::ifstream in(shared / "benchmarks/math/test.jsonl");
  for (std::string line; out.size() < n && std::getline(in, line);)
    out.push_back(shots + "Problem:\n" + nlohmann::json::parse(line)["problem"].get<std::string>() + "\n\nSolution:");
  return out;
}

// MT-Bench first turns in the Vicuna v1.1 template.
std::vector<std::string> mtbench_prompts(const fs::path& shared, size_t n) {
  const model::ChatTemplate chat(model::ChatFamily::kVicuna, "<s>", "</s>");
  std::vector<std::string> out;
  std::ifstream in(shared / "benchmarks/mt_bench/question.jsonl");
  for (std::string line; out.size() < n && std::getline(in, line);)
    out.push_back(chat.render({{"user", nlohmann::json::parse(line)["turns"][0].get<std::string>()}}, true));
  return out;
}

int main_impl() {
  const fs::path src = QSWEEP_SOURCE_DIR;
  const fs::path shared = src / ".." / "shared" / "data";
  const fs::path bin = shared / "models/stories260K/stories260K.bin";
  if (!fs::exists(bin)) {
    std::fprintf(stderr, "eval_bench needs ../shared/data (stories260K, benchmarks/mmlu, tokenizers/llama2)\n");
    return 2;
  }
  const int threads = bench_threads();
  std::printf("threads: %d\n", threads);
  const fs::path tmp = fs::temp_directory_path() / ("qsweep-eval-bench-" + std::to_string(::getpid()));
  fs::create_directories(tmp / "model");
  model::import_llama2c(bin, bin.parent_path() / "tok512.bin", tmp / "model");
  model::write_hf_tokenizer(*model::Llama2cTokenizer::load((bin.parent_path() / "tok512.bin").string()),
                            (tmp / "model").string());
  const fs::path task_file = src / "experiments/tasks/mmlu.yaml";
  const fs::path data = shared / "benchmarks/mmlu";
  const scoring::TaskConfig task = scoring::load_task_file(task_file);

  // (a) + (b); QSWEEP_BENCH_SKIP_INFER=1 skips them (5 minutes on 2 cores).
  const char* skip = std::getenv("QSWEEP_BENCH_SKIP_INFER");
  if (!(skip && *skip == '1')) {
    nlohmann::json s1, s2;
    const double t1 = run_infer(tmp / "model", data, task_file, tmp / "journal", tmp / "out1", threads, &s1);
    const double n = s1["requests"].get<double>();
    std::printf("(a) infer stage, stories260K, MMLU 5-shot (%.0f requests, %.0f computed): %.1f s = %.1f requests/s\n",
                n, s1["computed"].get<double>(), t1, n / t1);
    const double t2 = run_infer(tmp / "model", data, task_file, tmp / "journal", tmp / "out2", threads, &s2);
    std::printf("(b) the same node resumed from its journal (%.0f of %.0f answered there): %.2f s\n",
                s2["from_journal"].get<double>(), n, t2);
  }

  // (c)
  tbb::task_arena arena(threads);
  {
    model::EngineOptions eo;
    eo.arena = &arena;
    const auto engine = model::Engine::load(tmp / "model", eo);
    const auto tok = model::load_tokenizer((tmp / "model").string());
    mc_throughput("(c) stories260K", *engine, *tok, task, data, 4, SIZE_MAX);
    arena.execute([&] {
      generation_throughput("(d) stories260K, MATH 4-shot", *engine, *tok, math_prompts(shared, 16), 128);
      generation_throughput("(d) stories260K, MT-Bench turn 1", *engine, *tok, mtbench_prompts(shared, 16), 128);
    });
  }
  {
    const model::ModelConfig c = model::llama_110m();
    model::EngineOptions eo;
    eo.arena = &arena;
    model::Engine engine(std::make_unique<model::Transformer>(c, 1234), eo);
    const auto tok = model::load_tokenizer((shared / "tokenizers/llama2").string());
    // The first doc of each of the first 24 subjects: 5-shot contexts of a few hundred tokens.
    mc_throughput("(c) synthetic 110M", engine, *tok, task, data, 1, 24);
    arena.execute([&] {
      generation_throughput("(d) synthetic 110M, MATH 4-shot", engine, *tok, math_prompts(shared, 4), 64);
      generation_throughput("(d) synthetic 110M, MT-Bench turn 1", engine, *tok, mtbench_prompts(shared, 4), 64);
    });
  }
  fs::remove_all(tmp);
  return 0;
}

}  // namespace
}  // namespace qsweep

int main() {
  try {
    return qsweep::main_impl();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eval_bench: %s\n", e.what());
    return 1;
  }
}
