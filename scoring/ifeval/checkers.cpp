// Each class below is one instructions.py class; the comment on check()
// gives the Python rule it follows. Regexes are Python `re` patterns run by
// PyRegex; flags are written inline ((?i) = re.IGNORECASE, (?m) =
// re.MULTILINE), which Python accepts at the start of a pattern too.
#include "scoring/ifeval/checkers.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <map>
#include <stdexcept>

#include "model/util/python_str.h"
#include "scoring/ifeval/text_units.h"
#include "scoring/metrics.h"
#include "scoring/pyre.h"

namespace qsweep::scoring::ifeval {

using nlohmann::json;

namespace {

[[noreturn]] void bad(const std::string& id, const std::string& msg) {
  throw std::invalid_argument("ifeval " + id + ": " + msg);
}

bool py_truthy(const json& v) {
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number_integer()) return v.get<long long>() != 0;
  if (v.is_number_float()) return v.get<double>() != 0.0;
  if (v.is_string()) return !v.get_ref<const std::string&>().empty();
  if (v.is_array() || v.is_object()) return !v.empty();
  return true;
}

/// The kwargs of one instruction after utils.py's `{k: v ... if v}`, checked
/// against the keyword arguments of the class's build_description.
class Kwargs {
 public:
  Kwargs(const std::string& id, const json& kwargs, std::vector<std::string> accepted) : id_(id) {
    if (!kwargs.is_null() && !kwargs.is_object()) bad(id, "kwargs must be an object, got " + kwargs.dump());
    if (kwargs.is_object())
      for (const auto& [k, v] : kwargs.items()) {
        if (!py_truthy(v)) continue;
        if (std::find(accepted.begin(), accepted.end(), k) == accepted.end())
          bad(id, "unexpected keyword argument '" + k + "'");
        values_[k] = v;
      }
  }
  bool has(const std::string& k) const { return values_.count(k) != 0; }
  /// A required int >= min (lm-eval draws a random one when it is missing or
  /// negative: refused here).
  long long integer(const std::string& k, long long min = 0) const {
    const json& v = get(k);
    if (!v.is_number_integer()) bad(id_, "'" + k + "' must be an integer, got " + v.dump());
    const long long n = v.get<long long>();
    if (n < min) bad(id_, "'" + k + "' = " + std::to_string(n) + " (lm-eval would draw a random value)");
    return n;
  }
  std::string string(const std::string& k) const {
    const json& v = get(k);
    if (!v.is_string()) bad(id_, "'" + k + "' must be a string, got " + v.dump());
    return v.get<std::string>();
  }
  std::vector<std::string> strings(const std::string& k) const {
    const json& v = get(k);
    if (!v.is_array()) bad(id_, "'" + k + "' must be a list of strings, got " + v.dump());
    std::vector<std::string> out;
    for (const auto& e : v) {
      if (!e.is_string()) bad(id_, "'" + k + "' must be a list of strings, got " + v.dump());
      out.push_back(e.get<std::string>());
    }
    return out;
  }
  const std::string& id() const { return id_; }

