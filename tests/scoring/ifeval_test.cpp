// IFEval (scoring/ifeval/, docs/ifeval.md): per-checker goldens written by
// hand from the rules of lm-eval v0.4.4 instructions.py (at least three
// responses that follow and three that do not, per checker), the kwargs
// handling, the loose variants, the metrics through score_eval_set with the
// shipped task file on a hand-computed set, and the prompts of the real data.
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "scoring/eval_set.h"
#include "scoring/ifeval/checkers.h"
#include "scoring/ifeval/process_results.h"
#include "scoring/ifeval/text_units.h"
#include "scoring/results.h"
#include "scoring/results_spec.h"
#include "tests/scoring/scoring_test_util.h"
#include "tests/testutil.h"

namespace qsweep::scoring::ifeval {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

struct Case {
  const char* id;
  const char* kwargs;  // JSON
  std::vector<std::string> follow;
  std::vector<std::string> not_follow;
};

// Hand-written goldens. Comments give the reference's reading where it is
// not obvious.
const std::vector<Case> kCases = {
    {"keywords:existence", R"({"keywords": ["banana", "Apple"]})",
     {"I like BANANA and apple pie.", "bananas; apples", "An apple a day, a banana a week"},
     {"I like apples.", "pineapple only",  // "apple" is in "pineapple", "banana" is missing
      ""}},
    {"keywords:existence", R"({"keywords": ["colou?r"]})",  // keywords are regexes
     {"What a color!", "COLOUR", "watercolors"},
     {"colr", "hue", "c o l o r"}},
    {"keywords:frequency", R"({"keyword": "cat", "frequency": 2, "relation": "at least"})",
     {"cat cat", "The Cat sat with another CAT.", "concatenate cats"},  // substring matches count
     {"one cat", "dog", "c a t"}},
    {"keywords:frequency", R"({"keyword": " the ", "frequency": 2, "relation": "less than"})",  // keyword stripped
     {"the end", "no article", ""},
     {"the the", "The theme", "THE THE THE"}},
    {"keywords:forbidden_words", R"({"forbidden_words": ["bad", "evil"]})",
     {"A good day.", "badge and devilish", "Nothing here"},  // \b...\b: whole words only
     {"That is BAD.", "evil, pure evil", "not-bad"}},
    {"keywords:letter_frequency", R"({"letter": "z", "let_frequency": 2, "let_relation": "at least"})",
     {"Zz", "pizza", "ZIZZ"},
     {"z", "no such letter", "sss"}},
    {"keywords:letter_frequency", R"({"letter": "E", "let_frequency": 3, "let_relation": "less than"})",
     {"tree", "ab", "E e"},  // the letter is lower-cased, the response too
     {"eee", "Eleven", "EEEE"}},
    {"keywords:letter_frequency", R"({"letter": "#", "let_frequency": 2, "let_relation": "at least"})",
     // lm-eval draws a random letter for "#"; qsweep counts "#" (docs/ifeval.md)
     {"## x", "#a#", "C# and F#"},
     {"# x", "none", "letters"}},
    {"language:response_language", R"({"language": "de"})",
     {"Das ist ein schöner Tag und wir gehen heute gemeinsam in den Park, um dort zu spielen.",
      "Ich habe heute leider keine Zeit, weil ich noch sehr lange arbeiten muss.",
      "12345 !!! 678"},  // no letters: langdetect raises, which counts as followed
     {"This is an English sentence about the weather today and the plans for tomorrow.",
      "Ceci est une phrase en français sur le temps qu'il fait aujourd'hui et demain.",
      "Questo è un testo scritto in italiano per la prova del rilevamento della lingua."}},
    {"length_constraints:number_sentences", R"({"num_sentences": 3, "relation": "less than"})",
     {"One sentence.", "First. Second!", "Mr. Smith went home. He slept."},  // no break after "Mr."
     {"One. Two. Three.", "Is it? Yes! Sure. Fine.", "Line one.\nLine two.\nLine three."}},
    {"length_constraints:number_sentences", R"({"num_sentences": 2, "relation": "at least"})",
     {"Hi there. Bye now.", "Really? Yes.", "A b c. D e f. G h i."},
     {"Just one sentence here.", "Heading\nno punctuation at all",  // a line break alone ends no sentence
      ""}},
    {"length_constraints:number_paragraphs", R"({"num_paragraphs": 2})",
     {"First part.\n***\nSecond part.", "A *** B", "***\nA\n***\nB\n***"},  // blank first/last pieces dropped
     {"Only one paragraph.", "A\n***\n\n***\nB",  // a blank middle piece fails
      "A *** B *** C"}},
    {"length_constraints:number_words", R"({"num_words": 5, "relation": "at least"})",
     {"one two three four five", "It's a well-known fact.",  // \w+: It s a well known fact
      "a_b c d e f"},
     {"one two three four", "Hello, world!", "12 34"}},
    {"length_constraints:number_words", R"({"num_words": 3, "relation": "less than"})",
     {"hi there", "", "!!! ..."},
     {"a b c", "don't stop",  // don, t, stop
      "x y z w"}},
    {"length_constraints:nth_paragraph_first_word",
     R"({"num_paragraphs": 3, "nth_paragraph": 2, "first_word": "Summary"})",
     {"Intro.\n\nSummary. It works.\n\nEnd.", "A\n\n\"summary\" is quoted\n\nC", "x\n\nSUMMARY, then\n\ny"},
     {"Intro.\n\nSummary here.\n\nEnd.\n\nExtra.", "Intro.\n\nSummaries differ.\n\nEnd.",
      "Intro.\n\nSummary: it works.\n\nEnd.",  // ':' is not cut off: "summary:"
      "Summary\n\nIntro\n\nEnd",
      // paragraph 2 is indexed in the raw split list, blank pieces included
      "A\n\n\n\nSummary x\n\nC"}},
    {"detectable_content:number_placeholders", R"({"num_placeholders": 2})",
     {"[name] at [address]", "[a][b][c]", "Dear [name], see [ ]."},
     {"[name] only", "no brackets", "[[nested]]"}},  // \[.*?\] takes "[[nested]" once
    {"detectable_content:postscript", R"({"postscript_marker": "P.S."})",
     {"Hello.\nP.S. bye", "text p.s. lower works", "P.P.S. more"},  // "p.s." is inside "p.p.s."
     {"PS no dots", "P.S without final dot", ""}},
    {"detectable_content:postscript", R"({"postscript_marker": "P.P.S"})",
     {"P.P.S hi", "p. p. s note", "x\nP.P.S."},
     {"P.S. only", "PPS here", "P P S"}},
    {"detectable_format:number_bullet_lists", R"({"num_bullets": 2})",
     {"* one\n* two", "- a\n- b", "Intro\n* a\n  - b"},
     {"* one", "* a\n* b\n* c", "**bold**\n**bold**"}},
    {"detectable_format:constrained_response", "{}",
     {"My answer is yes.", "  Well... My answer is maybe. ", "I think My answer is no. indeed"},
     {"my answer is yes.", "My answer is yes", "Yes."}},
    {"detectable_format:number_highlighted_sections", R"({"num_highlights": 2})",
     {"*one* and *two*", "**bold** text *it*",  // "**" pairs are empty, "*it*" and "**bold**" count
      "*a* *b* *c*"},
     {"*one*", "* * and *x*", "*multi\nline*"}},
    {"detectable_format:multiple_sections", R"({"section_spliter": "Section", "num_sections": 2})",
     {"Section 1\nA\nSection 2\nB", "Intro Section 1 a Section 2 b", "Section 1\nSection 2\nSection 3"},
     {"Section 1 only", "SECTION 1\nSECTION 2",  // case-sensitive
      "Section one Section two"}},
    {"detectable_format:json_format", "{}",
     {"{\"a\": 1}", "```json\n{\"a\": [1, 2]}\n```", "  [1, 2, 3]  ", "42", "```JSON\n\"str\"\n```",
      "```json\n{\"a\": 1}",  // no closing fence is fine
      "[NaN, -Infinity, \"NaN\"]"},  // Python's json takes these constants
     {"{a: 1}", "Here is JSON: {\"a\": 1}", "{\"a\": 1,}", "", "nan", "[NaNa]", "{\"Infinity\": x}"}},
    {"detectable_format:title", "{}",
     {"<<My Title>>\nbody", "text <<a>> more", "<<<x>>>"},
     {"<<>>", "<< >>", "<<title\n>>", "<title>"}},
    {"combination:two_responses", "{}",
     {"A\n******\nB", "******A******B******", "First answer ****** Second answer"},
     {"A ****** A", "A ****** B ****** C", "A ************ B",  // a blank middle piece
      "only one"}},
    {"combination:repeat_prompt", R"({"prompt_to_repeat": "Write a poem. "})",
     {"Write a poem.\nRoses are red.", "  write a POEM. ok", "WRITE A POEM."},
     {"Sure! Write a poem.", "Write a poem", "Write  a poem."}},
    {"startend:end_checker", R"({"end_phrase": "Any other questions?"})",
     {"Bye. Any other questions?", "\"text any other questions?\"", "x ANY OTHER QUESTIONS?  \n"},
     {"Any other questions? Thanks.", "Any other question?", "Any other questions"}},
    {"startend:quotation", "{}",
     {"\"quoted\"", "  \"a\"  ", "\"\""},
     {"\"", "'single'", "\xE2\x80\x9C" "curly" "\xE2\x80\x9D"}},
    {"change_case:capital_word_frequency", R"({"capital_frequency": 2, "capital_relation": "at least"})",
     {"NASA and the FBI", "I LOVE it", "DON'T"},  // NLTK: DO + N'T
     {"Only NASA here", "WELL-KNOWN fact",  // one hyphenated token
      "No caps at all"}},
    {"change_case:capital_word_frequency", R"({"capital_frequency": 3, "capital_relation": "less than"})",
     {"A B", "none", "ABC-def GHI"},
     {"A B C", "THE END IS NEAR", "I'M OK NOW"}},  // I + 'M + OK + NOW
    {"change_case:english_capital", "{}",
     {"THIS IS AN ENGLISH SENTENCE ABOUT THE WEATHER TODAY AND THE PLANS FOR TOMORROW.",
      "I AM WRITING THIS WHOLE RESPONSE IN CAPITAL LETTERS BECAUSE THAT IS WHAT YOU ASKED FOR.",
      "HELLO WORLD, HOW ARE YOU DOING TODAY? I HOPE EVERYTHING IS GOING WELL WITH YOUR FAMILY."},
     {"This is not all caps.", "DAS IST EIN DEUTSCHER SATZ, UND ER IST GANZ SICHER NICHT ENGLISCH GESCHRIEBEN.",
      "12345"}},  // no cased character: isupper() is False
    {"change_case:english_lowercase", "{}",
     {"this is all lowercase english text about the weather today and the plans for tomorrow.",
      "hello world, how are you doing today? i hope everything is going well with your family.",
      "i am writing this whole response in lowercase letters because that is what you asked for."},
     {"This has a capital.", "das ist ein deutscher satz, und er ist ganz sicher nicht englisch geschrieben.",
      "123 456"}},
    {"punctuation:no_comma", "{}",
     {"No commas here.", "Use a semicolon; fine.", "Full-width \xEF\xBC\x8C comma"},
     {"a, b", ",", "1,000"}},
};

TEST(IfevalCheckers, HandWrittenGoldens) {
  std::set<std::string> covered;
  for (const auto& c : kCases) {
    SCOPED_TRACE(std::string(c.id) + " " + c.kwargs);
    const auto checker = make_checker(c.id, json::parse(c.kwargs));
    EXPECT_GE(c.follow.size(), 3u);
    EXPECT_GE(c.not_follow.size(), 3u);
    for (const auto& r : c.follow) EXPECT_TRUE(checker->check(r)) << "follows: " << r;
    for (const auto& r : c.not_follow) EXPECT_FALSE(checker->check(r)) << "does not follow: " << r;
    covered.insert(c.id);
  }
  // every registered instruction has goldens
  EXPECT_EQ(covered.size(), 25u);
  for (const auto& id : instruction_ids()) EXPECT_TRUE(covered.count(id)) << id;
}

std::string error_of(const std::string& id, const std::string& kwargs) {
  try {
    make_checker(id, json::parse(kwargs));
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(IfevalCheckers, KwargsAsUtilsPyPassesThem) {
  // Falsy values are dropped (utils.py `if v`): the HF rows carry every key.
  const json hf = {{"num_highlights", nullptr}, {"relation", nullptr}, {"keywords", nullptr},
                   {"prompt_to_repeat", ""},    {"num_words", 0},       {"letter", nullptr}};
  EXPECT_TRUE(make_checker("punctuation:no_comma", hf)->check("x"));
  EXPECT_TRUE(make_checker("punctuation:no_comma", json())->check("x"));
  json with = hf;
  with["num_highlights"] = 1;
  EXPECT_TRUE(make_checker("detectable_format:number_highlighted_sections", with)->check("*a*"));
  // A key the class does not take is Python's TypeError.
  EXPECT_NE(error_of("punctuation:no_comma", R"({"num_words": 3})").find("unexpected keyword argument 'num_words'"),
            std::string::npos);
  EXPECT_NE(error_of("length_constraints:number_words", R"({"num_words": 3, "relation": "at most"})")
                .find("but at most is given"),
            std::string::npos);
  // Missing or out-of-range values make lm-eval draw random ones: refused.
  EXPECT_NE(error_of("length_constraints:number_words", R"({"relation": "at least"})").find("missing 'num_words'"),
            std::string::npos);
  EXPECT_NE(error_of("detectable_content:number_placeholders", R"({"num_placeholders": -1})").find("random"),
            std::string::npos);
  EXPECT_NE(error_of("length_constraints:nth_paragraph_first_word",
                     R"({"num_paragraphs": 2, "nth_paragraph": 3, "first_word": "a"})")
                .find("random"),
            std::string::npos);
  EXPECT_NE(error_of("keywords:existence", R"({"keywords": ["(unclosed"]})").find("keywords:existence"),
            std::string::npos);
  EXPECT_NE(error_of("keywords:key_sentences", "{}").find("unknown instruction id"), std::string::npos);
}

TEST(IfevalTextUnits, SentencesWordsCaseAndLanguage) {
  EXPECT_EQ(count_sentences(""), 0u);
  EXPECT_EQ(count_sentences("   "), 0u);
  EXPECT_EQ(count_sentences("One. Two? Three!"), 3u);
  EXPECT_EQ(count_sentences("Mr. Smith met Mrs. Jones. Then left."), 2u);
  EXPECT_EQ(count_sentences("Dr. Who left."), 2u);  // punkt: likely 1 (docs/ifeval.md)
  EXPECT_EQ(count_sentences("Pi is 3.14 exactly. Yes."), 2u);
  EXPECT_EQ(count_words("It's a well-known_fact, 3.5 times."), 8u);  // It s a well known_fact 3 5 times
  EXPECT_EQ(word_tokens("DON'T stop"), (std::vector<std::string>{"DO", "N'T", "stop"}));
  EXPECT_EQ(word_tokens("NOTE:READ THIS"), (std::vector<std::string>{"NOTE", "READ", "THIS"}));
  EXPECT_EQ(word_tokens("I can't, they're WELL-KNOWN."),
            (std::vector<std::string>{"I", "ca", "n't", "they", "'re", "WELL-KNOWN"}));
  EXPECT_TRUE(python_isupper("HELLO, WORLD 123"));
  EXPECT_FALSE(python_isupper("HELLO World"));
  EXPECT_FALSE(python_isupper("123 !"));
  EXPECT_TRUE(python_isupper("ÉTÉ"));
  EXPECT_TRUE(python_islower("été 42"));
  EXPECT_FALSE(python_islower("ǅ"));  // titlecase
  EXPECT_EQ(detect_language("12 + 34 = 46 !!!"), std::nullopt);
  EXPECT_EQ(detect_language("see https://example.com or mail a@b.org"), std::optional<std::string>("en"));
  EXPECT_EQ(detect_language("https://example.com/path 2024"), std::nullopt);
  EXPECT_EQ(detect_language("שלום, זהו משפט בעברית שנכתב לצורך בדיקה של זיהוי השפה."),
            std::optional<std::string>("he"));
  EXPECT_EQ(detect_language("यह एक हिंदी वाक्य है और मैं आज बाजार जा रहा हूँ क्योंकि मुझे सब्जियाँ खरीदनी हैं।"),
            std::optional<std::string>("hi"));
}

TEST(IfevalLoose, TheEightVariantsInOrder) {
  EXPECT_EQ(loose_variants("**Title**\nBody *text*\nThe end"),
            (std::vector<std::string>{"**Title**\nBody *text*\nThe end", "Title\nBody text\nThe end",
                                      "Body *text*\nThe end", "**Title**\nBody *text*", "Body *text*",
                                      "Body text\nThe end", "Title\nBody text", "Body text"}));
  // One line: every line-removing variant is empty (Python slices clamp).
  EXPECT_EQ(loose_variants(" a*b "), (std::vector<std::string>{" a*b ", " ab ", "", "", "", "", "", ""}));
  // Two lines: removing both leaves nothing; stripping happens before "*" removal.
  EXPECT_EQ(loose_variants("x\n * y"), (std::vector<std::string>{"x\n * y", "x\n  y", "* y", "x", "", " y", "x", ""}));
}

json doc(std::vector<std::string> ids, std::vector<json> kwargs, const std::string& prompt = "p") {
  return json{{"key", 1}, {"prompt", prompt}, {"instruction_id_list", ids}, {"kwargs", kwargs}};
}

TEST(IfevalLoose, StrictAndLooseResults) {
  // The last line breaks the end phrase: strict fails, without the last line it follows.
  auto r = process_results(doc({"startend:end_checker"}, {json{{"end_phrase", "Any other questions?"}}}),
                           "Bye. Any other questions?\n*Note: none*");
  EXPECT_EQ(r.inst_level_strict, std::vector<bool>{false});
  EXPECT_EQ(r.inst_level_loose, std::vector<bool>{true});
  EXPECT_FALSE(r.prompt_level_strict);
  EXPECT_TRUE(r.prompt_level_loose);
  // Only the "*"-removed response is JSON.
  r = process_results(doc({"detectable_format:json_format"}, {json::object()}), "**{\"a\": 1}**");
  EXPECT_EQ(r.inst_level_strict, std::vector<bool>{false});
  EXPECT_EQ(r.inst_level_loose, std::vector<bool>{true});
  // A preamble line with a comma: the first-line-removed variant has none.
  r = process_results(doc({"punctuation:no_comma", "startend:quotation"}, {json::object(), json::object()}),
                      "Sure, here it is:\n\"No commas here\"");
  EXPECT_EQ(r.inst_level_strict, (std::vector<bool>{false, false}));
  EXPECT_EQ(r.inst_level_loose, (std::vector<bool>{true, true}));
  EXPECT_TRUE(r.prompt_level_loose);
  // A blank response follows nothing, not even "less than" rules that "" satisfies.
  r = process_results(doc({"length_constraints:number_words", "punctuation:no_comma"},
                          {json{{"num_words", 3}, {"relation", "less than"}}, json::object()}),
                      " \n\t ");
  EXPECT_EQ(r.inst_level_strict, (std::vector<bool>{false, false}));
  EXPECT_EQ(r.inst_level_loose, (std::vector<bool>{false, false}));
  EXPECT_FALSE(r.prompt_level_loose);
  // But a non-blank response of one line is checked as is.
  r = process_results(doc({"length_constraints:number_words"}, {json{{"num_words", 3}, {"relation", "less than"}}}),
                      "two words");
  EXPECT_TRUE(r.prompt_level_strict);
  EXPECT_THROW(process_results(json{{"prompt", "x"}}, "r"), std::invalid_argument);
  EXPECT_THROW(process_results(doc({"punctuation:no_comma", "punctuation:no_comma"}, {json::object()}), "r"),
               std::invalid_argument);
}

TEST(IfevalAggregation, FlattenedInstLevelMean) {
  EXPECT_DOUBLE_EQ(agg_inst_level_acc({{true, true}, {false, true}, {false}}), 0.6);
  EXPECT_THROW(agg_inst_level_acc({{}, {}}), std::invalid_argument);
}

// The shipped task file scores three hand-made docs through build_eval_set
// and score_eval_set:
//   A [no_comma, quotation]   "\"Hello world\""       strict [T, T]  loose [T, T]
//   B [no_comma, end "Bye."]  "Hi, there\nBye."       strict [F, T]  loose [T, T]
//   C [no_comma]              "a, b"                  strict [F]     loose [F]
// prompt strict [1, 0, 0] = 1/3, stderr sqrt(1/3)/sqrt(3) = 1/3;
// inst strict 3/5 (the mean of per-doc fractions would be 0.5), stderr N/A;
// prompt loose [1, 1, 0] = 2/3, stderr 1/3; inst loose 4/5.
TEST(IfevalTask, MetricsThroughScoreEvalSet) {
  const TaskConfig task = load_task_file(test::task_file("leaderboard_ifeval"));
  testing::TempDir dir;
  const std::vector<json> docs = {
      doc({"punctuation:no_comma", "startend:quotation"}, {json::object(), json::object()}, "Quote it."),
      doc({"punctuation:no_comma", "startend:end_checker"}, {json::object(), json{{"end_phrase", "Bye."}}}, "Say bye."),
      doc({"punctuation:no_comma"}, {json{{"num_words", nullptr}}}, "List a and b.")};
  std::string lines;
  for (const auto& d : docs) lines += d.dump() + "\n";
  testing::write_file(dir / "input_data.jsonl", lines);
  const EvalSet set = build_eval_set(task, dir.path(), {});
  ASSERT_EQ(set.requests.size(), 3u);
  std::vector<Response> responses(3);
  responses[0].text = "\"Hello world\"";
  responses[1].text = "Hi, there\nBye.";
  responses[2].text = "a, b";
  RunInfo run;
  run.model = "m";
  const TaskResults res = score_eval_set(task, set, responses, run);
  const json& r = res.results_json.at("results").at("leaderboard_ifeval");
  EXPECT_DOUBLE_EQ(r.at("prompt_level_strict_acc,none").get<double>(), 1.0 / 3);
  EXPECT_NEAR(r.at("prompt_level_strict_acc_stderr,none").get<double>(), 1.0 / 3, 1e-15);
  EXPECT_DOUBLE_EQ(r.at("inst_level_strict_acc,none").get<double>(), 0.6);
  EXPECT_EQ(r.at("inst_level_strict_acc_stderr,none"), "N/A");
  EXPECT_DOUBLE_EQ(r.at("prompt_level_loose_acc,none").get<double>(), 2.0 / 3);
  EXPECT_NEAR(r.at("prompt_level_loose_acc_stderr,none").get<double>(), 1.0 / 3, 1e-15);
  EXPECT_DOUBLE_EQ(r.at("inst_level_loose_acc,none").get<double>(), 0.8);
  EXPECT_EQ(r.at("inst_level_loose_acc_stderr,none"), "N/A");
  ASSERT_EQ(res.samples.size(), 3u);
  EXPECT_EQ(res.samples[1].at("inst_level_strict_acc,none"), json::parse("[false, true]"));
  EXPECT_EQ(res.samples[1].at("inst_level_loose_acc,none"), json::parse("[true, true]"));
  EXPECT_EQ(res.samples[1].at("prompt_level_loose_acc,none"), true);
  EXPECT_EQ(res.samples[0].at("correct"), json::parse(R"({"none": true})"));
  EXPECT_EQ(res.samples[0].at("target"), 0);
  const json& cfg = res.results_json.at("configs").at("leaderboard_ifeval");
  EXPECT_EQ(cfg.at("metric_list")[1].at("aggregation"), "agg_inst_level_acc");
  EXPECT_EQ(cfg.at("generation_kwargs").at("until"), json::array());
  EXPECT_EQ(res.results_json.at("versions").at("leaderboard_ifeval"), 2.0);
  EXPECT_EQ(res.summary.at("leaderboard_ifeval").at("inst_level_strict_acc,none").at("samples"), 3);
}

TEST(IfevalTask, MetricListErrors) {
  const std::string base =
      "task: t\noutput_type: generate_until\ntest_split: train\ndoc_to_text: prompt\ndoc_to_target: 0\n"
      "process_results: !function ifeval.process_results\n";
  EXPECT_EQ(resolve_metrics(parse_task_yaml(base, "t.yaml")).size(), 4u);
  // An explicit empty `until` stays empty (EOS only); a missing one is [fewshot_delimiter].
  EXPECT_TRUE(parse_task_yaml(base + "generation_kwargs:\n  until: []\n", "t.yaml").generation_kwargs.until.empty());
  EXPECT_EQ(parse_task_yaml(base + "generation_kwargs:\n  do_sample: false\n", "t.yaml").generation_kwargs.until,
            std::vector<std::string>{"\n\n"});
  const auto err = [&](const std::string& extra) {
    try {
      resolve_metrics(parse_task_yaml(base + extra, "t.yaml"));
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(err("metric_list:\n  - metric: inst_level_strict_acc\n    aggregation: mean\n").find("does not fit"),
            std::string::npos);
  EXPECT_NE(err("metric_list:\n  - metric: exact_match\n").find("unknown metric 'exact_match'"), std::string::npos);
  EXPECT_EQ(err("metric_list:\n  - metric: inst_level_loose_acc\n    aggregation: !function "
                "utils.agg_inst_level_acc\n"),
            "(no error)");
}

// The real data: prompts are the raw `prompt`, one generate request each with
// the task's generation settings, and every doc's kwargs build checkers.
TEST(IfevalTask, PromptGoldenAndEveryDocScores) {
  const fs::path data = testing::shared_data_dir();
  if (data.empty()) GTEST_SKIP() << "../shared/data is absent: benchmarks/ifeval/input_data.jsonl not available";
  const TaskConfig task = load_task_file(test::task_file("leaderboard_ifeval"));
  const EvalSet set = build_eval_set(task, data / "benchmarks" / "ifeval", {});
  std::vector<json> raw;
  std::ifstream in(data / "benchmarks" / "ifeval" / "input_data.jsonl");
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) raw.push_back(json::parse(line));
  ASSERT_EQ(raw.size(), 541u);
  ASSERT_EQ(set.docs.size(), 541u);
  EXPECT_EQ(set.num_fewshot, 0);
  EXPECT_TRUE(set.subtasks.empty());
  for (std::size_t i : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{540}}) {
    SCOPED_TRACE(i);
    EXPECT_EQ(set.docs[i].prompt, raw[i].at("prompt").get<std::string>());
    EXPECT_TRUE(set.docs[i].fewshot_ids.empty());
  }
  EXPECT_EQ(set.docs[0].prompt.substr(0, 62), "Write a 300+ word summary of the wikipedia page \"https://en.wi");
  ASSERT_EQ(set.requests.size(), 541u);
  for (const auto& r : set.requests) {
    EXPECT_EQ(r.type, RequestType::generate_until);
    EXPECT_EQ(r.context, set.docs[r.doc].prompt);
    EXPECT_TRUE(r.gen.until.empty());
    EXPECT_EQ(r.gen.max_gen_toks, 1280);
    EXPECT_FALSE(r.gen.do_sample);
    EXPECT_EQ(r.gen.temperature, 0.0);
  }
  // Every doc's instructions build and run (the prompt as a response).
  std::size_t instructions = 0;
  for (const auto& d : set.docs) {
    const DocResult res = process_results(d.doc, d.doc.at("prompt").get<std::string>());
    EXPECT_EQ(res.inst_level_strict.size(), d.doc.at("instruction_id_list").size());
    instructions += res.inst_level_strict.size();
  }
  std::size_t expected = 0;
  for (const auto& d : raw) expected += d.at("instruction_id_list").size();
  EXPECT_EQ(instructions, expected);
}

}  // namespace
}  // namespace qsweep::scoring::ifeval
