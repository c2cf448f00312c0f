#pragma once
// lm-eval v0.4.4 task definitions (YAML with lm-eval's field names), few-shot
// prompt assembly (ConfigurableTask.fewshot_context + samplers.py) and the
// multiple-choice requests of a document. Offline readers for the MMLU CSV and
// ARC JSON files of ../shared/data. See docs/scoring.md, "Task files".

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "scoring/template.h"

namespace qsweep::scoring {

/// A task-file error: "FILE:LINE:COLUMN: MESSAGE" (1-based).
class TaskError : public std::runtime_error {
 public:
  TaskError(std::string file, std::size_t line, std::size_t column, std::string message);
  const std::string& file() const { return file_; }
  std::size_t line() const { return line_; }
  std::size_t column() const { return column_; }
  const std::string& message() const { return message_; }

 private:
  std::string file_;
  std::size_t line_;
  std::size_t column_;
  std::string message_;
};

enum class OutputType { multiple_choice, loglikelihood, loglikelihood_rolling, generate_until };
const char* to_string(OutputType t);

enum class FewshotSampler { default_, first_n };

/// lm-eval's gold for a string target that is none of the choices.
inline constexpr int kGoldNotAChoice = -100;

struct GenerationKwargs {
  std::vector<std::string> until;  // empty in the file => [fewshot_delimiter]
  std::optional<int> max_gen_toks;  // unset => the model's default (256)
  bool do_sample = false;
  double temperature = 0.0;
};

/// doc_to_text / doc_to_target / doc_to_choice as written in the file: a
/// template string (a doc field name is looked up first, as lm-eval does), a
/// literal list (doc_to_choice: ["A","B","C","D"]) or an int.
struct DocField {
  bool set = false;
  std::string function;               // `!function NAME`: a built-in processor (processors.h)
  nlohmann::json literal;             // list or int given directly in YAML
  std::string source;                 // template source when a string
  std::shared_ptr<const Template> tmpl;  // parsed template when a string

  /// lm-eval's value of the field for `doc`: doc[source] when `source` names
  /// a field of the doc; the literal; else the rendered template.
  /// `as_value` = doc_to_choice semantics (render_to_value, literal list);
  /// otherwise the rendered string, turned into an int when it is all digits
  /// and `digits_to_int` (lm-eval: only when doc_to_choice is set).
  nlohmann::json value(const nlohmann::json& doc, bool as_value, bool digits_to_int) const;
};

struct TaskConfig {
  std::string file;  // where it was loaded from (for messages)
  std::string task;
  std::string dataset_path;
  std::string dataset_name;
  std::string test_split;
  std::string validation_split;
  std::string fewshot_split;
  OutputType output_type = OutputType::generate_until;
  DocField doc_to_text, doc_to_target, doc_to_choice;
  std::string description;  // template source ("" = none)
  std::shared_ptr<const Template> description_tmpl;
  std::string target_delimiter = " ";
  std::string fewshot_delimiter = "\n\n";
  int num_fewshot = 0;
  FewshotSampler sampler = FewshotSampler::default_;
  /// fewshot_config.samples (lm-eval: a fixed list of exemplars, used as
  /// they are, without process_docs): here a JSON file relative to the
  /// dataset folder holding that list, or an object whose "samples" is it.
  /// Every subtask shares it. "" = none.
  std::string fewshot_samples;
  GenerationKwargs generation_kwargs;
  bool has_generation_kwargs = false;
  nlohmann::json metric_list = nlohmann::json::array();
  nlohmann::json filter_list = nlohmann::json::array();
  std::string process_docs;     // name of a built-in C++ processor, "" = none
  std::string process_results;  // idem
  nlohmann::json metadata;               // the file's `metadata` mapping (version), null if none

  // Where the splits live inside the dataset folder (docs/scoring.md, "Data
  // files"): split -> path patterns (relative, `*`/`?` globs allowed), from
  // dataset_kwargs.data_files or the top-level data_files shorthand, in file
  // order. A split without an entry is looked for at the format's default.
  std::vector<std::pair<std::string, std::vector<std::string>>> data_files;
  std::string data_format = "jsonl";  // jsonl | json | arc_json | mmlu_csv | truthfulqa_mc_json
                                      // | leaderboard_bbh | gpqa_zip | musr (leaderboard.h)
  /// dataset_kwargs other than data_files (reader options: subtask_names,
  /// subtask_settings, zip_members, zip_password); an object, {} if none.
  nlohmann::json dataset_kwargs = nlohmann::json::object();

  // Subtasks (qsweep extension, docs/scoring.md "Subtasks"): the evaluated
  // docs split by doc[subtask_field] into subtasks "<task>_<value>".
  std::string subtask_field;
  /// subtask_names: field value -> the subtask's task name (instead of
  /// "<task>_<value>"), in file order, which is also the subtasks' order;
  /// a doc whose value has no entry is an error. Empty = "<task>_<value>" in
  /// order of first appearance.
  std::vector<std::pair<std::string, std::string>> subtask_names;
  /// GROUP -> subtask values (field values, not task names), file order.
  std::vector<std::pair<std::string, std::vector<std::string>>> subtask_groups;
  nlohmann::json aggregate_metric_list;  // lm-eval's list as JSON (null = none)
  std::string group;                     // the group's name ("" = none)
  /// lm-eval's `config.fewshot_split == config.test_split` on the keys as
  /// written, where two absent keys compare equal (None == None): then the
  /// sampler draws n+1 and drops the evaluated doc, even when the exemplars
  /// come from a training split (HellaSwag, WinoGrande).
  bool fewshot_extra_draw = false;

