#pragma once
// The answer handling of lm-eval v0.4.4's leaderboard_math_hard
// (lm_eval/tasks/leaderboard/math/utils.py, from the Minerva paper's
// appendix D): the \boxed answer of a reference solution, the "Final Answer:"
// of a generation, and normalize_final_answer. Re-implemented from the
// reference's behaviour; docs/math.md lists every rule.

#include <optional>
#include <string>
#include <string_view>

namespace qsweep::scoring::math {

/// "[invalidanswer]": get_unnormalized_answer's value when a generation has
/// no "Final Answer: The final answer is ... I hope it is correct.".
inline constexpr std::string_view kInvalidAnswer = "[invalidanswer]";

/// last_boxed_only_string: when "\boxed " (with a space) occurs anywhere,
/// "\boxed " + the text after its last occurrence up to the first '$';
/// else the last "\boxed" (or, if none, the last "\fbox") up to the brace
/// that closes the first '{' after it (brace counting, no escapes);
/// nullopt (Python None) when there is neither or the braces never close.
std::optional<std::string> last_boxed_only_string(std::string_view s);

/// remove_boxed: "\boxed X" -> "X" when s contains "\boxed "; else
/// "\boxed{X}" -> "X". nullopt where Python's assert fails (s does not start
/// with the expected prefix, or does not end with '}').
std::optional<std::string> remove_boxed(std::string_view s);

/// process_docs' answer: normalize_final_answer(remove_boxed(
/// last_boxed_only_string(solution))). Throws std::runtime_error where the
/// reference raises (no \boxed: TypeError on None; a failed assert).
std::string reference_answer(std::string_view solution);

/// get_unnormalized_answer: text + "I hope it is correct.", then the first
/// match of `Final Answer: The final answer is(.*?). I hope it is correct.`
/// (Python re, no flags: '.' stops at "\n"), group 1 stripped; else
/// "[invalidanswer]".
std::string unnormalized_answer(std::string_view generation);

/// normalize_final_answer, in the reference's order: the text after the last
/// '=', the SUBSTITUTIONS, the REMOVED_EXPRESSIONS, the five extraction
/// regexes ($...$, \text{}, \textbf{}, \overline{}, \boxed{}), the \frac /
/// \sqrt shorthand regexes, '$' removed, and commas removed when what is left
/// without commas is all digits (Python str.isdigit on ASCII digits).
std::string normalize_final_answer(std::string_view answer);

}  // namespace qsweep::scoring::math
