#pragma once
// The evaluated part of one task: its documents (read from a dataset folder,
// processed), their few-shot prompts and the lm-eval requests (Instances) a
// backend must answer. The contract between the infer stage (which answers
// `requests`) and the score stage (which turns the answers into metrics):
// infer writes the EvalSet (to_json) beside one Response per request, score
// reads both back. See docs/scoring.md, "Evaluation sets".

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/tokenizer/chat_template.h"
#include "scoring/task.h"

namespace qsweep::scoring {

enum class RequestType { loglikelihood, loglikelihood_rolling, generate_until };
const char* to_string(RequestType t);

/// One lm-eval Instance.
///   loglikelihood:          log p(continuation | context)
///   loglikelihood_rolling:  log p(continuation) over rolling windows (context "")
///   generate_until:         a generation from `context` with `gen`
struct Request {
  RequestType type = RequestType::loglikelihood;
  std::size_t doc = 0;  // index into EvalSet::docs
  int index = 0;        // choice index (multiple_choice), else 0
  std::string context;
  std::string continuation;  // loglikelihood: target_delimiter + choice (or the
                             // Winogrande continuation); rolling: the text
  GenerationKwargs gen;      // generate_until: `until` filled (defaults applied)
};

/// What a backend answered for one Request.
struct Response {
  double logprob = 0;      // loglikelihood / rolling: sum of token log-probs (nats)
  bool is_greedy = false;  // loglikelihood: every continuation token was the argmax
  std::string text;        // generate_until: the generation, cut at the first stop string
};

/// One evaluated document.
struct EvalDoc {
  std::size_t doc_id = 0;  // index in the split (after process_docs), as lm-eval's doc_id
  std::string subtask;     // the subtask it belongs to ("" when the task has none)
  nlohmann::json doc;      // the processed document
  std::string prompt;      // the context of its requests (few-shot + text)
  std::vector<std::size_t> fewshot_ids;  // doc_ids (in the few-shot split) of its examples
};

struct PromptOptions {
  int num_fewshot = -1;                    // < 0: the task's num_fewshot
  std::optional<std::size_t> limit;        // lm-eval --limit N: the first N docs (per subtask)
  bool apply_chat_template = false;        // lm-eval --apply_chat_template
  bool fewshot_as_multiturn = false;       // lm-eval --fewshot_as_multiturn
  std::string system_instruction;          // lm-eval --system_instruction ("" = none)
  const model::ChatTemplate* chat_template = nullptr;  // required with apply_chat_template
  int default_max_gen_toks = 256;          // the model's max_gen_toks when the task sets none
};

struct EvalSet {
  std::string task;
  std::vector<std::string> subtasks;  // in order of first appearance; empty if none
  std::vector<EvalDoc> docs;          // in evaluation order (grouped by subtask)
  std::vector<Request> requests;      // by doc, then index
  int num_fewshot = 0;                // shots actually used
  bool fewshot_from_eval_split = false;  // the few-shot split was missing (see task.h)
  std::optional<std::size_t> limit;      // the --limit applied, if any
  std::size_t docs_before_limit = 0;     // "original" in lm-eval's n-samples
  /// Per subtasks[i], its doc count before the limit ("original" of the
  /// subtask in n-samples); empty = unknown (written as null).
  std::vector<std::size_t> subtask_docs_before_limit;
  PromptOptions options;                 // chat_template pointer not kept

  nlohmann::json to_json() const;
  static EvalSet from_json(const nlohmann::json& j);  // throws std::runtime_error naming the field
};

/// Reads the task's evaluated and few-shot splits from `dataset_dir` (the
/// task's data_files / data_format), applies process_docs, and builds the
/// prompts and requests. Throws TaskError (task-file problems) or
/// std::runtime_error naming the data file (missing split, bad record).
EvalSet build_eval_set(const TaskConfig& task, const std::filesystem::path& dataset_dir,
                       const PromptOptions& options);

}  // namespace qsweep::scoring
