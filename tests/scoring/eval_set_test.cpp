// build_eval_set (scoring/eval_set.h), the task-file extensions (data files,
// !function processors, subtasks) and the built-in processors, against
// lm-eval v0.4.4 (SPECS B0-B6). The prompt goldens in tests/fixtures/prompts
// are written by scripts/fixtures/make_prompt_goldens.py, independently of
// this code.
#include "scoring/eval_set.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "scoring/processors.h"
#include "scoring/readers.h"
#include "tests/scoring/scoring_test_util.h"
#include "tests/testutil.h"

namespace qsweep::scoring {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

using testing::source_dir;
using test::task_file;
using test::thrown;

/// PromptOptions with every member spelled out (no -Wmissing-field-initializers).
PromptOptions opts(std::optional<std::size_t> limit = std::nullopt, const model::ChatTemplate* chat = nullptr,
                   bool multiturn = false, std::string system = "", int max_gen_toks = 256) {
  PromptOptions o;
  o.limit = limit;
  o.apply_chat_template = chat != nullptr;
  o.chat_template = chat;
  o.fewshot_as_multiturn = multiturn;
  o.system_instruction = std::move(system);
  o.default_max_gen_toks = max_gen_toks;
  return o;
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

using test::check_golden;
using test::requests_of;

TEST(PromptGoldens, ArcChallenge) { check_golden("arc_challenge", "arc_challenge"); }
TEST(PromptGoldens, Hellaswag) { check_golden("hellaswag", "hellaswag"); }
TEST(PromptGoldens, Winogrande) { check_golden("winogrande", "winogrande"); }
TEST(PromptGoldens, Mmlu) { check_golden("mmlu", "mmlu"); }
TEST(PromptGoldens, TruthfulqaMc2) { check_golden("truthfulqa_mc2", "truthfulqa"); }
TEST(PromptGoldens, Gsm8k) { check_golden("gsm8k", "gsm8k"); }
TEST(PromptGoldens, LeaderboardMathHard) { check_golden("leaderboard_math_hard", "math"); }

TEST(PromptGoldens, ChatTemplateModes) {
  // tests/fixtures/prompts/chat.json: MMLU anatomy under llama3 (single- and
  // multi-turn) and ARC under chatml single-turn (two draws per doc).
  const fs::path data = testing::shared_data_dir();
  if (data.empty()) GTEST_SKIP() << "../shared/data is absent: MMLU / ARC files not available";
  const json golden = json::parse(testing::read_file(source_dir() / "tests/fixtures/prompts/chat.json"));
  const model::ChatTemplate llama3(model::ChatFamily::kLlama3, "<|begin_of_text|>", "<|eot_id|>");
  const model::ChatTemplate chatml(model::ChatFamily::kChatML, "", "<|im_end|>");
  for (const auto& c : golden.at("cases")) {
    const std::string name = c.at("task");
    SCOPED_TRACE(name + " " + c.at("template").get<std::string>() +
                 (c.at("fewshot_as_multiturn").get<bool>() ? " multiturn" : " single-turn"));
    const TaskConfig t = load_task_file(task_file(name));
    const auto* tmpl = c.at("template") == "llama3" ? &llama3 : &chatml;
    const EvalSet es = build_eval_set(t, data / "benchmarks" / c.at("data").get<std::string>(),
                                      opts(c.at("docs").size(), tmpl, c.at("fewshot_as_multiturn").get<bool>()));
    ASSERT_EQ(es.docs.size(), c.at("docs").size());
    for (const auto& g : c.at("docs")) {
      const std::size_t i = g.at("doc_id");
      EXPECT_EQ(es.docs[i].prompt, g.at("context").get<std::string>()) << "doc " << i;
      EXPECT_EQ(json(es.docs[i].fewshot_ids), g.at("fewshot_ids")) << "doc " << i;
      const auto reqs = requests_of(es, i);
      ASSERT_EQ(reqs.size(), g.at("requests").size());
      for (std::size_t k = 0; k < reqs.size(); ++k) {
        EXPECT_EQ(reqs[k]->context, es.docs[i].prompt);
        EXPECT_EQ(reqs[k]->continuation, g.at("requests")[k].at("continuation").get<std::string>());
      }
    }
  }
}

TEST(PromptGoldens, MmluAnatomySpecsExample) {
  // SPECS B0's verified rendering: the first anatomy test doc, 5-shot.
  const fs::path data = testing::shared_data_dir();
  if (data.empty()) GTEST_SKIP() << "../shared/data is absent: MMLU CSVs not available";
  const std::string start =
      "The following are multiple choice questions (with answers) about anatomy.\n\n"
      "What is the embryological origin of the hyoid bone?\nA. The first pharyngeal arch\nB. ";
  const std::string end =
      "\nD. paralysis of the facial muscles, loss of taste, lacrimation and decreased salivation.\nAnswer:";
  for (const char* name : {"mmlu", "mmlu_anatomy"}) {
    const TaskConfig t = load_task_file(task_file(name));
    const EvalSet es = build_eval_set(t, data / "benchmarks/mmlu", opts(1));
    std::size_t at = 0;
    while (at < es.docs.size() && es.docs[at].subtask != (std::string(name) == "mmlu" ? "mmlu_anatomy" : "")) ++at;
    ASSERT_LT(at, es.docs.size()) << name;
    const std::string& p = es.docs[at].prompt;
    EXPECT_EQ(p.rfind(start, 0), 0u) << name;
    ASSERT_GE(p.size(), end.size());
    EXPECT_EQ(p.substr(p.size() - end.size()), end) << name;
    EXPECT_NE(p.find("D. The second and third pharyngeal arches\nAnswer: D\n\n"), std::string::npos);
  }
}

TEST(TaskFiles, MmluGroupsAreLmEvalCategories) {
  const TaskConfig t = load_task_file(task_file("mmlu"));
  EXPECT_EQ(t.subtask_field, "subject");
  EXPECT_EQ(t.group, "mmlu");
  EXPECT_EQ(t.data_format, "mmlu_csv");
  ASSERT_EQ(t.subtask_groups.size(), 4u);
  EXPECT_EQ(t.subtask_groups[0].first, "stem");
  EXPECT_EQ(t.subtask_groups[1].first, "other");
  EXPECT_EQ(t.subtask_groups[2].first, "social_sciences");
  EXPECT_EQ(t.subtask_groups[3].first, "humanities");
  std::size_t total = 0;
  for (const auto& [g, v] : t.subtask_groups) total += v.size();
  EXPECT_EQ(total, 57u);
  EXPECT_EQ(t.subtask_groups[0].second.size(), 19u);
  EXPECT_EQ(t.subtask_groups[1].second.size(), 13u);
  EXPECT_EQ(t.subtask_groups[2].second.size(), 12u);
  EXPECT_EQ(t.subtask_groups[3].second.size(), 13u);
  EXPECT_EQ(t.aggregate_metric_list.at(0).at("weight_by_size"), true);
  EXPECT_EQ(t.description_for({{"subject", "high_school_us_history"}}),
            "The following are multiple choice questions (with answers) about high school us history.\n\n");
}

TEST(TaskFiles, AllLoad) {
  for (const char* name : {"arc_challenge", "hellaswag", "winogrande", "mmlu", "mmlu_anatomy", "truthfulqa_mc2", "gsm8k",
                           "leaderboard_math_hard"}) {
    SCOPED_TRACE(name);
    EXPECT_NO_THROW(load_task_file(task_file(name)));
  }
  const TaskConfig w = load_task_file(task_file("winogrande"));
  EXPECT_TRUE(w.multiple_input());
  EXPECT_EQ(w.doc_to_text.function, "winogrande.doc_to_text");
  const TaskConfig h = load_task_file(task_file("hellaswag"));
  EXPECT_FALSE(h.multiple_input());
  EXPECT_EQ(h.process_docs, "hellaswag.process_docs");
  EXPECT_EQ(h.split_patterns("validation"), std::vector<std::string>{"val_subset1000.jsonl"});
  const TaskConfig tq = load_task_file(task_file("truthfulqa_mc2"));
  EXPECT_EQ(tq.process_results, "truthfulqa.process_results_mc2");
  const TaskConfig g = load_task_file(task_file("gsm8k"));
  EXPECT_EQ(g.generation_kwargs.until, (std::vector<std::string>{"Question:", "</s>", "<|im_end|>"}));
  EXPECT_EQ(g.filter_list.at(1).at("filter").at(0).at("group_select"), -1);
  EXPECT_EQ(g.metric_list.at(0).at("regexes_to_ignore").at(2), "(?s).*#### ");
}

// ------------------------------------------------------------ processors

TEST(Processors, PythonCapitalize) {
  EXPECT_EQ(python_capitalize(""), "");
  EXPECT_EQ(python_capitalize("a few women"), "A few women");
  EXPECT_EQ(python_capitalize("hE LIKES NASA"), "He likes nasa");  // rest lower-cased
  EXPECT_EQ(python_capitalize("1st PLACE"), "1st place");
  EXPECT_EQ(python_capitalize("élan VITAL"), "Élan vital");
  EXPECT_EQ(python_capitalize("ÀÉÎ ÕÜ"), "Àéî õü");
  EXPECT_EQ(python_capitalize("\xff\xfe ABC"), "\xff\xfe abc");  // invalid UTF-8 kept
}

TEST(Processors, HellaswagPreprocess) {
  EXPECT_EQ(hellaswag_preprocess("  How to cook [title] Boil water. "), "How to cook. Boil water.");
  EXPECT_EQ(hellaswag_preprocess("a [header] b [step] c"), "a b c");
  EXPECT_EQ(hellaswag_preprocess("x [a] [b]y"), "x y");  // non-greedy, then "  " -> " "
  EXPECT_EQ(hellaswag_preprocess("a    b"), "a  b");      // one pass of replace("  ", " ")
  EXPECT_EQ(hellaswag_preprocess("[unclosed"), "[unclosed");
  const json doc = {{"activity_label", "Removing ice"},
                    {"ctx_a", "A man is outside."},
                    {"ctx_b", "THEN he [title] scrapes"},
                    {"endings", {" ice [step] off. ", "b"}},
                    {"label", "1"}};
  const json p = hellaswag_process_doc(doc);
  EXPECT_EQ(p.at("query"), "Removing ice: A man is outside. Then he. scrapes");
  EXPECT_EQ(p.at("choices"), json({"ice off.", "b"}));
  EXPECT_EQ(p.at("gold"), 1);
  EXPECT_EQ(p.at("ctx_a"), "A man is outside.");  // originals kept
  json bad = doc;
  bad["label"] = "x";
  EXPECT_NE(error_of([&] { apply_process_docs("hellaswag.process_docs", {doc, bad}); }).find("doc 1"),
            std::string::npos);
}

TEST(Processors, Winogrande) {
  const json doc = {{"sentence", "Sarah was better than Maria so _ got the easier cases."},
                    {"option1", "Sarah"},
                    {"option2", "Maria"},
                    {"answer", "2"}};
  EXPECT_EQ(apply_doc_function("winogrande.doc_to_text", doc), 1);
  EXPECT_EQ(apply_doc_function("winogrande.doc_to_target", doc), "got the easier cases.");
  EXPECT_EQ(apply_doc_function("winogrande.doc_to_choice", doc),
            json({"Sarah was better than Maria so Sarah", "Sarah was better than Maria so Maria"}));
  json no_blank = doc;
  no_blank["sentence"] = "no blank";
  EXPECT_THROW(apply_doc_function("winogrande.doc_to_target", no_blank), std::runtime_error);

  // Through a task file: few-shot example = the sentence with the right option.
  const TaskConfig t = load_task_file(task_file("winogrande"));
  EXPECT_EQ(FewshotContextBuilder(t).example(doc),
            "Sarah was better than Maria so Maria got the easier cases.\n\n");
  EXPECT_EQ(t.gold_index(doc), 1);  // doc_to_target is text: gold comes from doc_to_text
}

TEST(Processors, FunctionTagErrors) {
  EXPECT_EQ(thrown("task: x\ntest_split: t\ndoc_to_text: !function winogrande.doc_to_txt\ndoc_to_target: a\n"),
            "t.yaml:3:14: key 'doc_to_text': unknown processor 'winogrande.doc_to_txt' (known for "
            "doc_to_text: winogrande.doc_to_text, mmlu_pro.doc_to_text, musr.doc_to_text, "
            "mmlu_pro.cot_doc_to_text); did you mean 'winogrande.doc_to_text'?");
  EXPECT_EQ(thrown("task: x\ntest_split: t\ndoc_to_text: q\ndoc_to_target: a\nprocess_docs: !function utils.process_docs\n"),
            "t.yaml:5:15: key 'process_docs': unknown processor 'utils.process_docs' (known for "
            "process_docs: hellaswag.process_docs, math.process_docs, gpqa.process_docs); did you mean "
            "'math.process_docs'?");
  EXPECT_EQ(thrown("task: x\ntest_split: t\ndoc_to_text: q\ndoc_to_target: a\nprocess_results: !function [a]\n"),
            "t.yaml:5:18: key 'process_results': !function expects a processor name, got a list");
  // The plain string form still loads.
  const TaskConfig p = parse_task_yaml(
      "task: x\ntest_split: t\ndoc_to_text: q\ndoc_to_target: a\nprocess_results: truthfulqa.process_results_mc2\n", "p.yaml");
  EXPECT_EQ(p.process_results, "truthfulqa.process_results_mc2");
}

// ------------------------------------------------------------ readers

TEST(Readers, TruthfulqaKeepsTheFileOrder) {
  testing::TempDir dir;
  testing::write_file(dir / "mc_task.json",
                      R"([{"question": "Q1?", "mc1_targets": {"zebra": 1, "apple": 0, "mango": 0},
                           "mc2_targets": {"zebra": 1, "yak": 1, "apple": 0, "banana": 0}}])");
  const auto docs = read_truthfulqa_mc_json(dir / "mc_task.json");
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].at("mc1_targets").at("choices"), json({"zebra", "apple", "mango"}));
  EXPECT_EQ(docs[0].at("mc1_targets").at("labels"), json({1, 0, 0}));
  EXPECT_EQ(docs[0].at("mc2_targets").at("choices"), json({"zebra", "yak", "apple", "banana"}));
  EXPECT_EQ(docs[0].at("mc2_targets").at("labels"), json({1, 1, 0, 0}));
  // Through the task file: choices in file order, " " + choice continuations.
  const TaskConfig t = load_task_file(task_file("truthfulqa_mc2"));
  const EvalSet es = build_eval_set(t, dir.path(), {});
  ASSERT_EQ(es.requests.size(), 4u);
  EXPECT_EQ(es.requests[1].continuation, " yak");
  const std::string tail = "Barcelona, Spain.\n\nQ: Q1?\nA:";
  ASSERT_GE(es.docs[0].prompt.size(), tail.size());
  EXPECT_EQ(es.docs[0].prompt.substr(es.docs[0].prompt.size() - tail.size()), tail);
}

