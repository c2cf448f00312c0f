#pragma once
// The `infer` stage (issue #5): the lm-eval requests of one (model, task)
// pair answered by a backend, one record per request.
//
//   - name: infer
//     kind: infer
//     matrix: {model: "*", task: "*"}
//     inputs:
//       checkpoint: quantize[${model},w4]      # a model folder artifact
//       dataset: data[${task}]                 # the task's dataset folder
//       task: file:tasks/${task}.yaml          # an lm-eval-style task file
//     params: {limit: null, num_fewshot: null, add_bos_token: false}
//
// The task file is parsed when the experiment is expanded (its errors name
// file:line:column and the key). Chat-template mode (apply_chat_template,
// fewshot_as_multiturn, system_instruction), add_bos_token, max_length and
// max_gen_toks are params, so they are part of the node key.
//
// Request journal: every answered request is appended to
// <cache>/journal/infer/<H(model artifact key, backend fingerprint)>.jsonl
// under its request hash H(type, context, continuation, generation settings)
// before the next batch starts. A killed node loses at most the batch in
// flight; a rerun (of this node, or of another task asking an identical
// request of the same model and backend) takes answers from the journal.
//
// `mode: mt_bench` generates two-turn MT-Bench answers instead
// (stages/mtbench_answers.h): inputs `checkpoint` and `dataset` (holding
// question.jsonl), no task; the chat template is required (`chat_template`:
// auto or a family); output answers.jsonl + infer.json.
//
// Output (lm_eval mode): eval_set.json (scoring::EvalSet: docs, prompts, requests),
// responses.jsonl (one line per request, in request order: {i, doc, index,
// hash, logprob, is_greedy, context_tokens, continuation_tokens} or {..., text}),
// task.yaml (a copy of the task file, for the score stage), infer.json
// (summary: task, requests, computed, from_journal, limit, backend, seconds).

#include "pipeline/stage.h"

namespace qsweep {

class InferStage : public Stage {
 public:
  std::string kind() const override { return "infer"; }
  int64_t version() const override { return 1; }
  std::string description() const override;
  std::vector<ParamSpec> params() const override;
  Resources default_resources() const override;
  void resolve_defaults(nlohmann::json& params, const Resources& resources) const override;
  std::string check_params(const nlohmann::json& params) const override;
  /// A running OpenAI-compatible server's served model and version (kind openai).
  std::vector<cache::KeyField> fingerprint(const nlohmann::json& params) const override;
  std::string check_file_input(const std::string& input,
                               const std::filesystem::path& path) const override;
  void run(StageContext& ctx) const override;

 private:
  void run_mt_bench(StageContext& ctx, const InputArtifact& ckpt_in,
                    const std::filesystem::path& model_dir,
                    const std::filesystem::path& data_dir) const;
};

}  // namespace qsweep
