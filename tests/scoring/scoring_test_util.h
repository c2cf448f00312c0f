#pragma once
// Helpers shared by the scoring tests: the shipped task files, and the
// message a malformed task YAML throws.

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "scoring/eval_set.h"
#include "scoring/task.h"
#include "tests/testutil.h"

namespace qsweep::scoring::test {

/// experiments/tasks/NAME.yaml of the source tree.
inline std::filesystem::path task_file(const std::string& name) {
  return testing::source_dir() / "experiments" / "tasks" / (name + ".yaml");
}

/// What parse_task_yaml(yaml, "t.yaml") throws as TaskError, or "(no error)".
inline std::string thrown(const std::string& yaml) {
  try {
    parse_task_yaml(yaml, "t.yaml");
  } catch (const TaskError& e) {
    return e.what();
  }
  return "(no error)";
}

/// FNV-1a 64 of a string's bytes, hex (prompt goldens of GPQA keep a hash,
/// not the text).
inline std::string fnv1a64(const std::string& s) {
  std::uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

/// The requests of one evaluated doc, in order.
inline std::vector<const Request*> requests_of(const EvalSet& es, std::size_t doc) {
  std::vector<const Request*> out;
  for (const auto& r : es.requests)
    if (r.doc == doc) out.push_back(&r);
  return out;
}

/// tests/fixtures/prompts/<task>.json (scripts/fixtures/make_prompt_goldens.py)
/// against build_eval_set on ../shared/data/benchmarks/<data_subdir>; skips
/// when the data is absent.
inline void check_golden(const std::string& task_name, const std::string& data_subdir) {
  using nlohmann::json;
  const std::filesystem::path data = testing::shared_data_dir();
  if (data.empty()) GTEST_SKIP() << "../shared/data is absent: benchmark files for " << task_name << " not available";
  const json golden =
      json::parse(testing::read_file(testing::source_dir() / "tests/fixtures/prompts" / (task_name + ".json")));
  const TaskConfig task = load_task_file(task_file(task_name));
  const EvalSet es = build_eval_set(task, data / "benchmarks" / data_subdir, {});
  EXPECT_EQ(es.task, task_name);
  EXPECT_EQ(es.num_fewshot, golden.at("num_fewshot").get<int>());
  EXPECT_EQ(es.fewshot_from_eval_split, golden.at("fewshot_from_eval_split").get<bool>());
  EXPECT_EQ(es.docs_before_limit, golden.at("docs_before_limit").get<std::size_t>());
  if (golden.contains("subtasks")) {
    EXPECT_EQ(json(es.subtasks), golden.at("subtasks"));
  } else {
    EXPECT_TRUE(es.subtasks.empty());
  }
  for (const auto& g : golden.at("docs")) {
    const std::string subtask = g.at("subtask");
    const std::size_t doc_id = g.at("doc_id");
    std::size_t at = es.docs.size();
    for (std::size_t i = 0; i < es.docs.size(); ++i)
      if (es.docs[i].subtask == subtask && es.docs[i].doc_id == doc_id) at = i;
    ASSERT_LT(at, es.docs.size()) << task_name << ": no doc " << subtask << "/" << doc_id;
    const EvalDoc& d = es.docs[at];
    SCOPED_TRACE(task_name + " " + subtask + "/" + std::to_string(doc_id));
    if (g.contains("context_fnv1a64")) {  // GPQA: no plain text in the repository
      EXPECT_EQ(fnv1a64(d.prompt), g.at("context_fnv1a64").get<std::string>());
      EXPECT_EQ(d.doc.at("answer"), g.at("answer"));
    } else {
      EXPECT_EQ(d.prompt, g.at("context").get<std::string>());
    }
    EXPECT_EQ(json(d.fewshot_ids), g.at("fewshot_ids"));
    if (g.contains("mc2_labels")) {
      EXPECT_EQ(d.doc.at("mc2_targets").at("labels"), g.at("mc2_labels"));
    }
    const auto reqs = requests_of(es, at);
    ASSERT_EQ(reqs.size(), g.at("requests").size());
    for (std::size_t i = 0; i < reqs.size(); ++i) {
      const auto& gr = g.at("requests")[i];
      EXPECT_EQ(reqs[i]->index, static_cast<int>(i));
      EXPECT_EQ(reqs[i]->context, d.prompt + gr.at("context_suffix").get<std::string>());
      if (task.output_type == OutputType::generate_until) {
        EXPECT_EQ(reqs[i]->type, RequestType::generate_until);
        EXPECT_EQ(json(reqs[i]->gen.until), golden.at("until"));
        EXPECT_EQ(reqs[i]->gen.max_gen_toks, golden.value("max_gen_toks", 256));
      } else {
        EXPECT_EQ(reqs[i]->type, RequestType::loglikelihood);
        EXPECT_EQ(reqs[i]->continuation, gr.at("continuation").get<std::string>());
      }
    }
  }
}

}  // namespace qsweep::scoring::test