 private:
  const json& get(const std::string& k) const {
    const auto it = values_.find(k);
    if (it == values_.end()) bad(id_, "missing '" + k + "' (lm-eval would draw a random value)");
    return it->second;
  }
  std::string id_;
  std::map<std::string, json> values_;
};

/// _COMPARISON_RELATION: "less than" -> actual < n, "at least" -> actual >= n.
struct Relation {
  bool less_than = false;
  static Relation parse(const Kwargs& kw, const std::string& key) {
    const std::string r = kw.string(key);
    if (r == "less than") return {true};
    if (r == "at least") return {false};
    bad(kw.id(), "The supported relation for comparison must be in ('less than', 'at least'), but " + r +
                     " is given.");
  }
  bool holds(long long actual, long long threshold) const {
    return less_than ? actual < threshold : actual >= threshold;
  }
};

/// Python str.strip(chars) for ASCII `chars`.
std::string_view strip_chars(std::string_view s, std::string_view chars, bool left = true, bool right = true) {
  std::size_t b = 0, e = s.size();
  if (left)
    while (b < e && chars.find(s[b]) != std::string_view::npos) ++b;
  if (right)
    while (e > b && chars.find(s[e - 1]) != std::string_view::npos) --e;
  return s.substr(b, e - b);
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

/// Python str.split(sep) for a non-empty sep.
std::vector<std::string_view> split_on(std::string_view s, std::string_view sep) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (true) {
    const std::size_t hit = s.find(sep, pos);
    if (hit == std::string_view::npos) break;
    out.push_back(s.substr(pos, hit - pos));
    pos = hit + sep.size();
  }
  out.push_back(s.substr(pos));
  return out;
}

/// The first item of Python str.split() (runs of Unicode whitespace); "" if none.
std::string first_split_word(std::string_view s) {
  std::size_t i = 0;
  auto at_space = [&](std::size_t k, std::size_t* len) {
    const auto c = model::decode_utf8_at(s, k, len);
    return c && model::python_isspace(*c);
  };
  std::size_t len = 1;
  while (i < s.size() && at_space(i, &len)) i += len;
  const std::size_t b = i;
  while (i < s.size() && !at_space(i, &len)) i += len;
  return std::string(s.substr(b, i - b));
}

/// Python json.loads also takes the constants NaN, Infinity and -Infinity;
/// nlohmann does not. Outside string literals they become 0 (keeping the
/// sign of -Infinity), so that `accept` gives Python's answer for them.
std::string python_json_constants(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool in_string = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < s.size()) out += s[++i];
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    if (s.compare(i, 3, "NaN") == 0) {
      out += '0';
      i += 2;
    } else if (s.compare(i, 8, "Infinity") == 0) {
      out += '0';
      i += 7;
    } else {
      out += c;
    }
  }
  return out;
}

class Fn final : public Checker {
 public:
  explicit Fn(std::function<bool(std::string_view)> f) : f_(std::move(f)) {}
  bool check(std::string_view r) const override { return f_(r); }

 private:
  std::function<bool(std::string_view)> f_;
};

std::unique_ptr<Checker> fn(std::function<bool(std::string_view)> f) { return std::make_unique<Fn>(std::move(f)); }

using Builder = std::unique_ptr<Checker> (*)(const std::string& id, const json& kwargs);

// ---- keywords ----

std::unique_ptr<Checker> keyword_existence(const std::string& id, const json& j) {
  // KeywordChecker: every keyword (a regex!) found by re.search(IGNORECASE).
  const Kwargs kw(id, j, {"keywords"});
  auto res = std::make_shared<std::vector<PyRegex>>();
  for (const auto& k : kw.strings("keywords")) res->emplace_back("(?i)" + k);
  return fn([res](std::string_view r) {
    return std::all_of(res->begin(), res->end(), [&](const PyRegex& p) { return p.matches(r); });
  });
}

std::unique_ptr<Checker> keyword_frequency(const std::string& id, const json& j) {
  // KeywordFrequencyChecker: len(re.findall(keyword.strip(), r, IGNORECASE)) vs frequency.
  const Kwargs kw(id, j, {"keyword", "frequency", "relation"});
  auto re = std::make_shared<PyRegex>("(?i)" + model::python_strip(kw.string("keyword")));
  const long long n = kw.integer("frequency");
  const Relation rel = Relation::parse(kw, "relation");
  return fn([=](std::string_view r) { return rel.holds(static_cast<long long>(re->findall(r).size()), n); });
}

std::unique_ptr<Checker> forbidden_words(const std::string& id, const json& j) {
  // ForbiddenWords: no re.search(r"\b" + w + r"\b", r, IGNORECASE).
  const Kwargs kw(id, j, {"forbidden_words"});
  auto res = std::make_shared<std::vector<PyRegex>>();
  for (const auto& w : kw.strings("forbidden_words")) res->emplace_back("(?i)\\b" + w + "\\b");
  return fn([res](std::string_view r) {
    return std::none_of(res->begin(), res->end(), [&](const PyRegex& p) { return p.matches(r); });
  });
}

