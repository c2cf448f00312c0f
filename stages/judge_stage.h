#pragma once
// The `judge` stage (issue #8): MT-Bench single-answer grading of an infer
// node's answers (mode mt_bench) by a judge model behind an OpenAI-compatible
// API, as FastChat's gen_judgment.py --mode single (scoring/judge/).
//
//   - name: judge
//     kind: judge
//     matrix: {model: "*", recipe: "*"}
//     inputs:
//       answers: mt_bench[${model},${recipe}]     # answers.jsonl
//       dataset: data_mt_bench                     # question.jsonl, judge_prompts.jsonl, references
//       judge_model: download[judge]               # only for a managed judge server
//     params:
//       judge: {kind: openai, endpoints: [https://api.openai.com/v1], model: gpt-4,
//               api_key_env: OPENAI_API_KEY}
//       judge_snapshot: gpt-4-0613                 # enters the key
//       budget_usd: 20
//
// Every (question, turn, repeat) is one chat completion (temperature 0,
// max_tokens 2048) journaled under H(system, user, settings) in
// <cache>/journal/judge/<H(judge fingerprint)>.jsonl: identical (question,
// answer, judge) triples of different quantization variants are judged once,
// a killed node resumes, and a budget stop loses nothing. Unparsed
// judgments are counted per turn, never averaged. Output: judgments.jsonl,
// summary.json (task mt_bench: turn1, turn2, avg, unparsed), results.json,
// judge.json (usage, cost), judge.md.

#include "pipeline/stage.h"

namespace qsweep {

class JudgeStage : public Stage {
 public:
  std::string kind() const override { return "judge"; }
  int64_t version() const override { return 1; }
  std::string description() const override;
  std::vector<ParamSpec> params() const override;
  Resources default_resources() const override;
  std::string check_params(const nlohmann::json& params) const override;
  /// The judge server's served model and version (kind openai).
  std::vector<cache::KeyField> fingerprint(const nlohmann::json& params) const override;
  void run(StageContext& ctx) const override;
};

}  // namespace qsweep
