#pragma once
// The text analysis IFEval's checkers take from Python libraries, done with
// Debian C++ libraries (docs/ifeval.md, "Libraries"):
//   NLTK punkt sentence count      -> ICU sentence BreakIterator (en@ss=standard)
//   nltk.word_tokenize             -> ICU word BreakIterator + NLTK-like joins
//   langdetect.detect              -> CLD2 (DetectLanguageSummary), codes mapped
//   str.isupper / str.islower      -> ICU Uppercase / Lowercase / Lt properties
// Every function takes UTF-8 text and is thread-safe (no shared state that is
// written after initialization).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qsweep::scoring::ifeval {

/// instructions_util.count_sentences: the number of sentences of `text`.
/// Line breaks count as spaces (punkt only splits after . ? !), sentence
/// segments that are only whitespace are not counted; "" has 0 sentences.
std::size_t count_sentences(std::string_view text);

/// instructions_util.count_words: `len(RegexpTokenizer(r"\w+").tokenize(text))`
/// (Python `re` `\w+` matches, via PyRegex).
std::size_t count_words(std::string_view text);

/// nltk.word_tokenize, approximated: the ICU word segments that are words,
/// numbers or ideographs (not spaces or punctuation runs), where segments
/// joined with no space by one of `- / + = * ~ ^` are one token (NLTK keeps
/// "WELL-KNOWN" together), a ':' not followed by a digit splits a token
/// (NLTK: "ABC:DEF" -> "ABC", ":", "DEF"), and a trailing English clitic with an ASCII
/// apostrophe ('s 'm 'd 'll 're 've n't, any case) is its own token
/// (NLTK: "DON'T" -> "DO", "N'T").
std::vector<std::string> word_tokens(std::string_view text);

/// Python `str.isupper()`: at least one cased character and no lowercase or
/// titlecase one. `str.islower()`: at least one cased character and no
/// uppercase or titlecase one.
bool python_isupper(std::string_view text);
bool python_islower(std::string_view text);

/// langdetect.detect(text) stand-in: std::nullopt where langdetect raises
/// LangDetectException ("No features in text": no letter left after removing
/// URLs and e-mail addresses), else CLD2's top language as a langdetect code
/// (CLD2 "iw" -> "he", "zh" -> "zh-cn", "zh-Hant" -> "zh-tw"; other codes as
/// CLD2 gives them; short indeterminate text is "en", as CLD2 reports it).
std::optional<std::string> detect_language(std::string_view text);

}  // namespace qsweep::scoring::ifeval
