#pragma once
// The answer equivalence of lm-eval v0.4.4's leaderboard_math_hard
// (utils.is_equiv: sympy's parse_latex on both answers, then
// simplify(a - b) == 0; a parse error means "not equivalent") on GiNaC: a
// small parser for the LaTeX subset sympy's grammar accepts, building GiNaC
// expressions, and a zero test by normal() of the expanded difference.
// docs/math.md lists the grammar and every known disagreement with sympy.

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <ginac/ginac.h>

namespace qsweep::scoring::math {

/// Symbols by name, shared by the two answers of one comparison (GiNaC
/// symbols are equal only when they are the same object).
using SymbolTable = std::map<std::string, GiNaC::symbol>;

/// Parses `latex` as sympy's parse_latex would, into a GiNaC expression;
/// nullopt where sympy raises (syntax errors, relations, top-level commas,
/// empty input) or where the result would be one sympy cannot subtract
/// (\infty: oo - oo is nan, so no such answer can compare equal; see
/// docs/math.md). Never throws.
std::optional<GiNaC::ex> parse_latex(std::string_view latex, SymbolTable& symbols);

/// is_equiv(x1, x2): both parse and their difference is zero: normal(expand
/// (a - b)) is 0, or, when the difference has no symbols, it evaluates to 0
/// at 60 significant digits (|value| < 1e-45). False on any parse failure or
/// GiNaC error (lm-eval returns False for every exception). Thread-safe:
/// calls are serialized (GiNaC's global state is not thread-safe), whereas
/// parse_latex and the expressions it returns belong to one thread.
bool is_equiv(std::string_view x1, std::string_view x2);

}  // namespace qsweep::scoring::math
