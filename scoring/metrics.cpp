#include "scoring/metrics.h"

#include "model/tokenizer/utf8.h"

#include <clocale>
#include <cmath>
#include <cwctype>
#include <locale.h>
#include <stdexcept>
#include <wctype.h>

#include "scoring/pyre.h"

namespace qsweep::scoring {

std::size_t argmax(std::span<const double> v) {
  if (v.empty()) throw std::invalid_argument("argmax of an empty sequence");
  std::size_t best = 0;
  if (std::isnan(v[0])) return 0;
  for (std::size_t i = 1; i < v.size(); ++i) {
    if (std::isnan(v[i])) return i;
    if (v[i] > v[best]) best = i;
  }
  return best;
}

std::size_t python_len(std::string_view s) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const int len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 1;
    bool ok = i + len <= s.size();
    for (int k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    i += ok ? len : 1;
    ++n;
  }
  return n;
}

MultipleChoiceScore score_multiple_choice(std::span<const double> lls,
                                          const std::vector<std::string>& choices,
                                          std::size_t gold) {
  if (lls.size() != choices.size())
    throw std::invalid_argument("multiple_choice: " + std::to_string(lls.size()) +
                                " loglikelihoods for " + std::to_string(choices.size()) + " choices");
  std::vector<double> normed(lls.size());
  for (std::size_t i = 0; i < lls.size(); ++i)
    normed[i] = lls[i] / static_cast<double>(python_len(choices[i]));
  MultipleChoiceScore s;
  s.pred = argmax(lls);
  s.pred_norm = argmax(normed);
  s.acc = s.pred == gold ? 1.0 : 0.0;
  s.acc_norm = s.pred_norm == gold ? 1.0 : 0.0;
  return s;
}

double truthfulqa_mc2(std::span<const double> lls, std::span<const int> labels) {
  if (lls.size() != labels.size())
    throw std::invalid_argument("truthfulqa_mc2: " + std::to_string(lls.size()) +
                                " loglikelihoods for " + std::to_string(labels.size()) + " labels");
  std::size_t split = labels.size();
  for (std::size_t i = 0; i < labels.size(); ++i)
    if (labels[i] == 0) {
      split = i;
      break;
    }
  if (split == labels.size()) throw std::invalid_argument("truthfulqa_mc2: no label is 0");
  // Same operation order as utils.py: sum(p_true) + sum(p_false), then each
  // p_true divided by it, then summed left to right.
  double sum_true = 0, sum_false = 0;
  for (std::size_t i = 0; i < split; ++i) sum_true += std::exp(lls[i]);
  for (std::size_t i = split; i < lls.size(); ++i) sum_false += std::exp(lls[i]);
  const double denom = sum_true + sum_false;
  double mc2 = 0;
  for (std::size_t i = 0; i < split; ++i) mc2 += std::exp(lls[i]) / denom;
  return mc2;
}

double winogrande_acc(std::span<const double> continuation_lls, std::size_t gold) {
  return argmax(continuation_lls) == gold ? 1.0 : 0.0;
}

std::size_t winogrande_gold(std::string_view answer) {
  if (answer == "1") return 0;
  if (answer == "2") return 1;
  throw std::invalid_argument("winogrande: answer must be \"1\" or \"2\", got \"" +
                              std::string(answer) + "\"");
}

ExactMatchOptions gsm8k_exact_match_options() {
  ExactMatchOptions o;
  o.regexes_to_ignore = {",", "\\$", "(?s).*#### ", "\\.$"};
  o.ignore_case = true;
  o.ignore_punctuation = false;
  return o;
}

namespace {


locale_t utf8_locale() {
  static const locale_t loc = [] {
    locale_t l = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
    if (!l) l = newlocale(LC_CTYPE_MASK, "C.utf8", static_cast<locale_t>(0));
    return l;
  }();
  return loc;
}

std::string delete_ascii(std::string s, std::string_view chars) {
  std::string out;
  out.reserve(s.size());
  for (char c : s)
    if (chars.find(c) == std::string_view::npos) out += c;
  return out;
}

}  // namespace

std::string python_lower(std::string_view s) {
  const locale_t loc = utf8_locale();
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
      out += static_cast<char>(b0 >= 'A' && b0 <= 'Z' ? b0 + 32 : b0);
      ++i;
      continue;
    }
    int len = (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
    char32_t cp = len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
    bool ok = len != 0 && i + len <= s.size();
    for (int k = 1; ok && k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      ok = (b & 0xC0) == 0x80;
      cp = (cp << 6) | (b & 0x3F);
    }
    if (!ok) {  // an invalid byte passes through unchanged
      out += s[i];
      ++i;
      continue;
    }
    if (cp == 0x130) {
      out += "i\xCC\x87";  // U+0069 U+0307, Python's full lowercase mapping
    } else {
      const char32_t lower = loc ? static_cast<char32_t>(towlower_l(static_cast<wint_t>(cp), loc)) : cp;
      model::utf8::append(out, uint32_t(lower));
    }
    i += len;
  }
  return out;
}

std::string exact_match_normalize(std::string_view s, const ExactMatchOptions& opts) {
  std::string out(s);
  for (const auto& p : opts.regexes_to_ignore) out = PyRegex(p).sub("", out);
  if (opts.ignore_case) out = python_lower(out);
  if (opts.ignore_punctuation) out = delete_ascii(std::move(out), R"(!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~)");
  if (opts.ignore_numbers) out = delete_ascii(std::move(out), "0123456789");
  return out;
}

double exact_match(std::string_view prediction, std::string_view reference,
                   const ExactMatchOptions& opts) {
  return exact_match_normalize(prediction, opts) == exact_match_normalize(reference, opts) ? 1.0 : 0.0;
}

}  // namespace qsweep::scoring
