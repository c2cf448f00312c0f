#pragma once
// Per-document metrics of lm-eval v0.4.4 (SPECS.md B0-B6): multiple_choice
// acc / acc_norm, truthfulqa mc2, winogrande partial scoring, exact_match.
// Each returns the per-document value that lm-eval averages (aggregate.h).

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace qsweep::scoring {

/// numpy.argmax over `values`: the index of the first maximum; a NaN counts
/// as the maximum (the first NaN wins). Throws std::invalid_argument if empty.
std::size_t argmax(std::span<const double> values);

/// Python `len()` of a UTF-8 string: the number of code points (an invalid
/// byte counts as one).
std::size_t python_len(std::string_view utf8);

/// One multiple_choice document (lm-eval ConfigurableTask.process_results).
struct MultipleChoiceScore {
  std::size_t pred = 0;       // argmax_i ll_i
  std::size_t pred_norm = 0;  // argmax_i ll_i / python_len(choice_i)
  double acc = 0;             // 1.0 if pred == gold else 0.0
  double acc_norm = 0;        // 1.0 if pred_norm == gold else 0.0
};

/// `lls[i]` = loglikelihood of target_delimiter + choices[i]; `choices` are the
/// doc_to_choice strings WITHOUT the delimiter (their code-point length
/// normalizes acc_norm). A gold outside [0, n) scores 0 (lm-eval warns and
/// scores the doc as wrong). Throws std::invalid_argument if the sizes differ.
MultipleChoiceScore score_multiple_choice(std::span<const double> lls,
                                          const std::vector<std::string>& choices,
                                          std::size_t gold);

/// truthfulqa_mc2 (truthfulqa/utils.py process_results_mc2): split at the
/// first 0 label (labels are 1...1 0...0), p = exp(ll),
/// sum_true(p / (sum_true p + sum_false p)). NaN when every p underflows to 0,
/// as numpy. Throws std::invalid_argument if no label is 0 (Python:
/// ValueError) or the sizes differ.
double truthfulqa_mc2(std::span<const double> lls, std::span<const int> labels);

/// winogrande (partial scoring): `continuation_lls[i]` = loglikelihood of
/// " " + rest-of-sentence given fewshot + sentence[:blank] + option_i;
/// 1.0 if argmax == gold else 0.0.
double winogrande_acc(std::span<const double> continuation_lls, std::size_t gold);

/// winogrande's gold index from the dataset `answer` field: "1" -> 0, "2" -> 1
/// (throws std::invalid_argument otherwise).
std::size_t winogrande_gold(std::string_view answer);

/// Options of lm-eval's exact_match (exact_match_hf_evaluate).
struct ExactMatchOptions {
  std::vector<std::string> regexes_to_ignore;  // Python re patterns, re.sub(p, "", s) in order
  bool ignore_case = false;                    // Python str.lower()
  bool ignore_punctuation = false;             // delete string.punctuation (ASCII)
  bool ignore_numbers = false;                 // delete string.digits
};

/// gsm8k.yaml v0.4.4: ignore_case, not ignore_punctuation, regexes_to_ignore
/// [",", "\$", "(?s).*#### ", "\.$"].
ExactMatchOptions gsm8k_exact_match_options();

/// 1.0 if `prediction` and `reference` are equal after applying `opts` to
/// both (regexes first, then case, punctuation, digits), else 0.0.
double exact_match(std::string_view prediction, std::string_view reference,
                   const ExactMatchOptions& opts);

/// The normalization exact_match applies to each side (exposed for tests).
std::string exact_match_normalize(std::string_view s, const ExactMatchOptions& opts);

/// Python `str.lower()` on UTF-8: full Unicode simple lowercase mapping
/// (glibc C.UTF-8 towlower), U+0130 -> "i\u0307" as Python; Greek final sigma
/// is not special-cased (Python maps a word-final capital sigma to U+03C2).
std::string python_lower(std::string_view utf8);

}  // namespace qsweep::scoring
