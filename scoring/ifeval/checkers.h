#pragma once
// The 25 IFEval instruction checkers of lm-eval v0.4.4
// (lm_eval/tasks/ifeval/instructions.py, registered in
// instructions_registry.py), re-implemented in C++. A checker is built from
// an instruction id and its kwargs as the doc gives them and answers
// `check_following(response)`. See docs/ifeval.md for each rule and where
// the result can differ from the Python reference.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace qsweep::scoring::ifeval {

class Checker {
 public:
  virtual ~Checker() = default;
  /// instructions.py `check_following(value)` for one response string.
  virtual bool check(std::string_view response) const = 0;
};

/// The instruction ids of INSTRUCTION_DICT, in its order.
const std::vector<std::string>& instruction_ids();

/// Builds the checker of `id` as lm-eval's `instruction_cls(id)` +
/// `build_description(**kwargs)`: kwargs whose value is falsy in Python
/// (null, 0, "", [], false) are dropped first (utils.py `if v`). Throws
/// std::invalid_argument for an unknown id, a kwarg the checker does not take
/// (Python's TypeError), a bad value (Python's ValueError: an unknown
/// relation), or a missing / out-of-range value for which lm-eval would draw
/// a random one (e.g. no num_words, nth_paragraph > num_paragraphs): such a
/// doc cannot be scored reproducibly. Exception: a `letter` that is not one
/// ASCII letter (lm-eval draws a random letter) is counted as given.
std::unique_ptr<Checker> make_checker(const std::string& id, const nlohmann::json& kwargs);

}  // namespace qsweep::scoring::ifeval
