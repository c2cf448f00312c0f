#include "scoring/ifeval/text_units.h"

#include <memory>
#include <stdexcept>

#include <cld2/public/compact_lang_det.h>
#include <unicode/brkiter.h>
#include <unicode/locid.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>

#include "model/tokenizer/utf8.h"
#include "scoring/pyre.h"

namespace qsweep::scoring::ifeval {

namespace {

icu::UnicodeString to_unicode(std::string_view s) {
  return icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), static_cast<int32_t>(s.size())));
}

std::string to_utf8(const icu::UnicodeString& u) {
  std::string out;
  u.toUTF8String(out);
  return out;
}

/// Calls f(code point) for each code point of `s`; invalid bytes are skipped
/// (Python strings cannot hold them).
template <class F>
void for_each_code_point(std::string_view s, F&& f) {
  int32_t i = 0;
  const auto n = static_cast<int32_t>(s.size());
  while (i < n) {
    UChar32 c;
    U8_NEXT(s.data(), i, n, c);
    if (c >= 0) f(c);
  }
}

std::unique_ptr<icu::BreakIterator> make_iterator(bool sentence, const icu::UnicodeString& text) {
  UErrorCode st = U_ZERO_ERROR;
  // en@ss=standard: ICU's English sentence-break suppressions (no break after
  // "Mr.", "e.g." ...), the nearest ICU has to punkt's abbreviation list.
  std::unique_ptr<icu::BreakIterator> it(
      sentence ? icu::BreakIterator::createSentenceInstance(icu::Locale("en@ss=standard"), st)
               : icu::BreakIterator::createWordInstance(icu::Locale::getEnglish(), st));
  if (U_FAILURE(st) || !it) throw std::runtime_error(std::string("ICU break iterator: ") + u_errorName(st));
  it->setText(text);
  return it;
}

bool is_joiner(const icu::UnicodeString& seg) {
  if (seg.length() != 1) return false;
  switch (seg.charAt(0)) {
    case u'-': case u'/': case u'+': case u'=': case u'*': case u'~': case u'^': return true;
    default: return false;
  }
}

bool ends_with_ci(const std::string& s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  for (std::size_t i = 0; i < suffix.size(); ++i) {
    char a = s[s.size() - suffix.size() + i];
    if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
    if (a != suffix[i]) return false;
  }
  return true;
}

/// Splits NLTK's English clitics off a token (treebank ENDING_QUOTES rules).
void push_with_clitic(std::vector<std::string>& out, std::string tok) {
  static const std::string_view clitics[] = {"'ll", "'re", "'ve", "'s", "'m", "'d"};
  if (tok.size() > 3 && ends_with_ci(tok, "n't")) {
    out.push_back(tok.substr(0, tok.size() - 3));
    out.push_back(tok.substr(tok.size() - 3));
    return;
  }
  for (auto c : clitics) {
    // NLTK needs a character other than ' before the clitic.
    if (tok.size() > c.size() && ends_with_ci(tok, c) && tok[tok.size() - c.size() - 1] != '\'') {
      out.push_back(tok.substr(0, tok.size() - c.size()));
      out.push_back(tok.substr(tok.size() - c.size()));
      return;
    }
  }
  out.push_back(std::move(tok));
}

bool is_line_break(UChar32 c) {
  return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x85 || c == 0x2028 || c == 0x2029;
}

}  // namespace

std::size_t count_sentences(std::string_view text) {
  // Punkt only ends a sentence after . ? ! (never at a bare line break), so
  // line breaks become spaces before ICU sees them (ICU would break there).
  icu::UnicodeString u = to_unicode(text);
  for (int32_t i = 0; i < u.length(); ++i)
    if (is_line_break(u.charAt(i))) u.setCharAt(i, u' ');
  auto it = make_iterator(true, u);
  std::size_t n = 0;
  int32_t start = it->first();
  for (int32_t end = it->next(); end != icu::BreakIterator::DONE; start = end, end = it->next()) {
    bool content = false;
    for (int32_t i = start; i < end && !content; ++i) content = !u_isUWhiteSpace(u.charAt(i));
    if (content) ++n;
  }
  return n;
}

std::size_t count_words(std::string_view text) {
  static const PyRegex word(R"(\w+)");
  return word.findall(text).size();
}