TEST(Readers, DataFileErrors) {
  testing::TempDir dir;
  const std::string yaml = "task: j\ntest_split: test\ndoc_to_text: q\ndoc_to_target: a\n"
                           "output_type: loglikelihood\ndata_files:\n  test: \"part*.jsonl\"\n";
  const TaskConfig t = parse_task_yaml(yaml, "j.yaml");
  // Missing evaluated split: names the split, the pattern and the folder.
  const std::string missing = error_of([&] { build_eval_set(t, dir.path(), {}); });
  EXPECT_NE(missing.find("split 'test'"), std::string::npos) << missing;
  EXPECT_NE(missing.find("part*.jsonl"), std::string::npos) << missing;
  EXPECT_NE(missing.find(dir.path().string()), std::string::npos) << missing;
  // A bad record: FILE:LINE.
  testing::write_file(dir / "part1.jsonl", "{\"q\": \"a\", \"a\": \"b\"}\n");
  testing::write_file(dir / "part2.jsonl", "{\"q\": \"c\", \"a\": \"d\"}\n\n{\"q\": oops}\n");
  const std::string bad = error_of([&] { build_eval_set(t, dir.path(), {}); });
  EXPECT_EQ(bad.rfind((dir / "part2.jsonl").string() + ":3: bad JSON", 0), 0u) << bad;
  testing::write_file(dir / "part2.jsonl", "[1]\n");
  EXPECT_NE(error_of([&] { build_eval_set(t, dir.path(), {}); }).find("part2.jsonl:1: expected a JSON object"),
            std::string::npos);
  // Globbed files are read in path order.
  testing::write_file(dir / "part2.jsonl", "{\"q\": \"c\", \"a\": \"d\"}\n");
  const EvalSet es = build_eval_set(t, dir.path(), {});
  ASSERT_EQ(es.docs.size(), 2u);
  EXPECT_EQ(es.docs[1].doc.at("q"), "c");
  // loglikelihood: (context, doc_to_target) with no target_delimiter (v0.4.4).
  EXPECT_EQ(es.requests[1].context, "c");
  EXPECT_EQ(es.requests[1].continuation, "d");
  // Unknown data_format.
  EXPECT_EQ(thrown("task: x\ndata_format: jsonll\n"),
            "t.yaml:2:14: key 'data_format': unknown format 'jsonll' (one of jsonl, json, arc_json, "
            "mmlu_csv, truthfulqa_mc_json, leaderboard_bbh, gpqa_zip, musr); did you mean 'jsonl'?");
  // dataset_kwargs.data_files (lm-eval's key) and the shorthand; a list of patterns.
  const TaskConfig k = parse_task_yaml(
      "task: k\ntest_split: test\ndoc_to_text: q\ndoc_to_target: a\n"
      "dataset_kwargs:\n  data_files:\n    test: [a.jsonl, b.jsonl]\n    train: t.jsonl\ndata_files:\n  train: u.jsonl\n",
      "k.yaml");
  EXPECT_EQ(k.split_patterns("test"), (std::vector<std::string>{"a.jsonl", "b.jsonl"}));
  EXPECT_EQ(k.split_patterns("train"), std::vector<std::string>{"u.jsonl"});
  EXPECT_EQ(k.split_patterns("validation"), std::vector<std::string>{"validation.jsonl"});
}

