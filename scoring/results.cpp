// score_eval_set: per-doc scoring (results_doc.cpp), aggregation per leaf
// task (the task, or each subtask) and per group, and the results.json /
// summary layout (docs/scoring.md, "Results").
//
// Shapes:
//   leaf    = one lm-eval task: the task itself, or one subtask ("mmlu_anatomy")
//   group   = the task when its docs have subtasks; with subtask_groups also
//             one middle group per entry ("mmlu_stem"), members in
//             EvalSet::subtasks order. Every group's number is computed over
//             all the leaves below it (lm-eval v0.4.4 flattens subgroups).
//   key     = "metric,filter" ("acc,none", "exact_match,strict-match")
#include "scoring/results.h"

#include "scoring/processors.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>

#include "model/util/python_random.h"
#include "scoring/aggregate.h"
#include "scoring/results_doc.h"
#include "scoring/results_spec.h"

namespace qsweep::scoring {

using nlohmann::json;

namespace {

/// One leaf task: its docs (indices into EvalSet::docs) and per key the
/// per-doc items in doc order.
struct Leaf {
  std::string name;   // "arc_challenge" or "mmlu_anatomy"
  std::string short_name;  // alias base: the subtask without "<task>_"
  std::optional<std::size_t> original;  // docs before the limit (n-samples)
  std::vector<std::size_t> docs;
  std::map<std::string, std::vector<MetricItem>> items;
  std::map<std::string, TaskScore> scores;  // filled by aggregate_leaf
};

/// A group: members are leaves (level 1) or groups (level 2), by name.
struct Group {
  std::string name;
  std::string alias;
  std::vector<std::string> members;
  std::map<std::string, GroupScore> scores;
};

json stderr_json(const std::optional<double>& se) { return se ? json(*se) : json("N/A"); }

/// lm-eval bootstrap_stderr(perplexity, xs, iters): chunks of min(1000,
/// iters) resamples, chunk i drawn with random.Random(i) via
/// random.choices(xs, k=len(xs)) (= xs[floor(random() * n)]), then
/// sample_stddev over all resampled perplexities.
double bootstrap_perplexity_stderr(const std::vector<double>& xs, int iters) {
  const int chunk = std::min(1000, iters);
  const double n = static_cast<double>(xs.size());
  std::vector<double> res;
  res.reserve(static_cast<std::size_t>(iters / chunk) * static_cast<std::size_t>(chunk));
  for (int i = 0; i < iters / chunk; ++i) {
    model::PythonRandom rnd(static_cast<std::uint64_t>(i));
    for (int c = 0; c < chunk; ++c) {
      double sum = 0;
      for (std::size_t k = 0; k < xs.size(); ++k)
        sum += xs[static_cast<std::size_t>(std::floor(rnd.random() * n))];
      res.push_back(std::exp(-(sum / n)));
    }
  }
  return sample_stddev(res);
}

/// TaskOutput.calculate_aggregate_metric for one key.
TaskScore aggregate_items(const std::vector<MetricItem>& items, Aggregation agg, int bootstrap_iters) {
  TaskScore t;
  t.samples = items.size();
  std::vector<double> a;
  double sa = 0, sb = 0;
  for (const auto& it : items) a.push_back(it.a), sa += it.a, sb += it.b;
  switch (agg) {
    case Aggregation::mean:
      t.value = mean(a);
      if (bootstrap_iters > 0) t.stderr_value = mean_stderr(a);
      break;
    case Aggregation::perplexity:
      t.value = std::exp(-mean(a));
      if (bootstrap_iters > 0 && a.size() > 1) t.stderr_value = bootstrap_perplexity_stderr(a, bootstrap_iters);
      break;
    case Aggregation::weighted_perplexity:  // no stderr function in lm-eval: "N/A"
      t.value = std::exp(-(sa / sb));
      break;
    case Aggregation::bits_per_byte:
      t.value = -(sa / sb) / std::log(2.0);
      break;
    case Aggregation::inst_level_acc:
      // utils.agg_inst_level_acc: sum / len of the flattened bools (a is the
      // followed count, b the instruction count of a doc). lm-eval has no
      // stderr function for it: "N/A".
      if (sb == 0) throw std::runtime_error("agg_inst_level_acc: no instructions (division by zero)");
      t.value = sa / sb;
      break;
  }
  return t;
}

std::string strip_prefix(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0 && s.size() > prefix.size() ? s.substr(prefix.size()) : s;
}

/// The group aggregation settings: key -> weight_by_size. Null / empty
/// aggregate_metric_list: every key, size-weighted (qsweep's default).
/// Otherwise lm-eval's AggMetricConfig entries {metric, aggregation: mean,
/// weight_by_size (default false), filter_list (default "none")}.
std::map<std::string, bool> group_keys(const TaskConfig& task, const std::vector<std::string>& keys) {
  std::map<std::string, bool> out;
  const json& l = task.aggregate_metric_list;
  const std::string file = task.file.empty() ? task.task : task.file;
  if (l.is_null() || (l.is_array() && l.empty())) {
    for (const auto& k : keys) out[k] = true;
    return out;
  }
  if (!l.is_array()) throw std::runtime_error(file + ": aggregate_metric_list must be a list");
  for (const auto& e : l) {
    if (!e.is_object() || !e.contains("metric") || !e.at("metric").is_string())
      throw std::runtime_error(file + ": aggregate_metric_list entry " + e.dump() + " has no 'metric'");
    const std::string metric = e.at("metric").get<std::string>();
    if (e.contains("aggregation") && e.at("aggregation") != "mean")
      throw std::runtime_error(file + ": aggregate_metric_list: unknown aggregation " +
                               e.at("aggregation").dump() + " for '" + metric + "' (only mean)");
    bool weight = false;
    if (e.contains("weight_by_size")) {
      if (!e.at("weight_by_size").is_boolean())
        throw std::runtime_error(file + ": aggregate_metric_list: weight_by_size must be true or false");
      weight = e.at("weight_by_size").get<bool>();
    }
    std::vector<std::string> filters{"none"};
    if (e.contains("filter_list")) {
      const json& f = e.at("filter_list");
      if (f.is_string()) filters = {f.get<std::string>()};
      else if (f.is_array() && std::all_of(f.begin(), f.end(), [](const json& x) { return x.is_string(); }))
        filters = f.get<std::vector<std::string>>();
      else throw std::runtime_error(file + ": aggregate_metric_list: filter_list must be a name or a list of names");
    }
    for (const auto& f : filters) {
      const std::string key = metric + "," + f;
      if (std::find(keys.begin(), keys.end(), key) == keys.end())
        throw std::runtime_error(file + ": aggregate_metric_list: the subtasks report no '" + key + "'");
      out[key] = weight;
    }
  }
  return out;
}

json task_config_json(const TaskConfig& task, const std::string& name, int num_fewshot,
                      const std::vector<MetricSpec>& metrics) {
  auto field = [](const DocField& f) -> json {
    if (!f.set) return nullptr;
    return f.literal.is_null() ? json(f.source) : f.literal;
  };
  json c = {{"task", name},
            {"dataset_path", task.dataset_path},
            {"dataset_name", task.dataset_name},
            {"doc_to_text", field(task.doc_to_text)},
            {"doc_to_target", field(task.doc_to_target)},
            {"description", task.description},
            {"target_delimiter", task.target_delimiter},
            {"fewshot_delimiter", task.fewshot_delimiter},
            {"num_fewshot", num_fewshot},
            {"output_type", to_string(task.output_type)},
            {"repeats", 1},
            {"should_decontaminate", false}};
  if (name != task.task) c["task_alias"] = strip_prefix(name, task.task + "_");
  if (!task.test_split.empty()) c["test_split"] = task.test_split;
  if (!task.validation_split.empty()) c["validation_split"] = task.validation_split;
  if (!task.fewshot_split.empty()) c["fewshot_split"] = task.fewshot_split;
  if (task.doc_to_choice.set) c["doc_to_choice"] = field(task.doc_to_choice);
  c["fewshot_config"] = {{"sampler", task.sampler == FewshotSampler::first_n ? "first_n" : "default"}};
  if (!task.fewshot_samples.empty()) c["fewshot_config"]["samples"] = task.fewshot_samples;
  json ml = json::array();
  for (const auto& m : metrics) {
    json e = m.entry;
    e["aggregation"] = to_string(m.aggregation);
    e["higher_is_better"] = m.higher_is_better;
    ml.push_back(std::move(e));
  }
  c["metric_list"] = std::move(ml);
  if (task.filter_list.is_array() && !task.filter_list.empty()) c["filter_list"] = task.filter_list;
  if (task.output_type == OutputType::generate_until) {
    const auto& g = task.generation_kwargs;
    json gk = {{"until", g.until}, {"do_sample", g.do_sample}, {"temperature", g.temperature}};
    if (g.max_gen_toks) gk["max_gen_toks"] = *g.max_gen_toks;
    c["generation_kwargs"] = std::move(gk);
  }
  if (!task.process_docs.empty()) c["process_docs"] = task.process_docs;
  if (!task.process_results.empty()) c["process_results"] = task.process_results;
  if (!task.metadata.is_null()) c["metadata"] = task.metadata;
  return c;
}

json version_of(const TaskConfig& task) {
  if (task.metadata.is_object() && task.metadata.contains("version")) return task.metadata.at("version");
  return nullptr;
}

}  // namespace

TaskResults score_eval_set(const TaskConfig& task, const EvalSet& set,
                           const std::vector<Response>& responses, const RunInfo& run) {
  if (responses.size() != set.requests.size())
    throw std::runtime_error(task.task + ": " + std::to_string(responses.size()) + " responses for " +
                             std::to_string(set.requests.size()) + " requests");
  if (!task.process_results.empty() && !is_mc2_processor(task.process_results) &&
      !is_math_processor(task.process_results) && !is_ifeval_processor(task.process_results))
    throw std::runtime_error(task.file + ": unknown process_results '" + task.process_results + "'");
  const std::vector<MetricSpec> metrics = resolve_metrics(task);
  const std::vector<FilterPipeline> filters = resolve_filters(task);

  // Requests of each doc, sorted by Request::index (lm-eval sorts by idx).
  std::vector<std::vector<std::size_t>> by_doc(set.docs.size());
  for (std::size_t r = 0; r < set.requests.size(); ++r) {
    if (set.requests[r].doc >= set.docs.size())
      throw std::runtime_error(task.task + ": request " + std::to_string(r) + " names doc " +
                               std::to_string(set.requests[r].doc) + " of " + std::to_string(set.docs.size()));
    by_doc[set.requests[r].doc].push_back(r);
  }
  for (auto& v : by_doc)
    std::stable_sort(v.begin(), v.end(),
                     [&](std::size_t a, std::size_t b) { return set.requests[a].index < set.requests[b].index; });

  // Leaves: the task, or one per subtask in order of first appearance.
  const bool has_subtasks = std::any_of(set.docs.begin(), set.docs.end(),
                                        [](const EvalDoc& d) { return !d.subtask.empty(); });
  std::vector<Leaf> leaves;
  std::map<std::string, std::size_t> leaf_of;
  auto leaf_index = [&](const std::string& name) {
    const auto it = leaf_of.find(name);
    if (it != leaf_of.end()) return it->second;
    Leaf l;
    l.name = name;
    l.short_name = strip_prefix(name, task.task + "_");
    leaf_of[name] = leaves.size();
    leaves.push_back(std::move(l));
    return leaves.size() - 1;
  };
  for (const auto& s : set.subtasks) leaf_index(s);
  TaskResults out;
  for (std::size_t i = 0; i < set.docs.size(); ++i) {
    const EvalDoc& d = set.docs[i];
    if (has_subtasks && d.subtask.empty())
      throw std::runtime_error(task.task + ": doc_id " + std::to_string(d.doc_id) + " has no subtask while others do");
    Leaf& leaf = leaves[leaf_index(has_subtasks ? d.subtask : task.task)];
    leaf.docs.push_back(i);
    ScoredDoc sd;
    try {
      sd = score_doc(task, metrics, filters, set, i, by_doc[i], responses);
    } catch (const std::logic_error& e) {
      // Python's IndexError / ValueError cases (a regex group_select past the
      // matches, mc2 labels without a 0, ...) as runtime errors naming the doc.
      throw std::runtime_error(task.task + ": doc_id " + std::to_string(d.doc_id) + ": " + e.what());
    }
    for (auto& [key, item] : sd.values) leaf.items[key].push_back(item);
    out.samples.push_back(std::move(sd.sample));
  }
  leaves.erase(std::remove_if(leaves.begin(), leaves.end(), [](const Leaf& l) { return l.docs.empty(); }),
               leaves.end());
  if (leaves.empty()) throw std::runtime_error(task.task + ": no documents to score");
  leaf_of.clear();
  for (std::size_t i = 0; i < leaves.size(); ++i) leaf_of[leaves[i].name] = i;
  for (std::size_t i = 0; i < set.subtasks.size() && i < set.subtask_docs_before_limit.size(); ++i)
    for (auto& l : leaves)
      if (l.name == set.subtasks[i]) l.original = set.subtask_docs_before_limit[i];
  if (!has_subtasks) leaves[0].original = set.docs_before_limit;

  // Aggregate each leaf.
  std::map<std::string, Aggregation> agg_of;
  std::map<std::string, bool> hib_of;  // metric -> higher_is_better
  for (const auto& m : metrics) hib_of[m.name] = m.higher_is_better;
  for (const auto& f : filters)
    for (const auto& m : metrics) agg_of[m.name + "," + f.name] = m.aggregation;
  std::vector<std::string> keys;
  for (const auto& [k, a] : agg_of) keys.push_back(k);
  for (auto& l : leaves)
    for (const auto& k : keys) l.scores[k] = aggregate_items(l.items.at(k), agg_of.at(k), run.bootstrap_iters);

  // Groups (innermost first), when the task has subtasks.
  std::vector<Group> groups;
  const std::string top = task.group.empty() ? task.task : task.group;
  std::map<std::string, bool> gkeys;
  if (has_subtasks) {
    gkeys = group_keys(task, keys);
    Group topg;
    topg.name = top;
    topg.alias = top;
    if (!task.subtask_groups.empty()) {
      std::map<std::string, std::string> group_of;  // leaf short name -> middle group
      for (const auto& [g, values] : task.subtask_groups)
        for (const auto& v : values) {
          if (group_of.count(v))
            throw std::runtime_error(task.file + ": subtask '" + v + "' is in groups '" + group_of[v] + "' and '" + g + "'");
          group_of[v] = g;
        }
      for (const auto& l : leaves)
        if (!group_of.count(l.short_name))
          throw std::runtime_error(task.file + ": subtask '" + l.name + "' is in none of subtask_groups");
      for (const auto& [g, values] : task.subtask_groups) {
        Group mid;
        mid.name = g.rfind(top + "_", 0) == 0 ? g : top + "_" + g;
        mid.alias = " - " + strip_prefix(g, top + "_");
        for (const auto& l : leaves)
          if (group_of.at(l.short_name) == g) mid.members.push_back(l.name);
        if (mid.members.empty()) continue;  // no docs of this group in the set
        for (const auto& [k, w] : gkeys) {
          std::vector<TaskScore> ms;
          for (const auto& name : mid.members) ms.push_back(leaves[leaf_of.at(name)].scores.at(k));
          mid.scores[k] = aggregate_group(ms, w);
        }
        topg.members.push_back(mid.name);
        groups.push_back(std::move(mid));
      }
      // lm-eval v0.4.4 (consolidate_group_results) aggregates a group over
      // every task below it, subgroups flattened: the top value and its
      // pooled stderr come from the leaves (in subgroup order), with the top
      // group's weight_by_size. macro_mean is the unweighted mean over the
      // middle groups (aggregate_group_of_groups), leaf_macro_mean over leaves.
      for (const auto& [k, w] : gkeys) {
        std::vector<TaskScore> flat;
        std::vector<GroupScore> gs;
        for (const auto& g : groups) {
          gs.push_back(g.scores.at(k));
          for (const auto& name : g.members) flat.push_back(leaves[leaf_of.at(name)].scores.at(k));
        }
        GroupScore t = aggregate_group(flat, w);
        t.macro_mean = aggregate_group_of_groups(gs, w).macro_mean;
        topg.scores[k] = std::move(t);
      }
    } else {
      for (const auto& l : leaves) topg.members.push_back(l.name);
      for (const auto& [k, w] : gkeys) {
        std::vector<TaskScore> ms;
        for (const auto& l : leaves) ms.push_back(l.scores.at(k));
        topg.scores[k] = aggregate_group(ms, w);
      }
    }
    groups.push_back(std::move(topg));
  }

  // ---- results.json
  const bool two_level = has_subtasks && !task.subtask_groups.empty();
  json results = json::object(), groups_j = json::object(), group_subtasks = json::object();
  json configs = json::object(), versions = json::object(), nshot = json::object();
  json hib = json::object(), nsamples = json::object(), summary = json::object();
  json macro = json::object();
  const std::optional<std::size_t> limit = set.limit;
  auto summary_entry = [&](const TaskScore& t) {
    json e = {{"value", t.value}, {"stderr", stderr_json(t.stderr_value)}, {"samples", t.samples}};
    if (limit) e["limit"] = *limit;
    return e;
  };
  json leaf_hib = json::object();
  for (const auto& m : metrics) leaf_hib[m.name] = m.higher_is_better;
  for (const auto& l : leaves) {
    json r = {{"alias", !has_subtasks ? l.name : std::string(two_level ? "  - " : " - ") + l.short_name}};
    for (const auto& [k, t] : l.scores) {
      const auto comma = k.find(',');
      r[k] = t.value;
      r[k.substr(0, comma) + "_stderr" + k.substr(comma)] = stderr_json(t.stderr_value);
      summary[l.name][k] = summary_entry(t);
    }
    results[l.name] = std::move(r);
    configs[l.name] = task_config_json(task, l.name, set.num_fewshot, metrics);
    versions[l.name] = version_of(task);
    nshot[l.name] = set.num_fewshot;
    hib[l.name] = leaf_hib;
    nsamples[l.name] = {{"original", l.original ? json(*l.original) : json(nullptr)},
                        {"effective", l.docs.size()}};
  }
  if (!has_subtasks) group_subtasks[leaves[0].name] = json::array();
  for (const auto& g : groups) {
    json r = {{"alias", g.alias}};
    json gm = json::object();
    for (const auto& [k, gs] : g.scores) {
      const auto comma = k.find(',');
      r[k] = gs.score.value;
      r[k.substr(0, comma) + "_stderr" + k.substr(comma)] = stderr_json(gs.score.stderr_value);
      json e = summary_entry(gs.score);
      e["macro_mean"] = gs.macro_mean;
      e["leaf_macro_mean"] = gs.leaf_macro_mean;
      e["weight_by_size"] = gkeys.at(k);
      summary[g.name][k] = e;
      gm[k] = {{"value", gs.score.value},
               {"weight_by_size", gkeys.at(k)},
               {"macro_mean", gs.macro_mean},
               {"leaf_macro_mean", gs.leaf_macro_mean}};
    }
    results[g.name] = r;
    groups_j[g.name] = r;
    group_subtasks[g.name] = g.members;
    // versions: lm-eval lists a group only with its own metadata.version (none here).
    json h = json::object();
    for (const auto& [k, w] : gkeys) h[k.substr(0, k.find(','))] = hib_of.at(k.substr(0, k.find(',')));
    hib[g.name] = h;
    macro[g.name] = std::move(gm);
  }

  json& rj = out.results_json;
  rj["results"] = std::move(results);
  if (!groups_j.empty()) rj["groups"] = std::move(groups_j);
  rj["group_subtasks"] = std::move(group_subtasks);
  rj["configs"] = std::move(configs);
  rj["versions"] = std::move(versions);
  rj["n-shot"] = std::move(nshot);
  rj["higher_is_better"] = std::move(hib);
  rj["n-samples"] = std::move(nsamples);
  json config = {{"model", run.model},
                 {"model_args", run.model_args},
                 {"batch_size", nullptr},
                 {"batch_sizes", json::array()},
                 {"device", nullptr},
                 {"use_cache", nullptr},
                 {"limit", limit ? json(*limit) : json(nullptr)},
                 {"bootstrap_iters", run.bootstrap_iters},
                 {"gen_kwargs", nullptr},
                 {"random_seed", 0},
                 {"numpy_seed", 1234},
                 {"torch_seed", 1234},
                 {"fewshot_seed", 1234}};
  if (run.extra.is_object())
    for (const auto& [k, v] : run.extra.items()) config[k] = v;
  rj["config"] = std::move(config);
  rj["system_instruction"] = set.options.system_instruction.empty() ? json(nullptr) : json(set.options.system_instruction);
  rj["fewshot_as_multiturn"] = set.options.fewshot_as_multiturn;
  rj["qsweep"] = {{"task", task.task},
                  {"limit", limit ? json(*limit) : json(nullptr)},
                  {"docs_before_limit", set.docs_before_limit},
                  {"num_fewshot", set.num_fewshot},
                  {"fewshot_from_eval_split", set.fewshot_from_eval_split},
                  {"apply_chat_template", set.options.apply_chat_template},
                  {"backend", run.backend},
                  {"macro_means", std::move(macro)}};
  out.summary = std::move(summary);
  return out;
}

}  // namespace qsweep::scoring
