// build_eval_set: dataset folder -> documents, few-shot prompts and lm-eval
// requests (scoring/eval_set.h; docs/scoring.md, "Evaluation sets" and
// "Chat-template mode"). EvalSet's JSON form lives in eval_set_json.cpp.
#include "scoring/eval_set.h"

#include <functional>
#include <optional>

#include <algorithm>
#include <stdexcept>

#include "model/util/text_file.h"
#include "scoring/processors.h"
#include "scoring/readers.h"

namespace qsweep::scoring {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

/// A split's docs after process_docs, or nullopt when no file matches.
std::optional<std::vector<json>> read_processed(const TaskConfig& task, const fs::path& dir,
                                                const std::string& split) {
  auto docs = read_split(task, dir, split);
  if (!docs || task.process_docs.empty()) return docs;
  return apply_process_docs(task.process_docs, *docs);
}

/// A doc_to_text value as the text of a prompt (int -> the choice it names).
std::string question_text(const TaskConfig& task, const json& doc) {
  const json text = task.text(doc);
  if (text.is_string()) return text.get<std::string>();
  if (text.is_number_integer() && task.doc_to_choice.set) return task.choices(doc).at(text.get<std::size_t>());
  return python_str(text);
}

/// A doc_to_target value as text: list -> str(first), int -> the choice
/// (with doc_to_choice) or str(int), string as is.
std::string target_text(const TaskConfig& task, const json& doc) {
  const json t = task.target(doc);
  if (t.is_string()) return t.get<std::string>();
  if (t.is_array()) return t.empty() ? std::string{} : python_str(t.front());
  if (t.is_number_integer() && task.doc_to_choice.set) return task.choices(doc).at(t.get<std::size_t>());
  return python_str(t);
}

/// lm-eval fewshot_context's system prompt: system_instruction +
/// fewshot_delimiter + description, or whichever of the two is non-empty.
std::string system_prompt(const TaskConfig& task, const std::string& instruction, const std::string& description) {
  if (!instruction.empty() && !description.empty()) return instruction + task.fewshot_delimiter + description;
  return instruction.empty() ? description : instruction;
}

/// The context of one doc. `choice_prefix`: multiple_input tasks get the
/// context WITHOUT the question (lm-eval returns labeled_examples; each
/// request appends its choice).
// `example(i)`: the rendered few-shot example of pool[i] (memoized by the caller).
std::string build_context(const TaskConfig& task, const PromptOptions& opt, const json& doc,
                          const std::vector<json>& pool, const std::vector<std::size_t>& examples,
                          int num_fewshot,
                          const std::function<const std::string&(std::size_t)>& example) {
  const bool multi = task.multiple_input();
  const std::string sys = system_prompt(task, opt.system_instruction, task.description_for(doc));
  if (!opt.apply_chat_template) {
    std::string ctx = sys;
    for (const auto i : examples) ctx += example(i);
    if (!multi) ctx += question_text(task, doc);
    return ctx;
  }
  // Chat template (lm-eval v0.4.4 fewshot_context with apply_chat_template,
  // samplers.get_chat_context, append_target_question).
  std::vector<model::ChatMessage> msgs;
  if (!sys.empty()) msgs.push_back({"system", sys});
  if (num_fewshot > 0) {
    if (opt.fewshot_as_multiturn) {
      for (const auto i : examples) {
        msgs.push_back({"user", question_text(task, pool[i])});
        msgs.push_back({"assistant", target_text(task, pool[i])});
      }
    } else {
      std::string plain;
      for (const auto i : examples) plain += example(i);
      msgs.push_back({"user", plain});
    }
  }
  if (!multi) {
    const std::string q = question_text(task, doc);
    if (!opt.fewshot_as_multiturn && !msgs.empty() && msgs.back().role != "system") msgs.back().content += q;
    else msgs.push_back({"user", q});
  }
  return opt.chat_template->render(msgs, /*add_generation_prompt=*/true);
}

void add_requests(const TaskConfig& task, const PromptOptions& opt, std::size_t doc_index, const json& doc,
                  const std::string& ctx, std::vector<Request>& out) {
  switch (task.output_type) {
    case OutputType::multiple_choice: {
      // v0.4.4 keeps target_delimiter under apply_chat_template (docs/scoring.md).
      if (task.multiple_input()) {
        const auto choices = task.choices(doc);
        const json gold = task.text(doc);
        if (!gold.is_number_integer() || gold.get<long long>() < 0 ||
            gold.get<long long>() >= static_cast<long long>(choices.size()))
          throw std::runtime_error(task.task + ": doc " + std::to_string(doc_index) + ": gold " +
                                   python_str(gold) + " outside the " + std::to_string(choices.size()) +
                                   " choices");
        const std::string cont = task.target_delimiter + target_text(task, doc);
        for (std::size_t i = 0; i < choices.size(); ++i)
          out.push_back({RequestType::loglikelihood, doc_index, static_cast<int>(i), ctx + choices[i], cont, {}});
      } else {
        const auto mc = multiple_choice_requests(task, doc, ctx);
        for (std::size_t i = 0; i < mc.requests.size(); ++i)
          out.push_back({RequestType::loglikelihood, doc_index, static_cast<int>(i), mc.requests[i].context,
                         mc.requests[i].continuation, {}});
      }
      return;
    }
    case OutputType::generate_until: {
      // `until` was defaulted by the task parser; an explicit `until: []`
      // (IFEval) stays empty: only EOS stops.
      GenerationKwargs g = task.generation_kwargs;
      if (!g.max_gen_toks) g.max_gen_toks = opt.default_max_gen_toks;
      out.push_back({RequestType::generate_until, doc_index, 0, ctx, "", g});
      return;
    }
    case OutputType::loglikelihood:
      // lm-eval v0.4.4: (ctx, doc_to_target(doc)); no target_delimiter.
      out.push_back({RequestType::loglikelihood, doc_index, 0, ctx, target_text(task, doc), {}});
      return;
    case OutputType::loglikelihood_rolling:
      out.push_back({RequestType::loglikelihood_rolling, doc_index, 0, "", target_text(task, doc), {}});
      return;
  }
}

/// Docs split by subtask value, in order of first appearance; one unnamed
/// group with all docs when the task has no subtask_field.
std::vector<std::pair<std::string, std::vector<std::size_t>>> group_by_subtask(const TaskConfig& task,
                                                                               const std::vector<json>& docs,
                                                                               const std::string& split) {
  std::vector<std::pair<std::string, std::vector<std::size_t>>> groups;
  if (task.subtask_field.empty()) {
    groups.emplace_back("", std::vector<std::size_t>{});
    for (std::size_t i = 0; i < docs.size(); ++i) groups[0].second.push_back(i);
    return groups;
  }
  for (std::size_t i = 0; i < docs.size(); ++i) {
    const json& d = docs[i];
    if (!d.is_object() || !d.contains(task.subtask_field) || !d.at(task.subtask_field).is_string())
      throw std::runtime_error(task.task + ": split '" + split + "' doc " + std::to_string(i) +
                               " has no string field '" + task.subtask_field + "' (subtask_field)");
    const std::string v = d.at(task.subtask_field).get<std::string>();
    if (!task.subtask_names.empty() &&
        std::none_of(task.subtask_names.begin(), task.subtask_names.end(), [&](const auto& e) { return e.first == v; }))
      throw std::runtime_error(task.task + ": split '" + split + "' doc " + std::to_string(i) + ": " +
                               task.subtask_field + " '" + v + "' is not in subtask_names");
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == v; });
    if (it == groups.end()) groups.emplace_back(v, std::vector<std::size_t>{i});
    else it->second.push_back(i);
  }
  if (!task.subtask_names.empty()) {
    // subtask_names' order is the subtasks' order.
    auto rank = [&](const std::string& v) {
      for (std::size_t k = 0; k < task.subtask_names.size(); ++k)
        if (task.subtask_names[k].first == v) return k;
      return task.subtask_names.size();
    };
    std::stable_sort(groups.begin(), groups.end(),
                     [&](const auto& a, const auto& b) { return rank(a.first) < rank(b.first); });
  }
  return groups;
}

