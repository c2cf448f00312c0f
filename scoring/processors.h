#pragma once
// Built-in processors: the C++ counterparts of the Python functions lm-eval
// v0.4.4 task files name with `!function utils.NAME` (hellaswag/utils.py,
// winogrande/preprocess_winogrande.py, truthfulqa/utils.py,
// leaderboard/math/utils.py, leaderboard/ifeval/utils.py: scoring/ifeval/). A task file names
// them as `!function hellaswag.process_docs` etc. See docs/scoring.md,
// "Processors".

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace qsweep::scoring {

/// Where a processor may be used.
enum class ProcessorSlot { doc_to_text, doc_to_target, doc_to_choice, process_docs, process_results };
const char* to_string(ProcessorSlot s);

/// The processor names valid in `slot` (e.g. {"winogrande.doc_to_text"}).
std::vector<std::string> known_processors(ProcessorSlot slot);
/// True when `name` is a processor of `slot`.
bool is_known_processor(ProcessorSlot slot, const std::string& name);

/// A doc_to_* processor applied to one doc: winogrande.doc_to_text -> int,
/// winogrande.doc_to_target -> string, winogrande.doc_to_choice -> list of 2
/// strings. Throws std::runtime_error for an unknown name or a bad doc.
nlohmann::json apply_doc_function(const std::string& name, const nlohmann::json& doc);

/// A process_docs processor over a whole split (same length, same order).
/// Throws std::runtime_error naming the doc index for a bad doc.
std::vector<nlohmann::json> apply_process_docs(const std::string& name,
                                               const std::vector<nlohmann::json>& docs);

// ---- the pieces, exposed for tests ----

/// Python `str.capitalize()`: the first character upper-cased, the rest
/// lower-cased. Case mapping covers ASCII, Latin-1, Latin Extended-A (pairs),
/// Greek and Cyrillic basic letters; other characters are kept as they are.
std::string python_capitalize(std::string_view s);
/// hellaswag utils.preprocess: strip; " [title]" -> ". "; remove every
/// non-greedy "[...]"; "  " -> " " (one pass).
std::string hellaswag_preprocess(std::string_view text);
/// hellaswag utils.process_docs for one doc: adds query, choices, gold to the
/// original fields.
nlohmann::json hellaswag_process_doc(const nlohmann::json& doc);

/// math.process_docs (lm-eval leaderboard/math/utils.py process_docs): keeps
/// the docs whose level is "Level 5" (lighteval/MATH-Hard is that subset of
/// hendrycks MATH), in order, each with its fields plus
/// answer = normalize_final_answer(remove_boxed(last_boxed_only_string(
/// solution))). Throws naming the doc index where the reference raises.
std::vector<nlohmann::json> math_process_docs(const std::vector<nlohmann::json>& docs);
/// One doc of math_process_docs, without the level filter.
nlohmann::json math_process_doc(const nlohmann::json& doc);

/// math.process_results for one generation: the "Final Answer" text (or
/// "[invalidanswer]"), its normalized form, and exact_match =
/// is_equiv(answer, doc["answer"]) (GiNaC in place of sympy: docs/math.md).
struct MathResult {
  std::string unnormalized;
  std::string answer;
  double exact_match = 0;
};
MathResult math_process_results(const nlohmann::json& doc, const std::string& generation);
/// The task-file names of the math processor.
inline bool is_math_processor(const std::string& p) {
  return p == "math.process_results";
}

}  // namespace qsweep::scoring
