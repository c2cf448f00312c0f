#pragma once
// Open LLM Leaderboard v2 tasks of lm-eval v0.4.4 (SPECS B7, B8, B11, B12):
// their offline readers (data_format leaderboard_bbh, gpqa_zip, musr) and
// their `!function` processors (gpqa.process_docs, mmlu_pro.doc_to_text,
// mmlu_pro.doc_to_choice, musr.doc_to_text), plus the MMLU-Pro authors'
// chain-of-thought answer extraction. See docs/leaderboard_v2.md.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace qsweep::scoring {

struct TaskConfig;

// ---- readers ----

/// The subtask of a data file: dataset_kwargs.subtask_names[stem] when the
/// task file maps it, else the file's stem.
std::string subtask_of_file(const TaskConfig& task, const std::filesystem::path& file);

/// leaderboard_bbh: a BIG-Bench-Hard task file {examples: [{input, target}]}
/// -> docs {subtask, input, target, description, choices} (description and
/// choices from the settings file dataset_kwargs.subtask_settings, relative to
/// `dataset_dir`); the settings file itself {subtasks: {NAME: {description,
/// choices, fewshot: [{input, target}]}}} -> its few-shot docs, same shape,
/// subtasks in the file's order. Throws naming the file and the field.
std::vector<nlohmann::json> read_leaderboard_bbh(const TaskConfig& task, const std::filesystem::path& dataset_dir,
                                                 const std::filesystem::path& file);

/// gpqa_zip: the CSV members dataset_kwargs.zip_members (list, in order) of
/// an encrypted zip, decrypted in memory with dataset_kwargs.zip_password
/// (nothing is written to disk) -> one doc per CSV row {column: value (""
/// -> null), subtask: subtask_names[member stem] or the stem}.
std::vector<nlohmann::json> read_gpqa_zip(const TaskConfig& task, const std::filesystem::path& file);

/// musr: either the MuSR viewer format [{context, questions: [{question,
/// answer, choices}]}] (one doc per question) or Hugging Face TAUR-Lab/MuSR
/// rows {narrative, question, choices: "['a', 'b']" (a Python list literal),
/// answer_index, answer_choice} (.json array or .jsonl) -> {subtask, narrative,
/// question, choices (list), answer_index, answer_choice}.
std::vector<nlohmann::json> read_musr(const TaskConfig& task, const std::filesystem::path& file);

/// Parses a Python list literal of str (ast.literal_eval of "['a', \"b\"]":
/// single/double quotes, \\ \' \" \n \t \r \xhh \uXXXX \UXXXXXXXX escapes,
/// adjacent literals concatenated, trailing comma). Throws
/// std::invalid_argument naming the offset for anything else.
std::vector<std::string> parse_python_str_list(std::string_view text);

// ---- processors ----

/// gpqa utils.preprocess: None -> " "; strip; " [title]" -> ". "; drop
/// "[...]"; "  " -> " " (one pass).
std::string gpqa_preprocess(const nlohmann::json& value);
/// gpqa utils.process_docs over the docs in order with one Python RNG
/// random.seed(seed) stream: choices = preprocessed [Incorrect 1..3,
/// Correct], random.shuffle, choice1..4 and answer "(A)".."(D)" (index of
/// the first choice equal to the correct one) added to each doc.
std::vector<nlohmann::json> gpqa_process_docs(const std::vector<nlohmann::json>& docs, std::uint64_t seed = 0);

/// leaderboard mmlu_pro utils.doc_to_text: question + "\n" + "L. option\n"
/// per option + "Answer:".
std::string mmlu_pro_doc_to_text(const nlohmann::json& doc);
/// The MMLU-Pro authors' CoT question (evaluate_from_local.py
/// format_cot_example without answer): "Question:\n" + question +
/// "\nOptions:\n" + "L. option\n" per option + "Answer: Let's think step by step."
std::string mmlu_pro_cot_doc_to_text(const nlohmann::json& doc);
/// ["A", "B", ...] as many as the doc's options.
nlohmann::json mmlu_pro_doc_to_choice(const nlohmann::json& doc);
/// musr utils.doc_to_text: narrative + "\n\n" + question + "\n\n" + "i - c\n"
/// per choice + "\nAnswer:".
std::string musr_doc_to_text(const nlohmann::json& doc);

/// The MMLU-Pro authors' extraction cascade (evaluate_from_local.py): the
/// first `answer is \(?([A-J])\)?`; else the first line matching
/// `.*[aA]nswer:\s*([A-J])` (its last such letter); else the last standalone
/// letter A-J of the text. nullopt when none matches.
std::optional<std::string> mmlu_pro_extract_answer(std::string_view text);
/// Their pred as compute_accuracy.py scores it: the extraction, else the
/// random fallback random.seed(12345); randint(0, n_options - 1) as a letter.
std::string mmlu_pro_pred(std::string_view text, std::size_t n_options);

}  // namespace qsweep::scoring
