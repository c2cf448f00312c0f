// score_eval_set (scoring/results.h) and the EvalSet file (eval_set.h) on
// small hand-built tasks and EvalSets with hand-computed goldens (lm-eval
// v0.4.4, SPECS B0-B6).
#include "scoring/results.h"

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "scoring/eval_set.h"
#include "tests/testutil.h"

namespace qsweep::scoring {
namespace {

using nlohmann::json;

/// A set with one EvalDoc per `docs` entry and one loglikelihood request per
/// choice (continuation " " + choice), requests listed in reverse index order
/// to check that scoring sorts them.
EvalSet mc_set(const std::string& task, const std::vector<json>& docs, const std::vector<std::size_t>& n_choices,
               const std::vector<std::string>& subtasks = {}) {
  EvalSet s;
  s.task = task;
  for (std::size_t i = 0; i < docs.size(); ++i) {
    EvalDoc d;
    d.doc_id = i;
    d.doc = docs[i];
    d.prompt = "Q" + std::to_string(i);
    if (!subtasks.empty()) {
      d.subtask = subtasks[i];
      if (std::find(s.subtasks.begin(), s.subtasks.end(), d.subtask) == s.subtasks.end())
        s.subtasks.push_back(d.subtask);
    }
    s.docs.push_back(d);
    for (std::size_t c = n_choices[i]; c-- > 0;) {
      Request r;
      r.doc = i;
      r.index = static_cast<int>(c);
      r.context = d.prompt;
      r.continuation = " c" + std::to_string(c);
      s.requests.push_back(r);
    }
  }
  s.docs_before_limit = docs.size();
  return s;
}

/// Responses for mc_set: lls[doc][choice].
std::vector<Response> mc_responses(const EvalSet& s, const std::vector<std::vector<double>>& lls) {
  std::vector<Response> out;
  for (const auto& r : s.requests) {
    Response resp;
    resp.logprob = lls.at(r.doc).at(static_cast<std::size_t>(r.index));
    out.push_back(resp);
  }
  return out;
}

RunInfo run_info() {
  RunInfo r;
  r.model = "m";
  r.model_args = "dtype=f32";
  r.backend = "cpu-f32";
  return r;
}

std::string thrown_score(const TaskConfig& t, const EvalSet& s, const std::vector<Response>& r) {
  try {
    score_eval_set(t, s, r, run_info());
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(no error)";
}

const char* kMcTask =
    "task: synth\n"
    "test_split: test\n"
    "output_type: multiple_choice\n"
    "doc_to_text: \"{{q}}\"\n"
    "doc_to_target: \"{{gold}}\"\n"
    "doc_to_choice: \"{{opts}}\"\n"
    "metadata:\n  version: 2.0\n";

json mc_doc(const std::string& q, std::vector<std::string> opts, int gold) {
  return {{"q", q}, {"opts", opts}, {"gold", gold}};
}

// ---------------------------------------------------------- multiple choice

TEST(ScoreMultipleChoice, TiesAndCodePointNormalization) {
  const TaskConfig t = parse_task_yaml(kMcTask, "t.yaml");
  // doc 0: equal lls -> index 0 for both (gold 0): acc 1, acc_norm 1.
  // doc 1: lls -2, -3, -4.5 over "é" (1 code point, 2 bytes), "ab", "日本語"
  //   (3 code points, 9 bytes): acc pred 0; per code point -2, -1.5, -1.5 ->
  //   tie -> 1 == gold: acc_norm 1 (per byte it would pick 2).
  // doc 2: pred 1, gold 0: 0, 0.
  const EvalSet s = mc_set("synth",
                           {mc_doc("a", {"x", "y", "z"}, 0), mc_doc("b", {"é", "ab", "日本語"}, 1),
                            mc_doc("c", {"a", "b"}, 0)},
                           {3, 3, 2});
  const auto res = score_eval_set(t, s, mc_responses(s, {{-1, -1, -1}, {-2, -3, -4.5}, {-5, -0.5}}), run_info());
  const json& r = res.results_json.at("results").at("synth");
  EXPECT_EQ(r.at("alias"), "synth");
  // acc {1,0,0}: mean 1/3; stddev sqrt((4/9 + 2/9) / 2) = sqrt(1/3), / sqrt(3) = 1/3.
  EXPECT_DOUBLE_EQ(r.at("acc,none").get<double>(), 1.0 / 3);
  EXPECT_NEAR(r.at("acc_stderr,none").get<double>(), 1.0 / 3, 1e-15);
  EXPECT_DOUBLE_EQ(r.at("acc_norm,none").get<double>(), 2.0 / 3);
  EXPECT_NEAR(r.at("acc_norm_stderr,none").get<double>(), 1.0 / 3, 1e-15);
  ASSERT_EQ(res.samples.size(), 3u);
  EXPECT_EQ(res.samples[1].at("pred"), 0);
  EXPECT_EQ(res.samples[1].at("pred_norm"), 1);
  EXPECT_EQ(res.samples[1].at("acc_norm,none"), 1.0);
  EXPECT_EQ(res.samples[1].at("target"), 1);
  EXPECT_EQ(res.samples[1].at("correct"), false);
  EXPECT_EQ(res.samples[0].at("correct"), true);
  // arguments / resps in index order even though the requests were reversed.
  EXPECT_EQ(res.samples[2].at("arguments"), json::parse(R"([["Q2", " c0"], ["Q2", " c1"]])"));
  EXPECT_EQ(res.samples[2].at("resps"), json::parse(R"([[[-5.0, false]], [[-0.5, false]]])"));
  EXPECT_EQ(res.samples[2].at("filtered_resps").at("none"), json::parse(R"([[-5.0, false], [-0.5, false]])"));
  // The rest of the layout.
  const json& j = res.results_json;
  EXPECT_FALSE(j.contains("groups"));
  EXPECT_EQ(j.at("group_subtasks"), json::parse(R"({"synth": []})"));
  EXPECT_EQ(j.at("versions").at("synth"), 2.0);
  EXPECT_EQ(j.at("n-shot").at("synth"), 0);
  EXPECT_EQ(j.at("higher_is_better").at("synth"), json::parse(R"({"acc": true, "acc_norm": true})"));
  EXPECT_EQ(j.at("n-samples").at("synth"), json::parse(R"({"original": 3, "effective": 3})"));
  EXPECT_EQ(j.at("config").at("limit"), nullptr);
  EXPECT_EQ(j.at("config").at("model"), "m");
  EXPECT_EQ(j.at("qsweep").at("backend"), "cpu-f32");
  const json& c = j.at("configs").at("synth");
  EXPECT_EQ(c.at("doc_to_choice"), "{{opts}}");
  EXPECT_EQ(c.at("output_type"), "multiple_choice");
  EXPECT_EQ(c.at("metric_list").size(), 2u);  // lm-eval's default for multiple_choice
  EXPECT_EQ(res.summary.at("synth").at("acc,none").at("samples"), 3);
  EXPECT_FALSE(res.summary.at("synth").at("acc,none").contains("limit"));
}

TEST(ScoreMultipleChoice, OnlyTheListedMetricsAndStringGold) {
  const TaskConfig t = parse_task_yaml(std::string(kMcTask) + "metric_list:\n  - metric: acc_norm\n", "t.yaml");
  // A string gold is its index in the choices.
  json d = mc_doc("a", {"no", "yes"}, 0);
  d["gold"] = "yes";
  const EvalSet s = mc_set("synth", {d}, {2});
  const auto res = score_eval_set(t, s, mc_responses(s, {{-4, -6}}), run_info());
  const json& r = res.results_json.at("results").at("synth");
  EXPECT_FALSE(r.contains("acc,none"));
  // -4 / len("no") = -2 ties -6 / len("yes") = -2: index 0 wins, gold is 1.
  EXPECT_EQ(r.at("acc_norm,none"), 0.0);
  EXPECT_EQ(res.samples[0].at("gold"), 1);
}

TEST(ScoreMultipleChoice, Mc2AsAcc) {
  const TaskConfig t = parse_task_yaml(
      "task: tqa\nvalidation_split: validation\noutput_type: multiple_choice\n"
      "doc_to_text: \"{{question}}\"\ndoc_to_target: 0\ndoc_to_choice: \"{{mc2_targets.choices}}\"\n"
      "process_results: truthfulqa.process_results_mc2\n"
      "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n",
      "tqa.yaml");
  const json d0 = {{"question", "q0"}, {"mc2_targets", {{"choices", {"t1", "t2", "f1"}}, {"labels", {1, 1, 0}}}}};
  const json d1 = {{"question", "q1"}, {"mc2_targets", {{"choices", {"t1", "f1"}}, {"labels", {1, 0}}}}};
  const EvalSet s = mc_set("tqa", {d0, d1}, {3, 2});
  // p = .5 .2 | .3 -> .7;  p = .1 | .3 -> .25. Mean .475, stderr .225.
  const auto res = score_eval_set(
      t, s, mc_responses(s, {{std::log(0.5), std::log(0.2), std::log(0.3)}, {std::log(0.1), std::log(0.3)}}),
      run_info());
  const json& r = res.results_json.at("results").at("tqa");
  EXPECT_NEAR(r.at("acc,none").get<double>(), 0.475, 1e-12);
  EXPECT_NEAR(r.at("acc_stderr,none").get<double>(), 0.225, 1e-12);
  EXPECT_FALSE(r.contains("acc_norm,none"));
  EXPECT_NEAR(res.samples[0].at("acc,none").get<double>(), 0.7, 1e-12);
  // acc_norm is not something mc2 produces.
  TaskConfig t2 = t;
  t2.metric_list = json::parse(R"([{"metric": "acc"}, {"metric": "acc_norm"}])");
  EXPECT_NE(thrown_score(t2, s, mc_responses(s, {{-1, -1, -1}, {-1, -1}})).find("'acc_norm' is not produced by truthfulqa.process_results_mc2"),
            std::string::npos);
}

TEST(ScoreMultipleChoice, WinograndePartialScoring) {
  // doc_to_text is the gold index (multiple_input); the choices are the
  // contexts; the lls are those of the shared continuation.
  const TaskConfig t = parse_task_yaml(
      "task: wg\nvalidation_split: validation\noutput_type: multiple_choice\n"
      "doc_to_text: gold_idx\ndoc_to_target: \"{{rest}}\"\ndoc_to_choice: \"{{ctxs}}\"\n"
      "metric_list:\n  - metric: acc\n",
      "wg.yaml");
  auto doc = [](int gold) {
    return json{{"gold_idx", gold}, {"ctxs", {"The cat sat on Anna", "The cat sat on Bob"}}, {"rest", "because it was warm."}};
  };
  const EvalSet s = mc_set("wg", {doc(1), doc(0), doc(0)}, {2, 2, 2});
  // argmax 1 == 1 -> 1; argmax 1 != 0 -> 0; tie -> 0 == 0 -> 1.
  const auto res = score_eval_set(t, s, mc_responses(s, {{-3, -2}, {-3, -2}, {-2, -2}}), run_info());
  EXPECT_DOUBLE_EQ(res.results_json.at("results").at("wg").at("acc,none").get<double>(), 2.0 / 3);
  EXPECT_EQ(res.samples[0].at("target"), "because it was warm.");
  EXPECT_EQ(res.samples[0].at("gold"), 1);
  EXPECT_EQ(res.samples[1].at("correct"), false);
}

// ------------------------------------------------------------ generate_until

const char* kGsm8k =
    "task: gsm8k\n"
    "test_split: test\n"
    "fewshot_split: train\n"
    "num_fewshot: 5\n"
    "output_type: generate_until\n"
    "doc_to_text: \"Question: {{question}}\\nAnswer:\"\n"
    "doc_to_target: \"{{answer}}\"\n"
    "generation_kwargs:\n  until: [\"Question:\", \"</s>\", \"<|im_end|>\"]\n  do_sample: false\n  temperature: 0.0\n"
    "metric_list:\n"
    "  - metric: exact_match\n"
    "    aggregation: mean\n"
    "    higher_is_better: true\n"
    "    ignore_case: true\n"
    "    ignore_punctuation: false\n"
    "    regexes_to_ignore:\n"
    "      - \",\"\n"
    "      - \"\\\\$\"\n"
    "      - \"(?s).*#### \"\n"
    "      - \"\\\\.$\"\n"
    "filter_list:\n"
    "  - name: \"strict-match\"\n"
    "    filter:\n"
    "      - function: \"regex\"\n"
    "        regex_pattern: \"#### (\\\\-?[0-9\\\\.\\\\,]+)\"\n"
    "      - function: \"take_first\"\n"
    "  - name: \"flexible-extract\"\n"
    "    filter:\n"
    "      - function: \"regex\"\n"
    "        group_select: -1\n"
    "        regex_pattern: \"(-?[$0-9.,]{2,})|(-?[0-9]+)\"\n"
    "      - function: \"take_first\"\n";

EvalSet gen_set(const std::string& task, const std::vector<json>& docs) {
  EvalSet s;
  s.task = task;
  s.num_fewshot = 5;
  for (std::size_t i = 0; i < docs.size(); ++i) {
    EvalDoc d;
    d.doc_id = i;
    d.doc = docs[i];
    d.prompt = "P" + std::to_string(i);
    s.docs.push_back(d);
    Request r;
    r.type = RequestType::generate_until;
    r.doc = i;
    r.context = d.prompt;
    r.gen.until = {"Question:"};
    s.requests.push_back(r);
  }
  s.docs_before_limit = docs.size();
  return s;
}

std::vector<Response> texts(const std::vector<std::string>& t) {
  std::vector<Response> out;
  for (const auto& s : t) {
    Response r;
    r.text = s;
    out.push_back(r);
  }
  return out;
}

TEST(ScoreGenerate, Gsm8kStrictAndFlexibleOnTrickyAnswers) {
  const TaskConfig t = parse_task_yaml(kGsm8k, "gsm8k.yaml");
  auto doc = [](const std::string& answer) { return json{{"question", "?"}, {"answer", answer}}; };
  const EvalSet s = gen_set("gsm8k", {doc("It is 1000 + 234.\n#### 1,234"), doc("Five.\n#### 5"), doc("#### 42"),
                                      doc("Down 3.\n#### -3"), doc("Four.\n#### 4"), doc("#### 7")});
  const auto res = score_eval_set(t, s,
                                  texts({"So 1,234 in all.\n#### 1,234",  // strict 1, flexible 1
                                         "The answer is $5.",             // strict [invalid]; flexible "$5." -> 5
                                         "#### 42.",                      // "42." -> "42": 1, 1
                                         "It drops to -3 degrees",        // strict 0; flexible "-3"
                                         "#### 3\n#### 4",                // strict first "3": 0; flexible last "4"
                                         "I do not know"}),               // both [invalid]
                                  run_info());
  const json& r = res.results_json.at("results").at("gsm8k");
  EXPECT_DOUBLE_EQ(r.at("exact_match,strict-match").get<double>(), 2.0 / 6);
  EXPECT_DOUBLE_EQ(r.at("exact_match,flexible-extract").get<double>(), 5.0 / 6);
  // {1,0,1,0,0,0}: sqrt(4/15) / sqrt(6); {1,1,1,1,1,0}: sqrt(1/6) / sqrt(6) = 1/6.
  EXPECT_NEAR(r.at("exact_match_stderr,strict-match").get<double>(), 0.21081851067789195, 1e-15);
  EXPECT_NEAR(r.at("exact_match_stderr,flexible-extract").get<double>(), 1.0 / 6, 1e-15);
  EXPECT_FALSE(r.contains("exact_match,none"));
  const std::vector<std::string> strict = {"1,234", "[invalid]", "42.", "[invalid]", "3", "[invalid]"};
  const std::vector<std::string> flexible = {"1,234", "$5.", "42.", "-3", "4", "[invalid]"};
  for (std::size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(res.samples[i].at("extracted").at("strict-match"), strict[i]) << i;
    EXPECT_EQ(res.samples[i].at("extracted").at("flexible-extract"), flexible[i]) << i;
    EXPECT_EQ(res.samples[i].at("filtered_resps").at("strict-match"), json::array({strict[i]})) << i;
  }
  EXPECT_EQ(res.samples[1].at("correct"), json::parse(R"({"strict-match": false, "flexible-extract": true})"));
  EXPECT_EQ(res.samples[0].at("resps"), json::parse(R"([["So 1,234 in all.\n#### 1,234"]])"));
  EXPECT_EQ(res.samples[0].at("arguments")[0][1].at("until"), json::array({"Question:"}));
  EXPECT_EQ(res.samples[0].at("target"), "It is 1000 + 234.\n#### 1,234");
  EXPECT_EQ(res.results_json.at("n-shot").at("gsm8k"), 5);
  EXPECT_EQ(res.results_json.at("configs").at("gsm8k").at("filter_list").size(), 2u);
}

TEST(ScoreGenerate, NoFilterListIsTakeFirstNamedNoneAndCaseFilters) {
  const TaskConfig t = parse_task_yaml(
      "task: g\ntest_split: test\ndoc_to_text: q\ndoc_to_target: a\n"
      "filter_list:\n  - name: low\n    filter:\n      - function: lowercase\n      - function: take_first\n",
      "g.yaml");
  const TaskConfig plain = parse_task_yaml("task: g\ntest_split: test\ndoc_to_text: q\ndoc_to_target: a\n", "g.yaml");
  const EvalSet s = gen_set("g", {json{{"q", "?"}, {"a", "yes"}}, json{{"q", "?"}, {"a", "7"}}});
  const auto lowered = score_eval_set(t, s, texts({"YES", "7"}), run_info());
  EXPECT_EQ(lowered.results_json.at("results").at("g").at("exact_match,low"), 1.0);
  const auto none = score_eval_set(plain, s, texts({"YES", "7"}), run_info());
  EXPECT_EQ(none.results_json.at("results").at("g").at("exact_match,none"), 0.5);
  // uppercase (one-to-one mappings), then a regex on the result.
  const TaskConfig up = parse_task_yaml(
      "task: g\ntest_split: test\ndoc_to_text: q\ndoc_to_target: a\n"
      "filter_list:\n  - name: up\n    filter:\n      - function: uppercase\n"
      "      - function: regex\n        regex_pattern: \"([A-ZÉ]+)!\"\n      - function: take_first\n",
      "g.yaml");
  const EvalSet u = gen_set("g", {json{{"q", "?"}, {"a", "CAFÉ"}}, json{{"q", "?"}, {"a", "X"}}});
  const auto upper = score_eval_set(up, u, texts({"well, café! ok", "x?"}), run_info());
  EXPECT_EQ(upper.samples[0].at("extracted").at("up"), "CAFÉ");
  EXPECT_EQ(upper.samples[1].at("extracted").at("up"), "[invalid]");
  EXPECT_EQ(upper.results_json.at("results").at("g").at("exact_match,up"), 0.5);
}

TEST(ScoreErrors, UnknownMetricFilterAndCounts) {
  const EvalSet s = gen_set("g", {json{{"q", "?"}, {"a", "yes"}}});
  const std::string base = "task: g\ntest_split: test\ndoc_to_text: q\ndoc_to_target: a\n";
  EXPECT_EQ(thrown_score(parse_task_yaml(base + "metric_list:\n  - metric: bleu\n", "g.yaml"), s, texts({"x"})),
            "g.yaml: unknown metric 'bleu' for output_type generate_until");
  EXPECT_EQ(thrown_score(parse_task_yaml(base + "filter_list:\n  - name: mv\n    filter:\n      - function: majority_vote\n",
                                         "g.yaml"),
                         s, texts({"x"})),
            "g.yaml: filter 'mv': unknown filter function 'majority_vote' (regex, take_first, lowercase, uppercase, mmlu_pro_extract)");
  EXPECT_EQ(thrown_score(parse_task_yaml(base + "metric_list:\n  - metric: exact_match\n    ignore_cas: true\n", "g.yaml"),
                         s, texts({"x"})),
            "g.yaml: metric 'exact_match': unknown option 'ignore_cas'");
  EXPECT_EQ(thrown_score(parse_task_yaml(base, "g.yaml"), s, texts({})), "g: 0 responses for 1 requests");
  // group_select past the matches: Python's IndexError, named here.
  EXPECT_EQ(thrown_score(parse_task_yaml(base + "filter_list:\n  - name: second\n    filter:\n"
                                                "      - function: regex\n        regex_pattern: \"[0-9]\"\n"
                                                "        group_select: 1\n",
                                         "g.yaml"),
                         s, texts({"only 1 digit"})),
            "g: doc_id 0: regex filter [0-9]: group_select 1 out of 1 matches");
  const TaskConfig mc = parse_task_yaml(kMcTask, "t.yaml");
  const EvalSet m = mc_set("synth", {mc_doc("a", {"x", "y", "z"}, 0)}, {2});
  EXPECT_EQ(thrown_score(mc, m, mc_responses(m, {{-1, -2}})), "synth: doc_id 0: 2 requests for 3 choices");
}

// ------------------------------------------------- loglikelihood, rolling

TEST(ScoreLoglikelihood, PerplexityAndGreedyAcc) {
  const TaskConfig t = parse_task_yaml(
      "task: lam\ntest_split: test\noutput_type: loglikelihood\ndoc_to_text: q\ndoc_to_target: a\n", "lam.yaml");
  EvalSet s;
  s.task = "lam";
  std::vector<Response> resp;
  const std::vector<double> lls = {-1.0, -2.0, -0.5, -4.0};
  for (std::size_t i = 0; i < lls.size(); ++i) {
    s.docs.push_back(EvalDoc{i, "", json{{"q", "ctx"}, {"a", "w"}}, "ctx", {}});
    Request r;
    r.doc = i;
    r.context = "ctx";
    r.continuation = " w";
    s.requests.push_back(r);
    resp.push_back(Response{lls[i], i % 2 == 0, ""});
  }
  RunInfo run = run_info();
  run.bootstrap_iters = 2000;
  const auto res = score_eval_set(t, s, resp, run);
  const json& r = res.results_json.at("results").at("lam");
  EXPECT_DOUBLE_EQ(r.at("perplexity,none").get<double>(), std::exp(7.5 / 4));
  EXPECT_DOUBLE_EQ(r.at("acc,none").get<double>(), 0.5);
  EXPECT_EQ(res.results_json.at("higher_is_better").at("lam").at("perplexity"), false);
  ASSERT_TRUE(r.at("perplexity_stderr,none").is_number());
  // lm-eval's bootstrap (random.Random(i).choices per chunk of 1000), live.
  const std::string py = testing::python3_output(
      "import math, random\n"
      "xs = [-1.0, -2.0, -0.5, -4.0]\n"
      "res = []\n"
      "for i in range(2):\n"
      "    rnd = random.Random()\n"
      "    rnd.seed(i)\n"
      "    for _ in range(1000):\n"
      "        s = rnd.choices(xs, k=len(xs))\n"
      "        res.append(math.exp(-(sum(s) / len(s))))\n"
      "mu = sum(res) / len(res)\n"
      "print(repr(math.sqrt(sum((x - mu) ** 2 for x in res) / (len(res) - 1))))\n");
  if (!py.empty()) {
    EXPECT_NEAR(r.at("perplexity_stderr,none").get<double>(), std::stod(py), 1e-9) << py;
  }
  run.bootstrap_iters = 0;  // lm-eval: no stderr at all -> "N/A"
  const auto no = score_eval_set(t, s, resp, run);
  EXPECT_EQ(no.results_json.at("results").at("lam").at("perplexity_stderr,none"), "N/A");
  EXPECT_EQ(no.results_json.at("results").at("lam").at("acc_stderr,none"), "N/A");
}

TEST(ScoreLoglikelihood, RollingWeightedPerplexities) {
  const TaskConfig t = parse_task_yaml(
      "task: wt\ntest_split: test\noutput_type: loglikelihood_rolling\ndoc_to_text: \"\"\ndoc_to_target: page\n",
      "wt.yaml");
  EvalSet s;
  s.task = "wt";
  // "hello  world\tfoo": 3 words, 16 bytes; "é": 1 word, 2 bytes.
  const std::vector<std::string> pages = {"hello  world\tfoo", "é"};
  const std::vector<double> lls = {-6, -2};
  std::vector<Response> resp;
  for (std::size_t i = 0; i < pages.size(); ++i) {
    s.docs.push_back(EvalDoc{i, "", json{{"page", pages[i]}}, "", {}});
    Request r;
    r.type = RequestType::loglikelihood_rolling;
    r.doc = i;
    r.continuation = pages[i];
    s.requests.push_back(r);
    resp.push_back(Response{lls[i], false, ""});
  }
  const auto res = score_eval_set(t, s, resp, run_info());
  const json& r = res.results_json.at("results").at("wt");
  EXPECT_NEAR(r.at("word_perplexity,none").get<double>(), 7.38905609893065, 1e-12);     // exp(8/4)
  EXPECT_NEAR(r.at("byte_perplexity,none").get<double>(), 1.5596234976067807, 1e-12);   // exp(8/18)
  EXPECT_NEAR(r.at("bits_per_byte,none").get<double>(), 0.6411977959506504, 1e-12);     // 8/18/ln 2
  EXPECT_EQ(r.at("word_perplexity_stderr,none"), "N/A");
  EXPECT_EQ(res.samples[0].at("word_perplexity,none"), json::array({-6.0, 3.0}));
  EXPECT_EQ(res.samples[1].at("byte_perplexity,none"), json::array({-2.0, 2.0}));
}

// ------------------------------------------------------------ subtasks, groups

/// Subtasks mm_a (acc 1,1,1,0), mm_b (1,0), mm_c (0,0); gold is choice 0.
struct GroupFixture {
  TaskConfig task = parse_task_yaml(
      "task: mm\ntest_split: test\noutput_type: multiple_choice\ndoc_to_text: q\ndoc_to_target: 0\n"
      "doc_to_choice: [\"A\", \"B\"]\nmetric_list:\n  - metric: acc\n",
      "mm.yaml");
  EvalSet set;
  std::vector<Response> responses;
  GroupFixture() {
    const std::vector<std::string> sub = {"mm_a", "mm_a", "mm_a", "mm_a", "mm_b", "mm_b", "mm_c", "mm_c"};
    const std::vector<int> right = {1, 1, 1, 0, 1, 0, 0, 0};
    std::vector<json> docs(sub.size(), json{{"q", "?"}});
    set = mc_set("mm", docs, std::vector<std::size_t>(sub.size(), 2), sub);
    std::vector<std::vector<double>> lls;
    for (int ok : right) lls.push_back(ok ? std::vector<double>{-1, -2} : std::vector<double>{-2, -1});
    responses = mc_responses(set, lls);
  }
};

TEST(ScoreGroups, TwoLevelWeightedAndMacro) {
  GroupFixture f;
  f.task.subtask_groups = {{"stem", {"a", "b"}}, {"other", {"c"}}};
  const auto res = score_eval_set(f.task, f.set, f.responses, run_info());
  const json& r = res.results_json.at("results");
  EXPECT_DOUBLE_EQ(r.at("mm_a").at("acc,none").get<double>(), 0.75);
  EXPECT_DOUBLE_EQ(r.at("mm_a").at("acc_stderr,none").get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(r.at("mm_b").at("acc_stderr,none").get<double>(), 0.5);
  EXPECT_EQ(r.at("mm_a").at("alias"), "  - a");
  EXPECT_EQ(r.at("mm_stem").at("alias"), " - stem");
  EXPECT_EQ(r.at("mm").at("alias"), "mm");
  // stem: (3 + 1) / 6; pooled stderr of (.25, n 4), (.5, n 2).
  EXPECT_DOUBLE_EQ(r.at("mm_stem").at("acc,none").get<double>(), 4.0 / 6);
  EXPECT_NEAR(r.at("mm_stem").at("acc_stderr,none").get<double>(), 0.22821773229381923, 1e-15);
  EXPECT_DOUBLE_EQ(r.at("mm_other").at("acc,none").get<double>(), 0.0);
  // top: lm-eval v0.4.4 aggregates over all leaves below it (subgroups
  // flattened): micro mean 4/8; stderr pooled over (.25, n 4), (.5, n 2),
  // (0, n 2): (3*.0625*4 + .25*2 + 0) / (8 - 3) = .25, sqrt(.25 / 8).
  // (Pooling the subgroups' pooled stderrs instead would give 0.1804...)
  EXPECT_DOUBLE_EQ(r.at("mm").at("acc,none").get<double>(), 0.5);
  EXPECT_NEAR(r.at("mm").at("acc_stderr,none").get<double>(), 0.1767766952966369, 1e-15);
  const json& g = res.results_json.at("groups");
  EXPECT_EQ(g.at("mm"), r.at("mm"));
  EXPECT_TRUE(g.contains("mm_stem"));
  EXPECT_EQ(g.at("mm_stem").at("alias"), " - stem");
  EXPECT_FALSE(res.results_json.at("versions").contains("mm"));
  EXPECT_EQ(res.results_json.at("higher_is_better").at("mm"), json::parse(R"({"acc": true})"));
  EXPECT_FALSE(g.contains("mm_a"));
  EXPECT_EQ(res.results_json.at("group_subtasks"),
            json::parse(R"({"mm": ["mm_stem", "mm_other"], "mm_stem": ["mm_a", "mm_b"], "mm_other": ["mm_c"]})"));
  // Macro means: over the middle groups (2/3 + 0) / 2, over subjects (.75 + .5 + 0) / 3.
  const json& s = res.summary.at("mm").at("acc,none");
  EXPECT_DOUBLE_EQ(s.at("value").get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(s.at("macro_mean").get<double>(), 1.0 / 3);
  EXPECT_DOUBLE_EQ(s.at("leaf_macro_mean").get<double>(), 1.25 / 3);
  EXPECT_EQ(s.at("samples"), 8);
  EXPECT_DOUBLE_EQ(res.results_json.at("qsweep").at("macro_means").at("mm").at("acc,none").at("leaf_macro_mean").get<double>(),
                   1.25 / 3);
  EXPECT_EQ(res.summary.at("mm_b").at("acc,none").at("samples"), 2);
  EXPECT_EQ(res.results_json.at("configs").at("mm_a").at("task_alias"), "a");
  EXPECT_EQ(res.results_json.at("n-samples").at("mm_a").at("effective"), 4);
  EXPECT_EQ(res.results_json.at("n-samples").at("mm_a").at("original"), nullptr);  // unknown
  EXPECT_EQ(res.samples[6].at("subtask"), "mm_c");
}

TEST(ScoreGroups, UnweightedAggregateMetricList) {
  GroupFixture f;
  f.task.subtask_groups = {{"stem", {"a", "b"}}, {"other", {"c"}}};
  f.task.aggregate_metric_list = json::parse(R"([{"metric": "acc", "weight_by_size": false}])");
  const auto res = score_eval_set(f.task, f.set, f.responses, run_info());
  const json& r = res.results_json.at("results");
  EXPECT_DOUBLE_EQ(r.at("mm_stem").at("acc,none").get<double>(), 0.625);
  // top, unweighted: the mean over the three leaves, not over stem / other.
  EXPECT_DOUBLE_EQ(r.at("mm").at("acc,none").get<double>(), 1.25 / 3);
  EXPECT_DOUBLE_EQ(res.summary.at("mm").at("acc,none").at("macro_mean").get<double>(), 0.3125);
  f.task.aggregate_metric_list = json::parse(R"([{"metric": "acc_norm"}])");
  EXPECT_EQ(thrown_score(f.task, f.set, f.responses), "mm.yaml: aggregate_metric_list: the subtasks report no 'acc_norm,none'");
}

TEST(ScoreGroups, OneLevelGroupAndMissingSubtaskGroup) {
  GroupFixture f;
  f.set.subtask_docs_before_limit = {10, 2, 2};
  const auto res = score_eval_set(f.task, f.set, f.responses, run_info());
  const json& r = res.results_json.at("results");
  EXPECT_EQ(r.at("mm_a").at("alias"), " - a");
  EXPECT_DOUBLE_EQ(r.at("mm").at("acc,none").get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(res.summary.at("mm").at("acc,none").at("macro_mean").get<double>(), 1.25 / 3);
  EXPECT_EQ(res.results_json.at("group_subtasks").at("mm"), json::parse(R"(["mm_a", "mm_b", "mm_c"])"));
  EXPECT_EQ(res.results_json.at("n-samples").at("mm_a").at("original"), 10);
  f.task.subtask_groups = {{"stem", {"a", "b"}}};
  EXPECT_EQ(thrown_score(f.task, f.set, f.responses), "mm.yaml: subtask 'mm_c' is in none of subtask_groups");
}

TEST(ScoreLimit, MarkedInConfigAndEverySummaryMetric) {
  GroupFixture f;
  f.set.limit = 4;
  f.set.docs_before_limit = 40;
  const auto res = score_eval_set(f.task, f.set, f.responses, run_info());
  EXPECT_EQ(res.results_json.at("config").at("limit"), 4);
  EXPECT_EQ(res.results_json.at("qsweep").at("limit"), 4);
  std::size_t n = 0;
  for (const auto& [name, metrics] : res.summary.items())
    for (const auto& [key, e] : metrics.items()) {
      EXPECT_EQ(e.at("limit"), 4) << name << " " << key;
      ++n;
    }
  EXPECT_EQ(n, 4u);  // mm_a, mm_b, mm_c, mm
}

// ------------------------------------------------------------- EvalSet file

EvalSet full_set() {
  EvalSet s = mc_set("mm", {json{{"q", "é?"}, {"n", {1, 2.5, nullptr}}}, json{{"q", "b"}}}, {2, 1}, {"mm_a", "mm_b"});
  s.docs[0].fewshot_ids = {3, 1, 4};
  s.num_fewshot = 3;
  s.fewshot_from_eval_split = true;
  s.limit = 2;
  s.docs_before_limit = 9;
  s.subtask_docs_before_limit = {5, 4};
  s.options.num_fewshot = -1;
  s.options.limit = 2;
  s.options.apply_chat_template = true;
  s.options.fewshot_as_multiturn = true;
  s.options.system_instruction = "Be brief.";
  s.options.default_max_gen_toks = 512;
  Request g;
  g.type = RequestType::generate_until;
  g.doc = 1;
  g.context = "ctx";
  g.gen.until = {"\n\n", "Q:"};
  g.gen.max_gen_toks = 128;
  g.gen.do_sample = true;
  g.gen.temperature = 0.7;
  s.requests.push_back(g);
  return s;
}

TEST(EvalSetJson, RoundTripsEveryField) {
  const EvalSet s = full_set();
  const json j = s.to_json();
  const EvalSet b = EvalSet::from_json(json::parse(j.dump()));
  EXPECT_EQ(b.to_json(), j);
  EXPECT_EQ(b.task, "mm");
  EXPECT_EQ(b.subtasks, (std::vector<std::string>{"mm_a", "mm_b"}));
  EXPECT_EQ(b.docs[0].fewshot_ids, (std::vector<std::size_t>{3, 1, 4}));
  EXPECT_EQ(b.docs[0].doc, s.docs[0].doc);
  EXPECT_EQ(b.docs[1].subtask, "mm_b");
  EXPECT_EQ(b.limit, std::optional<std::size_t>(2));
  EXPECT_EQ(b.subtask_docs_before_limit, (std::vector<std::size_t>{5, 4}));
  EXPECT_TRUE(b.fewshot_from_eval_split);
  EXPECT_EQ(b.options.system_instruction, "Be brief.");
  EXPECT_EQ(b.options.num_fewshot, -1);
  EXPECT_EQ(b.options.default_max_gen_toks, 512);
  EXPECT_EQ(b.options.chat_template, nullptr);
  const Request& g = b.requests.back();
  EXPECT_EQ(g.type, RequestType::generate_until);
  EXPECT_EQ(g.gen.until, (std::vector<std::string>{"\n\n", "Q:"}));
  EXPECT_EQ(g.gen.max_gen_toks, std::optional<int>(128));
  EXPECT_TRUE(g.gen.do_sample);
  EXPECT_EQ(g.gen.temperature, 0.7);
  EXPECT_EQ(b.requests[0].index, 1);  // mc_set lists indices in reverse
  EXPECT_EQ(b.requests[0].continuation, " c1");
  // Contexts equal to their doc's prompt are written once (in the doc).
  for (std::size_t i = 0; i < s.requests.size(); ++i) {
    EXPECT_EQ(b.requests[i].context, s.requests[i].context) << i;
    EXPECT_EQ(j.at("requests")[i].contains("context"),
              s.requests[i].context != s.docs[s.requests[i].doc].prompt) << i;
  }
  EXPECT_EQ(j.at("requests")[0].at("type"), "loglikelihood");
  EXPECT_EQ(std::string(to_string(RequestType::loglikelihood_rolling)), "loglikelihood_rolling");
  // No limit: null.
  EvalSet n = s;
  n.limit.reset();
  n.requests.back().gen.max_gen_toks.reset();
  const EvalSet nb = EvalSet::from_json(n.to_json());
  EXPECT_FALSE(nb.limit.has_value());
  EXPECT_FALSE(nb.requests.back().gen.max_gen_toks.has_value());
}

std::string thrown_json(const json& j) {
  try {
    EvalSet::from_json(j);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(EvalSetJson, HostileInputNamesTheField) {
  const json good = full_set().to_json();
  auto with = [&](const std::string& ptr, const json& v) {
    json j = good;
    j[json::json_pointer(ptr)] = v;
    return thrown_json(j);
  };
  auto without = [&](const std::string& parent, const std::string& key) {
    json j = good;
    j[json::json_pointer(parent)].erase(key);
    return thrown_json(j);
  };
  EXPECT_EQ(thrown_json(json::array()), "EvalSet: (top level): expected an object, got a list");
  EXPECT_EQ(thrown_json(nullptr), "EvalSet: (top level): expected an object, got null");
  EXPECT_EQ(without("", "task"), "EvalSet: task: missing");
  EXPECT_EQ(with("/task", 3), "EvalSet: task: expected a string, got an integer");
  EXPECT_EQ(with("/subtasks/1", false), "EvalSet: subtasks[1]: expected a string, got a boolean");
  EXPECT_EQ(with("/docs", json::object()), "EvalSet: docs: expected a list, got an object");
  EXPECT_EQ(with("/docs/0/doc_id", -1), "EvalSet: docs[0].doc_id: expected a non-negative integer, got a negative integer");
  EXPECT_EQ(with("/docs/0/doc_id", 1.5), "EvalSet: docs[0].doc_id: expected a non-negative integer, got a number");
  EXPECT_EQ(with("/docs/1", "x"), "EvalSet: docs[1]: expected an object, got a string");
  EXPECT_EQ(without("/docs/1", "prompt"), "EvalSet: docs[1].prompt: missing");
  EXPECT_EQ(with("/docs/0/fewshot_ids/2", "4"), "EvalSet: docs[0].fewshot_ids[2]: expected a non-negative integer, got a string");
  EXPECT_EQ(with("/requests/0/type", "loglikelihood_x"),
            "EvalSet: requests[0].type: unknown request type 'loglikelihood_x' (loglikelihood, "
            "loglikelihood_rolling or generate_until)");
  EXPECT_EQ(with("/requests/2/doc", 2), "EvalSet: requests[2].doc: doc index 2 outside the 2 docs");
  EXPECT_EQ(with("/requests/0/index", 1e300), "EvalSet: requests[0].index: expected an integer, got a number");
  EXPECT_EQ(with("/requests/0/index", 5000000000LL), "EvalSet: requests[0].index: integer out of range");
  EXPECT_EQ(with("/requests/3/gen/until/0", 1), "EvalSet: requests[3].gen.until[0]: expected a string, got an integer");
  EXPECT_EQ(with("/requests/3/gen/temperature", "hot"), "EvalSet: requests[3].gen.temperature: expected a number, got a string");
  EXPECT_EQ(with("/requests/3/gen", nullptr), "EvalSet: requests[3].gen: expected an object, got null");
  EXPECT_EQ(without("/options", "system_instruction"), "EvalSet: options.system_instruction: missing");
  EXPECT_EQ(with("/options/apply_chat_template", 1), "EvalSet: options.apply_chat_template: expected true or false, got an integer");
  EXPECT_EQ(with("/limit", "all"), "EvalSet: limit: expected a non-negative integer, got a string");
  EXPECT_EQ(with("/subtask_docs_before_limit", 3), "EvalSet: subtask_docs_before_limit: expected a list, got an integer");
  EXPECT_EQ(without("", "requests"), "EvalSet: requests: missing");
  // Deep garbage never crashes.
  json deep = good;
  deep["docs"][0]["doc"] = json::parse(std::string(200, '[') + std::string(200, ']'));
  EXPECT_EQ(EvalSet::from_json(deep).docs[0].doc, deep["docs"][0]["doc"]);
}

}  // namespace
}  // namespace qsweep::scoring