std::unique_ptr<Checker> letter_frequency(const std::string& id, const json& j) {
  // LetterFrequencyChecker: Counter(r.lower())[letter] vs let_frequency.
  const Kwargs kw(id, j, {"letter", "let_frequency", "let_relation"});
  // lm-eval keeps the letter only when it is one character whose lower()
  // is a-z (else random.choice(ascii_letters)); qsweep counts the given
  // character in both cases (docs/ifeval.md).
  const std::string letter = python_lower(model::python_strip(kw.string("letter")));
  if (python_len(letter) != 1) bad(id, "'letter' must be one character, got '" + letter + "'");
  const long long n = kw.integer("let_frequency");
  const Relation rel = Relation::parse(kw, "let_relation");
  return fn([=](std::string_view r) {
    const std::string low = python_lower(r);
    long long count = 0;
    for (std::size_t p = low.find(letter); p != std::string::npos; p = low.find(letter, p + letter.size())) ++count;
    return rel.holds(count, n);
  });
}

// ---- language ----

std::unique_ptr<Checker> response_language(const std::string& id, const json& j) {
  // ResponseLanguageChecker: langdetect.detect(r) == language; detection
  // failure counts as followed.
  const Kwargs kw(id, j, {"language"});
  const std::string lang = kw.string("language");
  return fn([lang](std::string_view r) {
    const auto d = detect_language(r);
    return !d || *d == lang;
  });
}

// ---- length_constraints ----

std::unique_ptr<Checker> number_sentences(const std::string& id, const json& j) {
  // NumberOfSentences: punkt sentence count vs num_sentences.
  const Kwargs kw(id, j, {"num_sentences", "relation"});
  const long long n = kw.integer("num_sentences");
  const Relation rel = Relation::parse(kw, "relation");
  return fn([=](std::string_view r) { return rel.holds(static_cast<long long>(count_sentences(r)), n); });
}

std::unique_ptr<Checker> number_paragraphs(const std::string& id, const json& j) {
  // ParagraphChecker: re.split(r"\s?\*\*\*\s?", r); an empty first or last
  // piece is not counted, an empty middle one fails; count == num_paragraphs.
  const Kwargs kw(id, j, {"num_paragraphs"});
  const long long n = kw.integer("num_paragraphs");
  return fn([n](std::string_view r) {
    static const PyRegex sep(R"(\s?\*\*\*\s?)");
    const auto pieces = sep.split(r);
    long long count = static_cast<long long>(pieces.size());
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      if (!model::python_strip(pieces[i]).empty()) continue;
      if (i == 0 || i + 1 == pieces.size()) --count;
      else return false;
    }
    return count == n;
  });
}

std::unique_ptr<Checker> number_words(const std::string& id, const json& j) {
  // NumberOfWords: RegexpTokenizer(r"\w+") token count vs num_words.
  const Kwargs kw(id, j, {"num_words", "relation"});
  const long long n = kw.integer("num_words");
  const Relation rel = Relation::parse(kw, "relation");
  return fn([=](std::string_view r) { return rel.holds(static_cast<long long>(count_words(r)), n); });
}

std::unique_ptr<Checker> nth_paragraph_first_word(const std::string& id, const json& j) {
  // ParagraphFirstWordCheck: paragraphs = r.split("\n\n") (re.split of a
  // literal); N = non-blank ones; paragraphs[nth-1] (raw list index) must be
  // non-blank; its first whitespace word, lstrip("'") then lstrip('"'),
  // lower-cased up to the first of . , ? ! ' " == first_word.lower(); N ==
  // num_paragraphs.
  const Kwargs kw(id, j, {"num_paragraphs", "nth_paragraph", "first_word"});
  const long long num = kw.integer("num_paragraphs");
  const long long nth = kw.integer("nth_paragraph", 1);
  if (nth > num) bad(id, "nth_paragraph > num_paragraphs (lm-eval would draw a random value)");
  const std::string want = python_lower(kw.string("first_word"));
  return fn([=](std::string_view r) {
    const auto paragraphs = split_on(r, "\n\n");
    long long count = static_cast<long long>(paragraphs.size());
    for (const auto& p : paragraphs)
      if (model::python_strip(p).empty()) --count;
    if (nth > count) return false;
    const std::string para = model::python_strip(paragraphs[static_cast<std::size_t>(nth - 1)]);
    if (para.empty()) return false;
    const std::string word = first_split_word(para);
    std::string w(strip_chars(strip_chars(word, "'", true, false), "\"", true, false));
    const std::size_t cut = w.find_first_of(".,?!'\"");
    const std::string first = python_lower(w.substr(0, cut));
    return count == num && first == want;
  });
}

