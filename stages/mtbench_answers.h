#pragma once
// MT-Bench answer generation (issue #6), the infer stage's `mode: mt_bench`:
// FastChat's gen_model_answer.py on the embedded backend (SPECS.md B14).
//
//   - questions: question.jsonl ({question_id, category, turns[2]}) of the
//     dataset input; `limit` keeps the first N;
//   - per question, two turns in one conversation rendered with the model's
//     chat template (turn 2's prompt holds turn 1's answer);
//   - FastChat's per-category temperature (writing/roleplay 0.7, stem and
//     humanities 0.1, extraction/math/coding/reasoning 0.0, other 0.7);
//     greedy below 1e-4; max_new_tokens (default 1024) new tokens, ending at
//     the template's end of turn or EOS; the answer is the decoded text
//     (special tokens dropped) cut at the end-of-turn string and stripped;
//   - sampling seed per (question, turn): seed * 1000003 + 2 * question_id +
//     turn (FastChat seeds torch per choice; torch's generator cannot be
//     reproduced here, so samples differ from FastChat's but are
//     deterministic and journaled).
// Turns go through the request journal (stages/journaled_answers.h): a rerun
// regenerates nothing it has; turn 2 of a question needs its turn 1.
//
// Output: answers.jsonl in FastChat's model_answer layout, one line per
// question in file order: {question_id, answer_id, model_id, category,
// choices: [{index: 0, turns: [a1, a2]}]} (answer_id = H(prompts, answers));
// no tstamp, so the artifact is deterministic.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "model/backend/backend.h"
#include "model/tokenizer/chat_template.h"
#include "pipeline/stage.h"
#include "stages/journaled_answers.h"

namespace qsweep {

struct MtBenchOptions {
  std::optional<std::size_t> limit;  // first N questions
  int max_new_tokens = 1024;
  uint64_t seed = 0;
  std::string system_prompt;  // "" = none (the template's default, if any)
  std::string model_id;       // written into each answer
  std::size_t batch = 16;     // turns per backend call / journal write
};

/// FastChat's common.py temperature_config (unknown category -> 0.7).
double mtbench_temperature(const std::string& category);

/// Generates the answers into ctx.output_dir/answers.jsonl; returns a summary
/// {questions, turns, computed, from_journal}. Throws naming the file and
/// line for a malformed question.
nlohmann::json generate_mtbench_answers(StageContext& ctx, model::Backend& backend,
                                        const model::ChatTemplate& chat, JournaledAnswers& answers,
                                        const std::filesystem::path& questions,
                                        const MtBenchOptions& opts);

}  // namespace qsweep