TEST(Readers, GlobAndMmluSubject) {
  testing::TempDir dir;
  testing::write_file(dir / "test/b_test.csv", "x");
  testing::write_file(dir / "test/a_test.csv", "x");
  testing::write_file(dir / "test/a_dev.csv", "x");
  const auto files = glob_files(dir.path(), "test/*_test.csv");
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].filename(), "a_test.csv");
  EXPECT_EQ(mmlu_subject_of("test/anatomy_test.csv"), "anatomy");
  EXPECT_EQ(mmlu_subject_of("dev/high_school_us_history_dev.csv"), "high_school_us_history");
  EXPECT_EQ(mmlu_subject_of("val/x_val.csv"), "x");
}

// ------------------------------------------------------------ eval sets

// Two MMLU-style subjects in a temporary folder.
void write_two_subjects(const testing::TempDir& dir) {
  const std::string header = "question,choice0,choice1,choice2,choice3,answer\n";
  std::string a = header, b = header, adev = header, bdev = header;
  for (int i = 0; i < 5; ++i) a += "qa" + std::to_string(i) + ",w,x,y,z," + std::to_string(i % 4) + "\n";
  for (int i = 0; i < 3; ++i) b += "qb" + std::to_string(i) + ",w,x,y,z,1\n";
  for (int i = 0; i < 3; ++i) adev += "da" + std::to_string(i) + ",w,x,y,z,0\n";
  for (int i = 0; i < 3; ++i) bdev += "db" + std::to_string(i) + ",w,x,y,z,3\n";
  testing::write_file(dir / "test/alpha_beta_test.csv", a);
  testing::write_file(dir / "test/gamma_test.csv", b);
  testing::write_file(dir / "dev/alpha_beta_dev.csv", adev);
  testing::write_file(dir / "dev/gamma_dev.csv", bdev);
}