// ---- detectable_content ----

std::unique_ptr<Checker> number_placeholders(const std::string& id, const json& j) {
  // PlaceholderChecker: len(re.findall(r"\[.*?\]", r)) >= num_placeholders.
  const Kwargs kw(id, j, {"num_placeholders"});
  const long long n = kw.integer("num_placeholders");
  return fn([n](std::string_view r) {
    static const PyRegex p(R"(\[.*?\])");
    return static_cast<long long>(p.findall(r).size()) >= n;
  });
}

std::unique_ptr<Checker> postscript(const std::string& id, const json& j) {
  // PostscriptChecker: on r.lower(), re.findall(pattern, MULTILINE) non-empty;
  // "P.P.S" -> \s*p\.\s?p\.\s?s.*$, "P.S." -> \s*p\.\s?s\..*$, else
  // \s* + marker.lower() + .*$ (the marker is a regex).
  const Kwargs kw(id, j, {"postscript_marker"});
  const std::string marker = model::python_strip(kw.string("postscript_marker"));
  std::string pattern;
  if (marker == "P.P.S") pattern = R"(\s*p\.\s?p\.\s?s.*$)";
  else if (marker == "P.S.") pattern = R"(\s*p\.\s?s\..*$)";
  else pattern = R"(\s*)" + python_lower(marker) + R"(.*$)";
  auto re = std::make_shared<PyRegex>("(?m)" + pattern);
  return fn([re](std::string_view r) { return re->matches(python_lower(r)); });
}

// ---- detectable_format ----

std::unique_ptr<Checker> number_bullet_lists(const std::string& id, const json& j) {
  // BulletListChecker: #(^\s*\*[^\*].*$) + #(^\s*-.*$) (MULTILINE) == num_bullets.
  const Kwargs kw(id, j, {"num_bullets"});
  const long long n = kw.integer("num_bullets");
  return fn([n](std::string_view r) {
    static const PyRegex star(R"((?m)^\s*\*[^\*].*$)");
    static const PyRegex dash(R"((?m)^\s*-.*$)");
    return static_cast<long long>(star.findall(r).size() + dash.findall(r).size()) == n;
  });
}

std::unique_ptr<Checker> constrained_response(const std::string& id, const json& j) {
  // ConstrainedResponseChecker: r.strip() contains one of the three answers.
  const Kwargs kw(id, j, {});
  return fn([](std::string_view r) {
    const std::string s = model::python_strip(r);
    for (const char* o : {"My answer is yes.", "My answer is no.", "My answer is maybe."})
      if (s.find(o) != std::string::npos) return true;
    return false;
  });
}

std::unique_ptr<Checker> number_highlighted_sections(const std::string& id, const json& j) {
  // HighlightSectionChecker: findall(r"\*[^\n\*]*\*") with
  // h.strip("*").strip() non-empty, plus findall(r"\*\*[^\n\*]*\*\*") with
  // h.removeprefix("**").removesuffix("**").strip() non-empty; >= num_highlights.
  const Kwargs kw(id, j, {"num_highlights"});
  const long long n = kw.integer("num_highlights");
  return fn([n](std::string_view r) {
    static const PyRegex single(R"(\*[^\n\*]*\*)");
    static const PyRegex dbl(R"(\*\*[^\n\*]*\*\*)");
    long long count = 0;
    for (const auto& m : single.findall(r))
      if (!model::python_strip(strip_chars(m[0], "*")).empty()) ++count;
    for (const auto& m : dbl.findall(r)) {
      std::string_view h = m[0];
      if (starts_with(h, "**")) h.remove_prefix(2);
      if (ends_with(h, "**")) h.remove_suffix(2);
      if (!model::python_strip(h).empty()) ++count;
    }
    return count >= n;
  });
}