  /// True when doc_to_text yields an int (the gold choice index): lm-eval's
  /// multiple_input tasks (Winogrande), whose choices go into the context.
  bool multiple_input() const;
  /// The patterns of `split` (data_files entry, else the format's default:
  /// SPLIT.jsonl / SPLIT.json / SPLIT/*_SPLIT.csv).
  std::vector<std::string> split_patterns(const std::string& split) const;

  /// The split the task is scored on: test_split, else validation_split.
  const std::string& eval_split() const { return test_split.empty() ? validation_split : test_split; }
  /// Few-shot source split as lm-eval picks it (fewshot_split; else
  /// validation; else test). (No training split field: few-shot from train
  /// is declared with fewshot_split: train.)
  const std::string& fewshot_source_split() const;

  // Per-document views (lm-eval ConfigurableTask.doc_to_*).
  nlohmann::json text(const nlohmann::json& doc) const;    // string or int
  nlohmann::json target(const nlohmann::json& doc) const;  // string, int or list
  std::vector<std::string> choices(const nlohmann::json& doc) const;
  std::string description_for(const nlohmann::json& doc) const;
  /// The gold index for a multiple_choice doc (multiple_input: the int text;
  /// else int target; string target ->
  /// index in choices, kGoldNotAChoice (-100, lm-eval's value: the doc
  /// scores 0) when it is none of them; list -> first element). Throws
  /// std::runtime_error.
  int gold_index(const nlohmann::json& doc) const;
};

/// Parses a task YAML file. Throws TaskError naming file:line:column and the
/// key for unknown keys (with the nearest known key suggested), type errors,
/// bad enum values and template syntax errors.
TaskConfig load_task_file(const std::filesystem::path& path);
/// Same from text; `name` stands for the file in messages.
TaskConfig parse_task_yaml(const std::string& text, const std::string& name);

/// One evaluated doc's few-shot prompt.
struct FewshotContext {
  std::string context;                   // description + examples + text(doc)
  std::vector<std::size_t> example_indices;  // indices into the few-shot docs
};

struct FewshotOptions {
  /// The few-shot docs ARE the evaluated docs (the file's fewshot_split equals
  /// its test split): lm-eval draws n+1 and drops the doc itself.
  bool same_split = false;
  /// The few-shot split is missing offline, the exemplars come from the
  /// evaluated split instead (never the evaluated item: treated as
  /// same_split). Reported in FewshotResult::fewshot_from_eval_split.
  bool fewshot_split_missing = false;
  /// `default` sampler draws per evaluated doc; the examples come from the
  /// last one. lm-eval v0.4.4's single-turn chat path draws twice
  /// (samplers.get_chat_context samples, then calls get_context, which
  /// samples again); everything else draws once.
  int draws_per_doc = 1;
};

struct FewshotResult {
  std::vector<FewshotContext> contexts;  // one per evaluated doc, same order
  bool fewshot_from_eval_split = false;  // fewshot_split_missing was set
};

/// Builds the contexts of all evaluated docs in order, with one
/// random.Random(1234) stream per task for the `default` sampler
/// (sample(fewshot_docs, n) called once per doc, in doc order).
class FewshotContextBuilder {
 public:
  explicit FewshotContextBuilder(const TaskConfig& task, std::uint64_t seed = 1234);
  /// `num_fewshot` < 0: the task's num_fewshot.
  FewshotResult build(const std::vector<nlohmann::json>& fewshot_docs,
                      const std::vector<nlohmann::json>& eval_docs, FewshotOptions options = {},
                      int num_fewshot = -1) const;
  /// text(ex) + target_delimiter + target(ex) + fewshot_delimiter (no
  /// delimiter nor target when the target renders to "").
  std::string example(const nlohmann::json& ex) const;

 private:
  const TaskConfig& task_;
  std::uint64_t seed_;
};

/// One loglikelihood request.
struct LoglikelihoodRequest {
  std::string context;
  std::string continuation;
};

/// multiple_choice: for each choice c, (context, target_delimiter + c).
struct MultipleChoiceDoc {
  std::vector<LoglikelihoodRequest> requests;
  std::vector<std::string> choices;
  int gold = -1;
};
MultipleChoiceDoc multiple_choice_requests(const TaskConfig& task, const nlohmann::json& doc,
                                           const std::string& context);

// ---- offline data readers (../shared/data/README.md) ----

/// MMLU CSV (header question,choice0..choice3,answer) -> {question,
/// choices[4], answer int} (+ subject when given), as hails/mmlu_no_train.
std::vector<nlohmann::json> read_mmlu_csv(const std::filesystem::path& path,
                                          const std::string& subject = "");
/// ARC JSON array {id, question, A..E, answer, label} -> ai2_arc's
/// {id, question, choices: {text, label}, answerKey}.
std::vector<nlohmann::json> read_arc_json(const std::filesystem::path& path);

/// RFC 4180 CSV parse (quoted fields, "" escapes, newlines inside quotes).
std::vector<std::vector<std::string>> parse_csv(const std::string& text);

}  // namespace qsweep::scoring