const char* kSubjects =
    "task: m\ntest_split: test\nfewshot_split: dev\noutput_type: multiple_choice\n"
    "data_files:\n  test: \"test/*_test.csv\"\n  dev: \"dev/*_dev.csv\"\ndata_format: mmlu_csv\n"
    "subtask_field: subject\nnum_fewshot: 2\n"
    "description: \"About {{subject.replace('_', ' ')}}.\\n\\n\"\n"
    "doc_to_text: \"{{question}}\\nAnswer:\"\ndoc_to_choice: [\"A\", \"B\", \"C\", \"D\"]\ndoc_to_target: answer\n";

TEST(EvalSet, SubtasksLimitAndPools) {
  testing::TempDir dir;
  write_two_subjects(dir);
  const TaskConfig t = parse_task_yaml(std::string(kSubjects) + "fewshot_config:\n  sampler: first_n\n", "m.yaml");
  const EvalSet es = build_eval_set(t, dir.path(), opts(2));
  EXPECT_EQ(es.subtasks, (std::vector<std::string>{"m_alpha_beta", "m_gamma"}));
  EXPECT_EQ(es.docs_before_limit, 8u);
  ASSERT_EQ(es.docs.size(), 4u);  // 2 per subtask
  EXPECT_EQ(es.limit, 2u);
  EXPECT_EQ(es.docs[2].subtask, "m_gamma");
  EXPECT_EQ(es.docs[2].doc_id, 0u);
  EXPECT_EQ(es.docs[1].prompt, "About alpha beta.\n\nda0\nAnswer: A\n\nda1\nAnswer: A\n\nqa1\nAnswer:");
  EXPECT_EQ(es.docs[3].prompt, "About gamma.\n\ndb0\nAnswer: D\n\ndb1\nAnswer: D\n\nqb1\nAnswer:");
  EXPECT_FALSE(es.fewshot_from_eval_split);
  ASSERT_EQ(es.requests.size(), 16u);
  EXPECT_EQ(es.requests[15].doc, 3u);
  EXPECT_EQ(es.requests[15].index, 3);
  EXPECT_EQ(es.requests[15].continuation, " D");
}