std::unique_ptr<Checker> multiple_sections(const std::string& id, const json& j) {
  // SectionChecker: len(re.split(r"\s?" + spliter + r"\s?\d+\s?", r)) - 1 >= num_sections.
  const Kwargs kw(id, j, {"section_spliter", "num_sections"});
  const std::string spliter = model::python_strip(kw.string("section_spliter"));
  const long long n = kw.integer("num_sections");
  auto re = std::make_shared<PyRegex>(R"(\s?)" + spliter + R"(\s?\d+\s?)");
  return fn([=](std::string_view r) {
    // split yields matches + 1 pieces (plus group values, if the spliter has groups)
    const long long pieces = static_cast<long long>(re->findall(r).size()) + 1;
    return pieces - 1 >= n;
  });
}

std::unique_ptr<Checker> json_format(const std::string& id, const json& j) {
  // JsonFormat: strip, removeprefix ```json / ```Json / ```JSON / ```,
  // removesuffix ```, strip, then json.loads succeeds (Python's parser
  // takes NaN / Infinity / -Infinity too).
  const Kwargs kw(id, j, {});
  return fn([](std::string_view r) {
    std::string s = model::python_strip(r);
    std::string_view v = s;
    for (std::string_view p : {"```json", "```Json", "```JSON", "```"})
      if (starts_with(v, p)) v.remove_prefix(p.size());
    if (ends_with(v, "```")) v.remove_suffix(3);
    return json::accept(python_json_constants(model::python_strip(v)));
  });
}

std::unique_ptr<Checker> title(const std::string& id, const json& j) {
  // TitleChecker: some re.findall(r"<<[^\n]+>>") with
  // t.lstrip("<").rstrip(">").strip() non-empty.
  const Kwargs kw(id, j, {});
  return fn([](std::string_view r) {
    static const PyRegex p(R"(<<[^\n]+>>)");
    for (const auto& m : p.findall(r)) {
      std::string_view t = strip_chars(m[0], "<", true, false);
      t = strip_chars(t, ">", false, true);
      if (!model::python_strip(t).empty()) return true;
    }
    return false;
  });
}

// ---- combination ----

std::unique_ptr<Checker> two_responses(const std::string& id, const json& j) {
  // TwoResponsesChecker: r.split("******"); a blank piece is allowed only
  // first or last; exactly two non-blank pieces, different after strip.
  const Kwargs kw(id, j, {});
  return fn([](std::string_view r) {
    const auto pieces = split_on(r, "******");
    std::vector<std::string_view> valid;
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      if (model::python_strip(pieces[i]).empty()) {
        if (i != 0 && i + 1 != pieces.size()) return false;
      } else {
        valid.push_back(pieces[i]);
      }
    }
    return valid.size() == 2 && model::python_strip(valid[0]) != model::python_strip(valid[1]);
  });
}

std::unique_ptr<Checker> repeat_prompt(const std::string& id, const json& j) {
  // RepeatPromptThenAnswer: r.strip().lower().startswith(prompt_to_repeat.strip().lower()).
  const Kwargs kw(id, j, {"prompt_to_repeat"});
  const std::string prompt = python_lower(model::python_strip(kw.string("prompt_to_repeat")));
  return fn([prompt](std::string_view r) { return starts_with(python_lower(model::python_strip(r)), prompt); });
}

// ---- startend ----

std::unique_ptr<Checker> end_checker(const std::string& id, const json& j) {
  // EndChecker: r.strip().strip('"').lower().endswith(end_phrase.strip().lower()).
  const Kwargs kw(id, j, {"end_phrase"});
  const std::string end = python_lower(model::python_strip(kw.string("end_phrase")));
  return fn([end](std::string_view r) {
    const std::string s = model::python_strip(r);
    return ends_with(python_lower(strip_chars(s, "\"")), end);
  });
}

std::unique_ptr<Checker> quotation(const std::string& id, const json& j) {
  // QuotationChecker: s = r.strip(); len(s) > 1 and s[0] == s[-1] == '"'.
  const Kwargs kw(id, j, {});
  return fn([](std::string_view r) {
    const std::string s = model::python_strip(r);
    return s.size() > 1 && s.front() == '"' && s.back() == '"';
  });
}