/// The task name of the subtask whose docs have `value` ("" = no subtasks).
std::string subtask_name(const TaskConfig& task, const std::string& value) {
  if (value.empty()) return {};
  for (const auto& [v, name] : task.subtask_names)
    if (v == value) return name;
  return task.task + "_" + value;
}

/// fewshot_config.samples: a JSON list of docs, or an object holding it
/// under "samples"; used as is (lm-eval applies no process_docs to them).
std::vector<json> read_fewshot_samples(const TaskConfig& task, const fs::path& dir) {
  const fs::path path = dir / task.fewshot_samples;
  if (!fs::exists(path))
    throw std::runtime_error(task.task + ": fewshot_config.samples: " + path.string() + " is missing");
  json all = model::read_json_file(path);
  if (all.is_object() && all.contains("samples")) all = all.at("samples");
  if (!all.is_array()) throw std::runtime_error(path.string() + ": expected a list of few-shot docs (or {samples: [...]})");
  std::vector<json> docs;
  for (auto& d : all) {
    if (!d.is_object()) throw std::runtime_error(path.string() + ": a few-shot sample is not an object");
    docs.push_back(d);
  }
  return docs;
}

}  // namespace

EvalSet build_eval_set(const TaskConfig& task, const fs::path& dataset_dir, const PromptOptions& options) {
  if (options.apply_chat_template && !options.chat_template)
    throw std::runtime_error(task.task + ": apply_chat_template needs a chat template");
  if (options.fewshot_as_multiturn && !options.apply_chat_template)
    throw std::runtime_error(task.task + ": fewshot_as_multiturn needs apply_chat_template (as lm-eval)");

  EvalSet es;
  es.task = task.task;
  es.options = options;
  es.options.chat_template = nullptr;
  es.limit = options.limit;
  const int n = options.num_fewshot < 0 ? task.num_fewshot : options.num_fewshot;
  es.num_fewshot = n;

  const std::string& eval_split = task.eval_split();
  const auto read = read_processed(task, dataset_dir, eval_split);
  if (!read)
    throw std::runtime_error(task.task + ": split '" + eval_split + "' is missing: no file matches '" +
                             join(task.split_patterns(eval_split)) + "' in " + dataset_dir.string());
  const std::vector<json>& docs = *read;
  es.docs_before_limit = docs.size();

  // Few-shot docs: the few-shot source split; the evaluated split itself when
  // they are the same or the source is missing offline (same-split rule:
  // never the evaluated doc).
  const std::string& fewshot_split = task.fewshot_source_split();
  bool same_split = fewshot_split == eval_split;
  std::vector<json> fewshot_docs;
  const bool fixed_samples = !task.fewshot_samples.empty();
  if (fixed_samples) {
    same_split = false;
    if (n > 0) fewshot_docs = read_fewshot_samples(task, dataset_dir);
  } else if (n > 0 && !same_split) {
    if (auto f = read_processed(task, dataset_dir, fewshot_split)) {
      fewshot_docs = std::move(*f);
    } else {
      es.fewshot_from_eval_split = true;
      same_split = true;
    }
  }

  const auto groups = group_by_subtask(task, docs, eval_split);
  const auto fewshot_groups =
      same_split || fixed_samples ? groups : group_by_subtask(task, fewshot_docs, fewshot_split);
  const FewshotContextBuilder builder(task);

  for (const auto& [value, indices] : groups) {
    const std::string subtask = subtask_name(task, value);
    if (!subtask.empty()) es.subtasks.push_back(subtask);
    std::vector<json> sub_docs;
    for (const auto i : indices) sub_docs.push_back(docs[i]);
    if (!subtask.empty()) es.subtask_docs_before_limit.push_back(sub_docs.size());
    // This subtask's few-shot pool (docs with the same field value).
    std::vector<json> pool;
    if (same_split) pool = sub_docs;
    else if (fixed_samples) pool = fewshot_docs;  // shared by every subtask
    else if (n > 0) {
      for (const auto& [fv, fi] : fewshot_groups)
        if (fv == value)
          for (const auto i : fi) pool.push_back(fewshot_docs[i]);
    }
    // --limit: the first N docs of each subtask, before any draw (lm-eval
    // builds contexts only for the limited docs, so the RNG stream covers them).
    const std::size_t count = options.limit ? std::min(*options.limit, sub_docs.size()) : sub_docs.size();
    const std::vector<json> evaluated(sub_docs.begin(), sub_docs.begin() + count);
    FewshotResult fr;
    try {
      FewshotOptions fo;
      fo.same_split = same_split;
      fo.draws_per_doc = options.apply_chat_template && !options.fewshot_as_multiturn ? 2 : 1;
      fr = builder.build(pool, evaluated, fo, n);
    } catch (const std::exception& e) {
      throw std::runtime_error((subtask.empty() ? task.task : subtask) + ": " + e.what());
    }
    std::vector<std::optional<std::string>> rendered(pool.size());
    const auto example = [&](std::size_t i) -> const std::string& {
      if (!rendered[i]) rendered[i] = builder.example(pool[i]);
      return *rendered[i];
    };
    for (std::size_t d = 0; d < evaluated.size(); ++d) {
      EvalDoc ed;
      ed.doc_id = d;
      ed.subtask = subtask;
      ed.doc = evaluated[d];
      ed.fewshot_ids = fr.contexts[d].example_indices;
      // For multiple_input tasks the prompt is the shared few-shot prefix; each
      // request's context is that prefix + its choice.
      ed.prompt = build_context(task, options, evaluated[d], pool, ed.fewshot_ids, n, example);
      add_requests(task, options, es.docs.size(), evaluated[d], ed.prompt, es.requests);
      es.docs.push_back(std::move(ed));
    }
  }
  return es;
}

}  // namespace qsweep::scoring
