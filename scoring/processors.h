#pragma once
// Built-in processors: the C++ counterparts of the Python functions lm-eval
// v0.4.4 task files name with `!function utils.NAME` (hellaswag/utils.py,
// winogrande/preprocess_winogrande.py, truthfulqa/utils.py,
// leaderboard/ifeval/utils.py: scoring/ifeval/). A task file names
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

}  // namespace qsweep::scoring