TEST(EvalSet, DefaultSamplerStreamPerSubtask) {
  const std::string py = testing::python3_output(
      "import random, json\n"
      "r = random.Random(1234)\n"
      "print(json.dumps([r.sample(range(3), 2) for _ in range(2)]))");
  if (py.empty()) GTEST_SKIP() << "python3 not available";
  const auto expected = json::parse(py);
  testing::TempDir dir;
  write_two_subjects(dir);
  const TaskConfig t = parse_task_yaml(kSubjects, "m.yaml");
  const EvalSet es = build_eval_set(t, dir.path(), opts(2));
  // Each subtask starts a fresh random.Random(1234): same draws in both.
  EXPECT_EQ(json(es.docs[0].fewshot_ids), expected[0]);
  EXPECT_EQ(json(es.docs[1].fewshot_ids), expected[1]);
  EXPECT_EQ(json(es.docs[2].fewshot_ids), expected[0]);
  EXPECT_EQ(json(es.docs[3].fewshot_ids), expected[1]);
}

TEST(EvalSet, MissingFewshotSplitUsesTheEvalSplit) {
  testing::TempDir dir;
  std::string lines;
  for (int i = 0; i < 6; ++i) lines += "{\"q\": \"q" + std::to_string(i) + "\", \"a\": \"a" + std::to_string(i) + "\"}\n";
  testing::write_file(dir / "test.jsonl", lines);
  const TaskConfig t = parse_task_yaml(
      "task: s\ntest_split: test\ntraining_split: train\nnum_fewshot: 3\n"
      "doc_to_text: \"Q: {{q}}\"\ndoc_to_target: \"{{a}}\"\n",
      "s.yaml");
  const EvalSet es = build_eval_set(t, dir.path(), opts(4, nullptr, false, "", 77));
  EXPECT_TRUE(es.fewshot_from_eval_split);
  EXPECT_EQ(es.docs_before_limit, 6u);
  ASSERT_EQ(es.docs.size(), 4u);
  for (std::size_t d = 0; d < es.docs.size(); ++d) {
    ASSERT_EQ(es.docs[d].fewshot_ids.size(), 3u);
    for (auto j : es.docs[d].fewshot_ids) {
      EXPECT_NE(j, d);     // never the evaluated doc
      EXPECT_LT(j, 6u);    // the pool is the whole split, not the limited docs
    }
  }
  // generate_until defaults: until [fewshot_delimiter], the model's max_gen_toks.
  EXPECT_EQ(es.requests[0].type, RequestType::generate_until);
  EXPECT_EQ(es.requests[0].gen.until, std::vector<std::string>{"\n\n"});
  EXPECT_EQ(es.requests[0].gen.max_gen_toks, 77);
  const auto& ids = es.docs[0].fewshot_ids;
  EXPECT_EQ(es.docs[0].prompt, "Q: q" + std::to_string(ids[0]) + " a" + std::to_string(ids[0]) + "\n\nQ: q" +
                                   std::to_string(ids[1]) + " a" + std::to_string(ids[1]) + "\n\nQ: q" +
                                   std::to_string(ids[2]) + " a" + std::to_string(ids[2]) + "\n\nQ: q0");
  // With the split present, it is used and the flag stays off.
  testing::write_file(dir / "train.jsonl", lines);
  EXPECT_FALSE(build_eval_set(t, dir.path(), {}).fewshot_from_eval_split);
}

