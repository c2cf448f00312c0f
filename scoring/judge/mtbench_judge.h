#pragma once
// MT-Bench single-answer grading as FastChat's llm_judge does it
// (../shared/docs/SPECS.md B14; fastchat/llm_judge/common.py and
// gen_judgment.py --mode single): which judge prompt a (question, turn) gets,
// the prompt text, the rating parse, and the Table-4 aggregates.
//
//   - categories math, reasoning, coding (and arena-hard-200) need a
//     reference answer: prompts single-math-v1 (turn 1) and
//     single-math-v1-multi-turn (turn 2), else single-v1 /
//     single-v1-multi-turn;
//   - the turn-1 prompt fills {question}, {answer} (+ {ref_answer_1}); the
//     multi-turn one {question_1}, {answer_1}, {question_2}, {answer_2}
//     (+ {ref_answer_1}, {ref_answer_2}); the system prompt is the
//     template's system_prompt;
//   - rating: re.search(r"\[\[(\d+\.?\d*)\]\]"), else r"\[(\d+\.?\d*)\]"; no
//     match = -1 (unparsed: counted, never averaged);
//   - scores: turn-1 mean, turn-2 mean and the mean over every parsed
//     judgment, as show_result.py.

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace qsweep::scoring {

struct JudgePromptTemplate {
  std::string name, system_prompt, prompt_template, output_format;
};

struct MtBenchQuestion {
  int64_t id = 0;
  std::string category;
  std::vector<std::string> turns;       ///< 2
  std::vector<std::string> reference;   ///< reference answers (empty when none)
};

/// judge_prompts.jsonl by name; throws naming the file and line.
std::map<std::string, JudgePromptTemplate> load_judge_prompts(const std::filesystem::path& p);
/// question.jsonl; references (reference_answer/<judge>.jsonl, question_id
/// -> choices[0].turns) are attached to the questions they answer.
std::vector<MtBenchQuestion> load_mtbench_questions(const std::filesystem::path& questions,
                                                    const std::filesystem::path& references);

bool needs_reference(const std::string& category);

struct JudgeRequest {
  std::string prompt_name;  ///< e.g. "single-math-v1-multi-turn"
  std::string system, user;
};

/// The judge's prompt for turn 1 or 2 of a question and a model's answers.
/// Throws when the question needs a reference answer and has none.
JudgeRequest single_judge_request(const MtBenchQuestion& q, const std::vector<std::string>& answers, int turn,
                                  const std::map<std::string, JudgePromptTemplate>& prompts);

/// The rating in a judgment, or nullopt when neither pattern matches (-1).
std::optional<double> parse_rating(const std::string& judgment);

/// Ratings (-1 = unparsed) per turn -> {"turn1", "turn2", "avg"}: {value,
/// stderr (sample std / sqrt n), samples} and "unparsed": {value, turn1,
/// turn2}.
nlohmann::json mtbench_scores(const std::vector<double>& turn1, const std::vector<double>& turn2);

}  // namespace qsweep::scoring
