#pragma once
// IFEval's per-doc scoring and aggregation: lm-eval v0.4.4
// lm_eval/tasks/leaderboard/ifeval/utils.py (process_results,
// test_instruction_following_strict / _loose, agg_inst_level_acc).

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace qsweep::scoring::ifeval {

/// The four per-doc results of utils.process_results.
struct DocResult {
  bool prompt_level_strict = false;   // all instructions followed (strict)
  std::vector<bool> inst_level_strict;  // one per instruction, in doc order
  bool prompt_level_loose = false;
  std::vector<bool> inst_level_loose;
};

/// The eight responses the loose test tries, in utils.py's order: r,
/// r.replace("*", ""), then without the first line, without the last line,
/// without both (lines split on "\n", rejoined with "\n", Python-stripped),
/// then those three with "*" removed.
std::vector<std::string> loose_variants(std::string_view response);

/// Scores one response against a doc {key, prompt, instruction_id_list,
/// kwargs}. Strict: `response.strip() != "" and check(response)` per
/// instruction; loose: any of loose_variants that is non-blank after strip
/// passes. Throws std::invalid_argument for a malformed doc or kwargs
/// (see make_checker).
DocResult process_results(const nlohmann::json& doc, std::string_view response);

/// agg_inst_level_acc: the mean over the flattened per-instruction results
/// (sum / count over all docs' instructions). Throws std::invalid_argument
/// when there is no instruction at all (Python: ZeroDivisionError).
double agg_inst_level_acc(const std::vector<std::vector<bool>>& items);

}  // namespace qsweep::scoring::ifeval