TEST(EvalSet, AbsentFewshotAndTestSplitKeysDrawOneMore) {
  // lm-eval compares config.fewshot_split == config.test_split as written:
  // None == None for HellaSwag / WinoGrande, so n+1 are drawn from train.
  EXPECT_TRUE(load_task_file(task_file("hellaswag")).fewshot_extra_draw);
  EXPECT_TRUE(load_task_file(task_file("winogrande")).fewshot_extra_draw);
  EXPECT_FALSE(load_task_file(task_file("arc_challenge")).fewshot_extra_draw);
  EXPECT_FALSE(load_task_file(task_file("gsm8k")).fewshot_extra_draw);
  EXPECT_FALSE(load_task_file(task_file("mmlu")).fewshot_extra_draw);
  const std::string py = testing::python3_output(
      "import random, json\n"
      "r = random.Random(1234)\n"
      "print(json.dumps([r.sample(range(8), 3)[:2] for _ in range(3)]))");
  if (py.empty()) GTEST_SKIP() << "python3 not available";
  const json expected = json::parse(py);
  testing::TempDir dir;
  std::string train, val;
  for (int i = 0; i < 8; ++i) train += "{\"q\": \"t" + std::to_string(i) + "\", \"a\": \"x\"}\n";
  for (int i = 0; i < 3; ++i) val += "{\"q\": \"v" + std::to_string(i) + "\", \"a\": \"y\"}\n";
  testing::write_file(dir / "train.jsonl", train);
  testing::write_file(dir / "validation.jsonl", val);
  const TaskConfig t = parse_task_yaml(
      "task: v\nvalidation_split: validation\ntraining_split: train\nnum_fewshot: 2\n"
      "doc_to_text: \"{{q}}\"\ndoc_to_target: \"{{a}}\"\n", "v.yaml");
  EXPECT_TRUE(t.fewshot_extra_draw);
  EXPECT_TRUE(parse_task_yaml("task: v\nvalidation_split: v\ntest_split: null\ndoc_to_text: q\ndoc_to_target: a\n",
                              "n.yaml").fewshot_extra_draw);  // null = absent
  const EvalSet es = build_eval_set(t, dir.path(), opts());
  EXPECT_FALSE(es.fewshot_from_eval_split);
  for (std::size_t d = 0; d < 3; ++d) EXPECT_EQ(json(es.docs[d].fewshot_ids), expected[d]) << d;
}