// ---- change_case ----

std::unique_ptr<Checker> capital_word_frequency(const std::string& id, const json& j) {
  // CapitalWordFrequencyChecker: #(nltk.word_tokenize tokens with isupper())
  // vs capital_frequency.
  const Kwargs kw(id, j, {"capital_frequency", "capital_relation"});
  const long long n = kw.integer("capital_frequency", std::numeric_limits<long long>::min());
  const Relation rel = Relation::parse(kw, "capital_relation");
  return fn([=](std::string_view r) {
    long long count = 0;
    for (const auto& t : word_tokens(r))
      if (python_isupper(t)) ++count;
    return rel.holds(count, n);
  });
}

std::unique_ptr<Checker> english_capital(const std::string& id, const json& j) {
  // CapitalLettersEnglishChecker: r.isupper() and langdetect == "en";
  // detection failure counts as followed.
  const Kwargs kw(id, j, {});
  return fn([](std::string_view r) {
    if (!python_isupper(r)) return false;
    const auto d = detect_language(r);
    return !d || *d == "en";
  });
}

std::unique_ptr<Checker> english_lowercase(const std::string& id, const json& j) {
  // LowercaseLettersEnglishChecker: r.islower() and langdetect == "en";
  // detection failure counts as followed.
  const Kwargs kw(id, j, {});
  return fn([](std::string_view r) {
    if (!python_islower(r)) return false;
    const auto d = detect_language(r);
    return !d || *d == "en";
  });
}

// ---- punctuation ----

std::unique_ptr<Checker> no_comma(const std::string& id, const json& j) {
  // CommaChecker: not re.search(r"\,", r) (ASCII comma only).
  const Kwargs kw(id, j, {});
  return fn([](std::string_view r) { return r.find(',') == std::string_view::npos; });
}

struct Entry {
  const char* id;
  Builder build;
};
// INSTRUCTION_DICT of instructions_registry.py, in its order.
const Entry kRegistry[] = {
    {"keywords:existence", keyword_existence},
    {"keywords:frequency", keyword_frequency},
    {"keywords:forbidden_words", forbidden_words},
    {"keywords:letter_frequency", letter_frequency},
    {"language:response_language", response_language},
    {"length_constraints:number_sentences", number_sentences},
    {"length_constraints:number_paragraphs", number_paragraphs},
    {"length_constraints:number_words", number_words},
    {"length_constraints:nth_paragraph_first_word", nth_paragraph_first_word},
    {"detectable_content:number_placeholders", number_placeholders},
    {"detectable_content:postscript", postscript},
    {"detectable_format:number_bullet_lists", number_bullet_lists},
    {"detectable_format:constrained_response", constrained_response},
    {"detectable_format:number_highlighted_sections", number_highlighted_sections},
    {"detectable_format:multiple_sections", multiple_sections},
    {"detectable_format:json_format", json_format},
    {"detectable_format:title", title},
    {"combination:two_responses", two_responses},
    {"combination:repeat_prompt", repeat_prompt},
    {"startend:end_checker", end_checker},
    {"change_case:capital_word_frequency", capital_word_frequency},
    {"change_case:english_capital", english_capital},
    {"change_case:english_lowercase", english_lowercase},
    {"punctuation:no_comma", no_comma},
    {"startend:quotation", quotation},
};

}  // namespace

const std::vector<std::string>& instruction_ids() {
  static const std::vector<std::string> ids = [] {
    std::vector<std::string> out;
    for (const auto& e : kRegistry) out.emplace_back(e.id);
    return out;
  }();
  return ids;
}

std::unique_ptr<Checker> make_checker(const std::string& id, const json& kwargs) {
  for (const auto& e : kRegistry)
    if (id == e.id) {
      try {
        return e.build(id, kwargs);
      } catch (const std::exception& ex) {
        const std::string m = ex.what();
        if (m.rfind("ifeval", 0) == 0) throw;
        bad(id, m);  // e.g. a keyword that is not a valid regex
      }
    }
  throw std::invalid_argument("ifeval: unknown instruction id '" + id + "'");
}

}  // namespace qsweep::scoring::ifeval
