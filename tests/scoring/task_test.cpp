// Task files, few-shot prompts and multiple-choice requests (scoring/task.h)
// against lm-eval v0.4.4 (SPECS B0, B1, B4).
#include "scoring/task.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "tests/scoring/scoring_test_util.h"
#include "tests/testutil.h"

namespace qsweep::scoring {
namespace {

using nlohmann::json;

using test::thrown;

std::filesystem::path task_dir() { return test::task_file("x").parent_path(); }

const char* kSynthetic =
    "task: synth\n"
    "test_split: test\n"
    "fewshot_split: train\n"
    "output_type: multiple_choice\n"
    "num_fewshot: 3\n"
    "doc_to_text: \"Q: {{q}}\"\n"
    "doc_to_target: \"{{a}}\"\n"
    "doc_to_choice: \"{{opts}}\"\n"
    "target_delimiter: \" => \"\n"
    "fewshot_delimiter: \"\\n--\\n\"\n";

json synth_doc(int i, const std::string& a) {
  return {{"q", "q" + std::to_string(i)}, {"a", a}, {"opts", json::array({"x", "y", a})}};
}

// The same lists python prints: [[i, j, k], [...]] -> vector of vectors.
std::vector<std::vector<std::size_t>> parse_lists(const std::string& s) {
  const json j = json::parse(s);
  return j.get<std::vector<std::vector<std::size_t>>>();
}

TEST(TaskFile, LoadsMmluAnatomy) {
  const TaskConfig t = load_task_file(task_dir() / "mmlu_anatomy.yaml");
  EXPECT_EQ(t.task, "mmlu_anatomy");
  EXPECT_EQ(t.output_type, OutputType::multiple_choice);
  EXPECT_EQ(t.sampler, FewshotSampler::first_n);
  EXPECT_EQ(t.num_fewshot, 5);
  EXPECT_EQ(t.fewshot_split, "dev");
  EXPECT_EQ(t.test_split, "test");
  EXPECT_EQ(t.target_delimiter, " ");
  EXPECT_EQ(t.fewshot_delimiter, "\n\n");
  EXPECT_EQ(t.metric_list.at(0).at("metric"), "acc");
  EXPECT_EQ(t.metric_list.at(0).at("higher_is_better"), true);
}

TEST(TaskFile, LoadsArcChallenge) {
  const TaskConfig t = load_task_file(task_dir() / "arc_challenge.yaml");
  EXPECT_EQ(t.num_fewshot, 25);
  EXPECT_EQ(t.sampler, FewshotSampler::default_);
  EXPECT_EQ(t.fewshot_split, "train");  // training_split
  const json doc = {{"question", "Why?"},
                    {"choices", {{"text", {"one", "two", "three"}}, {"label", {"A", "B", "C"}}}},
                    {"answerKey", "B"}};
  const auto mc = multiple_choice_requests(t, doc, "CTX");
  ASSERT_EQ(mc.requests.size(), 3u);
  EXPECT_EQ(mc.requests[0].context, "CTX");
  EXPECT_EQ(mc.requests[2].continuation, " three");
  EXPECT_EQ(mc.gold, 1);
  EXPECT_EQ(t.text(doc), "Question: Why?\nAnswer:");
  // A few-shot example: int target -> the choice text.
  EXPECT_EQ(FewshotContextBuilder(t).example(doc), "Question: Why?\nAnswer: two\n\n");
}

TEST(TaskFile, Defaults) {
  const TaskConfig t = parse_task_yaml("task: g\ntest_split: test\ndoc_to_text: q\ndoc_to_target: a\n", "g.yaml");
  EXPECT_EQ(t.output_type, OutputType::generate_until);
  EXPECT_EQ(t.generation_kwargs.until, std::vector<std::string>{"\n\n"});
  EXPECT_FALSE(t.generation_kwargs.do_sample);
  EXPECT_EQ(t.sampler, FewshotSampler::default_);
  const TaskConfig g = parse_task_yaml(
      "task: g\ntest_split: test\ndoc_to_text: q\ndoc_to_target: a\n"
      "generation_kwargs:\n  until: [\"Q:\", \"</s>\"]\n  max_gen_toks: 512\n  do_sample: false\n  temperature: 0.0\n",
      "g.yaml");
  EXPECT_EQ(g.generation_kwargs.until, (std::vector<std::string>{"Q:", "</s>"}));
  EXPECT_EQ(g.generation_kwargs.max_gen_toks, 512);
}

TEST(TaskFile, UnknownKeyNamesPositionAndSuggests) {
  const std::string e = thrown("task: x\ntest_split: test\ndoc_to_txt: q\ndoc_to_target: a\n");
  EXPECT_EQ(e, "t.yaml:3:1: unknown key 'doc_to_txt'; did you mean 'doc_to_text'?");
  const std::string e2 = thrown("task: x\nfewshot_config:\n  samplr: first_n\n");
  EXPECT_EQ(e2, "t.yaml:3:3: unknown key 'samplr' in fewshot_config; did you mean 'sampler'?");
  const std::string e3 = thrown("task: x\nzzzzzzzzzzzz: 1\n");
  EXPECT_EQ(e3, "t.yaml:2:1: unknown key 'zzzzzzzzzzzz'");
}

TEST(TaskFile, TypeErrorsNamePositionAndKey) {
  EXPECT_EQ(thrown("task: x\nnum_fewshot: five\n"),
            "t.yaml:2:14: key 'num_fewshot': expected a non-negative integer, got 'five'");
  EXPECT_EQ(thrown("task: x\nnum_fewshot: [5]\n"),
            "t.yaml:2:14: key 'num_fewshot': expected a non-negative integer, got a list");
  EXPECT_EQ(thrown("task: [x]\n"), "t.yaml:1:7: key 'task': expected a string, got a list");
  EXPECT_EQ(thrown("task: x\noutput_type: multiple_choise\n"),
            "t.yaml:2:14: key 'output_type': unknown value 'multiple_choise' (one of multiple_choice, "
            "loglikelihood, loglikelihood_rolling, generate_until); did you mean 'multiple_choice'?");
  EXPECT_EQ(thrown("task: x\ngeneration_kwargs:\n  do_sample: maybe\n"),
            "t.yaml:3:14: key 'do_sample': expected true or false, got 'maybe'");
  EXPECT_EQ(thrown("task: x\ndoc_to_text: \"{{q\"\n").rfind("t.yaml:2:14: key 'doc_to_text': template error:", 0),
            0u);
  EXPECT_EQ(thrown("task: x\ndoc_to_text: q\ndoc_to_target: a\n"),
            "t.yaml:1:1: missing key 'test_split' (or 'validation_split')");
}

TEST(Fewshot, MmluAnatomyFiveShotGolden) {
  const auto data = testing::shared_data_dir();
  if (data.empty()) GTEST_SKIP() << "../shared/data is absent: MMLU anatomy CSVs not available";
  const auto dev = read_mmlu_csv(data / "benchmarks/mmlu/dev/anatomy_dev.csv", "anatomy");
  const auto test = read_mmlu_csv(data / "benchmarks/mmlu/test/anatomy_test.csv", "anatomy");
  ASSERT_EQ(dev.size(), 5u);
  ASSERT_EQ(test.size(), 135u);
  const TaskConfig t = load_task_file(task_dir() / "mmlu_anatomy.yaml");
  const auto r = FewshotContextBuilder(t).build(dev, {test[0], test[1]});
  ASSERT_EQ(r.contexts.size(), 2u);
  EXPECT_FALSE(r.fewshot_from_eval_split);
  const std::string golden =
      "The following are multiple choice questions (with answers) about anatomy.\n\n"
      "What is the embryological origin of the hyoid bone?\nA. The first pharyngeal arch\n"
      "B. The first and second pharyngeal arches\nC. The second pharyngeal arch\n"
      "D. The second and third pharyngeal arches\nAnswer: D\n\n"
      "Which of these branches of the trigeminal nerve contain somatic motor processes?\n"
      "A. The supraorbital nerve\nB. The infraorbital nerve\nC. The mental nerve\n"
      "D. None of the above\nAnswer: D\n\n"
      "The pleura\nA. have no sensory innervation.\nB. are separated by a 2 mm space.\n"
      "C. extend into the neck.\nD. are composed of respiratory epithelium.\nAnswer: C\n\n"
      "In Angle's Class II Div 2 occlusion there is\nA. excess overbite of the upper lateral incisors.\n"
      "B. negative overjet of the upper central incisors.\nC. excess overjet of the upper lateral incisors.\n"
      "D. excess overjet of the upper central incisors.\nAnswer: C\n\n"
      "Which of the following is the body cavity that contains the pituitary gland?\n"
      "A. Abdominal\nB. Cranial\nC. Pleural\nD. Spinal\nAnswer: B\n\n"
      "A lesion causing compression of the facial nerve at the stylomastoid foramen will cause "
      "ipsilateral\nA. paralysis of the facial muscles.\nB. paralysis of the facial muscles and loss "
      "of taste.\nC. paralysis of the facial muscles, loss of taste and lacrimation.\nD. paralysis of "
      "the facial muscles, loss of taste, lacrimation and decreased salivation.\nAnswer:";
  EXPECT_EQ(r.contexts[0].context, golden);
  EXPECT_EQ(r.contexts[0].example_indices, (std::vector<std::size_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(r.contexts[1].example_indices, r.contexts[0].example_indices);  // first_n

  const auto mc = multiple_choice_requests(t, test[0], r.contexts[0].context);
  ASSERT_EQ(mc.requests.size(), 4u);
  EXPECT_EQ(mc.requests[3].continuation, " D");
  EXPECT_EQ(mc.gold, test[0].at("answer").get<int>());
}

TEST(Fewshot, ArcReaderMatchesAi2ArcShape) {
  const auto data = testing::shared_data_dir();
  if (data.empty()) GTEST_SKIP() << "../shared/data is absent: ARC test.json not available";
  const auto docs = read_arc_json(data / "benchmarks/arc_challenge/test.json");
  ASSERT_EQ(docs.size(), 1172u);
  const TaskConfig t = load_task_file(task_dir() / "arc_challenge.yaml");
  EXPECT_EQ(docs[0].at("choices").at("label"), json({"A", "B", "C", "D"}));
  EXPECT_EQ(multiple_choice_requests(t, docs[0], "").gold, 2);  // answerKey C
  // Offline: no train split; exemplars from test, never the item itself.
  const std::vector<json>& first = docs;
  const auto r = FewshotContextBuilder(t).build({}, first, {.fewshot_split_missing = true});
  EXPECT_TRUE(r.fewshot_from_eval_split);
  for (std::size_t i = 0; i < first.size(); ++i) {
    ASSERT_EQ(r.contexts[i].example_indices.size(), 25u);
    for (auto j : r.contexts[i].example_indices) EXPECT_NE(j, i);
  }
  // The draws are CPython's (n = 1172 > setsize 277: the selected-set branch).
  const std::string py = testing::python3_output(
      "import random, json\n"
      "r = random.Random(1234)\n"
      "print(json.dumps([[x for x in r.sample(range(1172), 26) if x != d][:25] for d in range(1172)]))");
  if (py.empty()) GTEST_SKIP() << "python3 not available";
  const auto expected = parse_lists(py);
  for (std::size_t i = 0; i < first.size(); ++i) EXPECT_EQ(r.contexts[i].example_indices, expected[i]);
  // Each context starts with its first exemplar (no description for ARC).
  const auto& ex0 = first[expected[0][0]];
  EXPECT_EQ(r.contexts[0].context.rfind("Question: " + ex0.at("question").get<std::string>() + "\nAnswer: ", 0), 0u);
}

TEST(Fewshot, DefaultSamplerMatchesPython) {
  const std::string py = testing::python3_output(
      "import random, json\n"
      "r = random.Random(1234)\n"
      "print(json.dumps([r.sample(list(range(20)), 3) for _ in range(4)]))");
  if (py.empty()) GTEST_SKIP() << "python3 not available";
  const auto expected = parse_lists(py);
  const TaskConfig t = parse_task_yaml(kSynthetic, "synth.yaml");
  std::vector<json> train, test;
  for (int i = 0; i < 20; ++i) train.push_back(synth_doc(i, "a" + std::to_string(i)));
  for (int i = 0; i < 4; ++i) test.push_back(synth_doc(100 + i, "b"));
  const auto r = FewshotContextBuilder(t).build(train, test);
  ASSERT_EQ(r.contexts.size(), 4u);
  for (std::size_t d = 0; d < 4; ++d) {
    EXPECT_EQ(r.contexts[d].example_indices, expected[d]) << "doc " << d;
    std::string want;
    for (auto j : expected[d]) want += "Q: q" + std::to_string(j) + " => a" + std::to_string(j) + "\n--\n";
    want += "Q: q" + std::to_string(100 + d);
    EXPECT_EQ(r.contexts[d].context, want);
  }
}

TEST(Fewshot, SameSplitDrawsOneMoreAndDropsTheDoc) {
  const std::string py = testing::python3_output(
      "import random, json\n"
      "r = random.Random(1234)\n"
      "docs = list(range(6))\n"
      "print(json.dumps([[x for x in r.sample(docs, 3) if x != d][:2] for d in docs]))");
  if (py.empty()) GTEST_SKIP() << "python3 not available";
  const auto expected = parse_lists(py);
  TaskConfig t = parse_task_yaml(std::string(kSynthetic) + "validation_split: train\n", "synth.yaml");
  t.fewshot_split = "test";  // fewshot_split == test_split
  std::vector<json> docs;
  for (int i = 0; i < 6; ++i) docs.push_back(synth_doc(i, "a" + std::to_string(i)));
  const auto r = FewshotContextBuilder(t).build(docs, docs, {}, 2);
  for (std::size_t d = 0; d < docs.size(); ++d) {
    EXPECT_EQ(r.contexts[d].example_indices, expected[d]) << "doc " << d;
    for (auto j : r.contexts[d].example_indices) EXPECT_NE(j, d);
  }
  // Python's own check that the rule mattered: some draw contained the doc.
  const std::string hit = testing::python3_output(
      "import random\n"
      "r = random.Random(1234)\n"
      "print(any(d in r.sample(range(6), 3) for d in range(6)))");
  EXPECT_EQ(hit.rfind("True", 0), 0u);
}

TEST(Fewshot, EmptyTargetAddsNeitherDelimiterNorTarget) {
  const TaskConfig t = parse_task_yaml(kSynthetic, "synth.yaml");
  FewshotContextBuilder b(t);
  EXPECT_EQ(b.example(synth_doc(1, "")), "Q: q1");
  EXPECT_EQ(b.example(synth_doc(2, "z")), "Q: q2 => z\n--\n");
  const TaskConfig f = parse_task_yaml(std::string(kSynthetic) + "fewshot_config:\n  sampler: first_n\n"
                                       "description: \"D({{q}})|\"\n",
                                       "synth.yaml");
  const auto r = FewshotContextBuilder(f).build({synth_doc(0, ""), synth_doc(1, "b"), synth_doc(2, "")},
                                                {synth_doc(9, "c")});
  EXPECT_EQ(r.contexts[0].context, "D(q9)|Q: q0Q: q1 => b\n--\nQ: q2Q: q9");
}

TEST(Fewshot, GoldIndexRules) {
  const TaskConfig t = parse_task_yaml(kSynthetic, "synth.yaml");
  EXPECT_EQ(t.gold_index(synth_doc(0, "y")), 1);  // string -> index in choices
  TaskConfig d = parse_task_yaml(
      "task: d\ntest_split: test\noutput_type: multiple_choice\ndoc_to_text: q\n"
      "doc_to_target: \"{{label}}\"\ndoc_to_choice: choices\n",
      "d.yaml");
  const json doc = {{"q", "Q"}, {"label", "2"}, {"choices", {"a", "b", "c"}}};
  EXPECT_EQ(d.target(doc), 2);  // digit string -> int
  const auto mc = multiple_choice_requests(d, doc, "Q");
  EXPECT_EQ(mc.gold, 2);
  EXPECT_EQ(mc.requests[1].continuation, " b");
  EXPECT_EQ(d.text(doc), "Q");  // field name -> the doc's field
}

TEST(Csv, QuotedFields) {
  const auto rows = parse_csv("a,b\n\"x, y\",\"he said \"\"hi\"\"\nline 2\"\r\nlast,\n");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1][0], "x, y");
  EXPECT_EQ(rows[1][1], "he said \"hi\"\nline 2");
  EXPECT_EQ(rows[2], (std::vector<std::string>{"last", ""}));
}

}  // namespace
}  // namespace qsweep::scoring