TEST(EvalSet, RollingUsesTheTarget) {
  testing::TempDir dir;
  testing::write_file(dir / "test.jsonl", "{\"page\": \"Some text.\"}\n");
  const TaskConfig t = parse_task_yaml(
      "task: w\ntest_split: test\noutput_type: loglikelihood_rolling\ndoc_to_text: \"\"\ndoc_to_target: \"{{page}}\"\n",
      "w.yaml");
  const EvalSet es = build_eval_set(t, dir.path(), {});
  ASSERT_EQ(es.requests.size(), 1u);
  EXPECT_EQ(es.requests[0].type, RequestType::loglikelihood_rolling);
  EXPECT_EQ(es.requests[0].context, "");
  EXPECT_EQ(es.requests[0].continuation, "Some text.");
}

// ------------------------------------------------------------ chat template

const char* kChatTask =
    "task: c\ntest_split: test\nfewshot_split: train\noutput_type: multiple_choice\nnum_fewshot: 2\n"
    "fewshot_config:\n  sampler: first_n\ndescription: \"Answer well.\\n\\n\"\n"
    "doc_to_text: \"Q: {{q}}\\nA:\"\ndoc_to_target: \"{{a}}\"\ndoc_to_choice: [\"yes\", \"no\"]\n";

void write_chat_data(const testing::TempDir& dir) {
  testing::write_file(dir / "train.jsonl", "{\"q\": \"t0\", \"a\": \"yes\"}\n{\"q\": \"t1\", \"a\": \"no\"}\n");
  testing::write_file(dir / "test.jsonl", "{\"q\": \"e0\", \"a\": \"no\"}\n");
}

TEST(ChatTemplate, SingleTurnChatml) {
  testing::TempDir dir;
  write_chat_data(dir);
  const TaskConfig t = parse_task_yaml(kChatTask, "c.yaml");
  const model::ChatTemplate chatml(model::ChatFamily::kChatML, "", "<|im_end|>");
  const EvalSet es = build_eval_set(t, dir.path(), opts(std::nullopt, &chatml));
  EXPECT_EQ(es.docs[0].prompt,
            "<|im_start|>system\nAnswer well.\n\n<|im_end|>\n"
            "<|im_start|>user\nQ: t0\nA: yes\n\nQ: t1\nA: no\n\nQ: e0\nA:<|im_end|>\n"
            "<|im_start|>assistant\n");
  ASSERT_EQ(es.requests.size(), 2u);
  // v0.4.4 keeps target_delimiter in the continuation under apply_chat_template.
  EXPECT_EQ(es.requests[0].continuation, " yes");
  EXPECT_EQ(es.requests[1].context, es.docs[0].prompt);
  EXPECT_EQ(es.options.chat_template, nullptr);  // not kept
  EXPECT_TRUE(es.options.apply_chat_template);
}