std::vector<std::string> word_tokens(std::string_view text) {
  const icu::UnicodeString u = to_unicode(text);
  auto it = make_iterator(false, u);
  struct Seg {
    int32_t start, end;
    bool word;
  };
  std::vector<Seg> segs;
  int32_t start = it->first();
  for (int32_t end = it->next(); end != icu::BreakIterator::DONE; start = end, end = it->next())
    segs.push_back({start, end, it->getRuleStatus() >= UBRK_WORD_NONE_LIMIT});

  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < segs.size()) {
    if (!segs[i].word) {
      ++i;
      continue;
    }
    // Invariant: [tok_start, tok_end) is a run of word segments joined by
    // single joiner characters.
    const int32_t tok_start = segs[i].start;
    int32_t tok_end = segs[i].end;
    std::size_t j = i + 1;
    while (j + 1 < segs.size() && !segs[j].word && segs[j + 1].word &&
           is_joiner(icu::UnicodeString(u, segs[j].start, segs[j].end - segs[j].start))) {
      tok_end = segs[j + 1].end;
      j += 2;
    }
    // ICU keeps "ABC:DEF" as one word; NLTK splits a ':' that is not
    // followed by a digit (treebank PUNCTUATION rule `([:,])([^\d])`).
    const std::string tok = to_utf8(icu::UnicodeString(u, tok_start, tok_end - tok_start));
    std::size_t from = 0;
    for (std::size_t c = tok.find(':'); c != std::string::npos; c = tok.find(':', c + 1)) {
      if (c + 1 < tok.size() && tok[c + 1] >= '0' && tok[c + 1] <= '9') continue;
      if (c > from) push_with_clitic(out, tok.substr(from, c - from));
      from = c + 1;
    }
    if (from < tok.size()) push_with_clitic(out, tok.substr(from));
    i = j;
  }
  return out;
}

bool python_isupper(std::string_view text) {
  bool cased = false, ok = true;
  for_each_code_point(text, [&](UChar32 c) {
    if (u_isULowercase(c) || u_istitle(c)) ok = false;
    else if (u_isUUppercase(c)) cased = true;
  });
  return ok && cased;
}

bool python_islower(std::string_view text) {
  bool cased = false, ok = true;
  for_each_code_point(text, [&](UChar32 c) {
    if (u_isUUppercase(c) || u_istitle(c)) ok = false;
    else if (u_isULowercase(c)) cased = true;
  });
  return ok && cased;
}

std::optional<std::string> detect_language(std::string_view text) {
  // langdetect (detector.py) first removes URLs and e-mail addresses, then
  // maps every character that is not a letter to a space (ngram.py
  // normalize: ASCII non-letters, U+00A0 U+00AB U+00B0 U+00BB and General
  // Punctuation); with no letter left it raises "No features in text".
  static const PyRegex url(R"(https?://[-_.?&~;+=/#0-9A-Za-z]{1,2076})");
  static const PyRegex mail(R"([-_.0-9A-Za-z]{1,64}@[-_.0-9A-Za-z]{1,255})");
  const std::string cleaned = mail.sub("", url.sub("", text));
  bool letter = false;
  for_each_code_point(cleaned, [&](UChar32 c) {
    if (c >= 0x2000 && c <= 0x206F) return;
    if (c == 0xA0 || c == 0xAB || c == 0xB0 || c == 0xBB) return;
    if (u_isalpha(c)) letter = true;
  });
  if (!letter) return std::nullopt;

  // CLD2 wants valid UTF-8: invalid bytes become U+FFFD first.
  const std::string valid = model::utf8::valid(text) ? std::string(text) : model::utf8::lossy(text);
  CLD2::Language top3[3];
  int percent3[3];
  int text_bytes = 0;
  bool reliable = false;
  const CLD2::Language lang = CLD2::DetectLanguageSummary(valid.data(), static_cast<int>(valid.size()),
                                                          /*is_plain_text=*/true, top3, percent3,
                                                          &text_bytes, &reliable);
  if (lang == CLD2::UNKNOWN_LANGUAGE) return std::string("en");
  const std::string code = CLD2::LanguageCode(lang);
  if (code == "iw") return std::string("he");
  if (code == "zh") return std::string("zh-cn");
  if (code == "zh-Hant") return std::string("zh-tw");
  return code;
}

}  // namespace qsweep::scoring::ifeval
