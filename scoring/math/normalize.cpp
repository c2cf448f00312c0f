#include "scoring/math/normalize.h"

#include <stdexcept>
#include <utility>

#include "scoring/pyre.h"

namespace qsweep::scoring::math {

namespace {

/// Python str.replace(from, to): left to right, non-overlapping, one pass.
std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  std::size_t pos = 0;
  while (true) {
    const std::size_t hit = s.find(from, pos);
    if (hit == std::string_view::npos) break;
    out.append(s.substr(pos, hit - pos));
    out.append(to);
    pos = hit + from.size();
  }
  out.append(s.substr(pos));
  return out;
}

// The reference's SUBSTITUTIONS, in order (Python literals decoded: "\\$" is
// the two characters \$, r"\ " backslash-space).
const std::pair<std::string_view, std::string_view> kSubstitutions[] = {
    {"an ", ""},     {"a ", ""},      {".$", "$"},   {"\\$", ""},
    {"\\ ", ""},     {" ", ""},       {"mbox", "text"}, {",\\text{and}", ","},
    {"\\text{and}", ","}, {"\\text{m}", "\\text{}"},
};

// REMOVED_EXPRESSIONS, in order ("\\text{\ns}" holds a real newline).
const std::string_view kRemoved[] = {
    "square", "ways",    "integers", "dollars",  "mph",     "inches",   "ft",          "hours",
    "km",     "units",   "\\ldots",  "sue",      "points",  "feet",     "minutes",     "digits",
    "cents",  "degrees", "cm",       "gm",       "pounds",  "meters",   "meals",       "edges",
    "students", "childrentickets", "multiples", "\\text{s}", "\\text{.}", "\\text{\ns}", "\\text{}^2",
    "\\text{}^3", "\\text{\n}", "\\text{}", "\\mathrm{th}", "^\\circ", "^{\\circ}", "\\;", ",\\!",
    "{,}",    "\"",      "\\dots",
};

bool ascii_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

std::optional<std::string> last_boxed_only_string(std::string_view s) {
  static constexpr std::string_view kBoxedSpace = "\\boxed ";
  const std::size_t space = s.rfind(kBoxedSpace);
  if (space != std::string_view::npos) {
    // string.split("\\boxed ")[-1].split("$")[0]
    std::string_view tail = s.substr(space + kBoxedSpace.size());
    return std::string(kBoxedSpace) + std::string(tail.substr(0, tail.find('$')));
  }
  std::size_t idx = s.rfind("\\boxed");
  if (idx == std::string_view::npos) {
    idx = s.rfind("\\fbox");
    if (idx == std::string_view::npos) return std::nullopt;
  }
  int open = 0;
  for (std::size_t i = idx; i < s.size(); ++i) {
    if (s[i] == '{') ++open;
    if (s[i] == '}') {
      // Invariant of the reference: the count may go negative and never
      // returns to 0 then (a '}' before any '{').
      if (--open == 0) return std::string(s.substr(idx, i - idx + 1));
    }
  }
  return std::nullopt;
}

std::optional<std::string> remove_boxed(std::string_view s) {
  static constexpr std::string_view kSpace = "\\boxed ", kBrace = "\\boxed{";
  if (s.find(kSpace) != std::string_view::npos) {
    if (!s.starts_with(kSpace)) return std::nullopt;
    return std::string(s.substr(kSpace.size()));
  }
  if (!s.starts_with(kBrace) || s.empty() || s.back() != '}') return std::nullopt;
  // s[len(left):-1]; "\boxed{" alone cannot end with '}', so size >= 8.
  return std::string(s.substr(kBrace.size(), s.size() - kBrace.size() - 1));
}

std::string reference_answer(std::string_view solution) {
  const auto boxed = last_boxed_only_string(solution);
  if (!boxed) throw std::runtime_error("the solution has no closed \\boxed{...} or \\fbox{...}");
  const auto inner = remove_boxed(*boxed);
  if (!inner) throw std::runtime_error("remove_boxed: '" + *boxed + "' is not \\boxed{...}");
  return normalize_final_answer(*inner);
}

std::string unnormalized_answer(std::string_view generation) {
  static const PyRegex re(R"(Final Answer: The final answer is(.*?). I hope it is correct.)");
  const std::string text = std::string(generation) + "I hope it is correct.";
  const auto m = re.search(text);
  if (!m) return std::string(kInvalidAnswer);
  return python_strip((*m)[1]);
}

std::string normalize_final_answer(std::string_view answer) {
  // split("=")[-1]
  const std::size_t eq = answer.rfind('=');
  std::string s(eq == std::string_view::npos ? answer : answer.substr(eq + 1));
  for (const auto& [from, to] : kSubstitutions) s = replace_all(s, from, to);
  for (const auto expr : kRemoved) s = replace_all(s, expr, "");

  static const PyRegex dollars(R"((.*?)(\$)(.*?)(\$)(.*))");
  static const PyRegex text(R"((\\text\{)(.*?)(\}))");
  static const PyRegex textbf(R"((\\textbf\{)(.*?)(\}))");
  static const PyRegex overline(R"((\\overline\{)(.*?)(\}))");
  static const PyRegex boxed(R"((\\boxed\{)(.*)(\}))");
  static const PyRegex frac(R"((frac)([^{])(.))");
  static const PyRegex sqrt(R"((sqrt)([^{]))");
  s = dollars.sub_with([](const auto& g) { return "$" + g[3] + "$"; }, s);
  for (const PyRegex* re : {&text, &textbf, &overline, &boxed})
    s = re->sub_with([](const auto& g) { return g[2]; }, s);
  s = frac.sub_with([](const auto& g) { return "frac{" + g[2] + "}{" + g[3] + "}"; }, s);
  s = sqrt.sub_with([](const auto& g) { return "sqrt{" + g[2] + "}"; }, s);
  s = replace_all(s, "$", "");
  if (ascii_digits(replace_all(s, ",", ""))) s = replace_all(s, ",", "");
  return s;
}

}  // namespace qsweep::scoring::math