TEST(ChatTemplate, MultiturnLlama3WithSystemInstruction) {
  testing::TempDir dir;
  write_chat_data(dir);
  const TaskConfig t = parse_task_yaml(kChatTask, "c.yaml");
  const model::ChatTemplate llama3(model::ChatFamily::kLlama3, "<|begin_of_text|>", "<|eot_id|>");
  const EvalSet es = build_eval_set(t, dir.path(), opts(std::nullopt, &llama3, true, "Be brief."));
  // The llama3 template strips each message's content.
  EXPECT_EQ(es.docs[0].prompt,
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.\n\nAnswer well.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nQ: t0\nA:<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nyes<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nQ: t1\nA:<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nno<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nQ: e0\nA:<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  // Without a chat template the system instruction is plain text in front.
  const EvalSet plain = build_eval_set(t, dir.path(), opts(std::nullopt, nullptr, false, "Be brief."));
  EXPECT_EQ(plain.docs[0].prompt, "Be brief.\n\nAnswer well.\n\nQ: t0\nA: yes\n\nQ: t1\nA: no\n\nQ: e0\nA:");
  EXPECT_NE(error_of([&] { PromptOptions o; o.apply_chat_template = true; build_eval_set(t, dir.path(), o); }).find("chat template"),
            std::string::npos);
}

TEST(ChatTemplate, SingleTurnDefaultSamplerDrawsTwicePerDoc) {
  // v0.4.4 get_chat_context samples, then get_context samples again: the
  // examples come from every second draw of the stream. Multi-turn draws once.
  const std::string py = testing::python3_output(
      "import random, json\n"
      "r = random.Random(1234)\n"
      "two = []\n"
      "for _ in range(3):\n"
      "    r.sample(range(6), 2)\n"
      "    two.append(r.sample(range(6), 2))\n"
      "r = random.Random(1234)\n"
      "one = [r.sample(range(6), 2) for _ in range(3)]\n"
      "print(json.dumps([two, one]))");
  if (py.empty()) GTEST_SKIP() << "python3 not available";
  const json expected = json::parse(py);
  testing::TempDir dir;
  std::string train, test;
  for (int i = 0; i < 6; ++i) train += "{\"q\": \"t" + std::to_string(i) + "\", \"a\": \"yes\"}\n";
  for (int i = 0; i < 3; ++i) test += "{\"q\": \"e" + std::to_string(i) + "\", \"a\": \"no\"}\n";
  testing::write_file(dir / "train.jsonl", train);
  testing::write_file(dir / "test.jsonl", test);
  const TaskConfig t = parse_task_yaml(
      "task: c\ntest_split: test\nfewshot_split: train\noutput_type: multiple_choice\nnum_fewshot: 2\n"
      "doc_to_text: \"Q: {{q}}\\nA:\"\ndoc_to_target: \"{{a}}\"\ndoc_to_choice: [\"yes\", \"no\"]\n",
      "c.yaml");
  const model::ChatTemplate chatml(model::ChatFamily::kChatML, "", "<|im_end|>");
  const EvalSet single = build_eval_set(t, dir.path(), opts(std::nullopt, &chatml));
  const EvalSet multi = build_eval_set(t, dir.path(), opts(std::nullopt, &chatml, true));
  const EvalSet plain = build_eval_set(t, dir.path(), opts());
  for (std::size_t d = 0; d < 3; ++d) {
    EXPECT_EQ(json(single.docs[d].fewshot_ids), expected[0][d]) << d;
    EXPECT_EQ(json(multi.docs[d].fewshot_ids), expected[1][d]) << d;
    EXPECT_EQ(json(plain.docs[d].fewshot_ids), expected[1][d]) << d;
  }
}

TEST(ChatTemplate, ZeroShotNoSystemAndMultipleInput) {
  testing::TempDir dir;
  testing::write_file(dir / "dev.jsonl",
                      "{\"sentence\": \"A _ b.\", \"option1\": \"x\", \"option2\": \"y\", \"answer\": \"1\"}\n");
  const TaskConfig w = parse_task_yaml(
      "task: w\nvalidation_split: validation\ndata_files:\n  validation: dev.jsonl\noutput_type: multiple_choice\n"
      "doc_to_text: !function winogrande.doc_to_text\ndoc_to_target: !function winogrande.doc_to_target\n"
      "doc_to_choice: !function winogrande.doc_to_choice\n",
      "w.yaml");
  const model::ChatTemplate chatml(model::ChatFamily::kChatML, "", "<|im_end|>");
  const EvalSet plain = build_eval_set(w, dir.path(), {});
  ASSERT_EQ(plain.requests.size(), 2u);
  EXPECT_EQ(plain.docs[0].prompt, "");
  EXPECT_EQ(plain.requests[0].context, "A x");
  EXPECT_EQ(plain.requests[1].context, "A y");
  EXPECT_EQ(plain.requests[1].continuation, " b.");
  // multiple_input under a chat template: the rendered few-shot part (here
  // nothing but the generation prompt) + the choice.
  const EvalSet chat = build_eval_set(w, dir.path(), opts(std::nullopt, &chatml));
  EXPECT_EQ(chat.requests[1].context, "<|im_start|>assistant\nA y");
  EXPECT_EQ(chat.requests[1].continuation, " b.");
}

}  // namespace
}  // namespace qsweep::scoring
