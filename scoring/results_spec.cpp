#include "scoring/results_spec.h"

#include "scoring/leaderboard.h"

#include <algorithm>
#include <stdexcept>

#include "scoring/template.h"

namespace qsweep::scoring {

using nlohmann::json;

const char* to_string(Aggregation a) {
  switch (a) {
    case Aggregation::mean: return "mean";
    case Aggregation::perplexity: return "perplexity";
    case Aggregation::weighted_perplexity: return "weighted_perplexity";
    case Aggregation::bits_per_byte: return "bits_per_byte";
    case Aggregation::inst_level_acc: return "agg_inst_level_acc";
  }
  return "?";
}

namespace {

[[noreturn]] void fail(const TaskConfig& task, const std::string& msg) {
  throw std::runtime_error((task.file.empty() ? task.task : task.file) + ": " + msg);
}

/// The metrics each output type computes (ConfigurableTask.process_results,
/// or the task's own process_results function).
std::vector<std::string> computed_metrics(const TaskConfig& task) {
  if (task.output_type == OutputType::generate_until && is_ifeval_processor(task.process_results))
    return {"prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc"};
  switch (task.output_type) {
    case OutputType::multiple_choice: return {"acc", "acc_norm"};
    case OutputType::loglikelihood: return {"perplexity", "acc"};
    case OutputType::loglikelihood_rolling: return {"word_perplexity", "byte_perplexity", "bits_per_byte"};
    case OutputType::generate_until: return {"exact_match"};
  }
  return {};
}

/// lm-eval's registered aggregation and higher_is_better of a metric.
Aggregation default_aggregation(const std::string& m) {
  if (m == "perplexity") return Aggregation::perplexity;
  if (m == "word_perplexity" || m == "byte_perplexity") return Aggregation::weighted_perplexity;
  if (m == "bits_per_byte") return Aggregation::bits_per_byte;
  if (m == "inst_level_strict_acc" || m == "inst_level_loose_acc") return Aggregation::inst_level_acc;
  return Aggregation::mean;
}
bool default_higher_is_better(const std::string& m) {
  return !(m == "perplexity" || m == "word_perplexity" || m == "byte_perplexity" || m == "bits_per_byte");
}
bool takes_pairs(Aggregation a) {
  return a == Aggregation::weighted_perplexity || a == Aggregation::bits_per_byte || a == Aggregation::inst_level_acc;
}
/// A task file's aggregation name: lm-eval's registered names, or IFEval's
/// `!function utils.agg_inst_level_acc` with any module prefix.
std::optional<Aggregation> parse_aggregation(const std::string& a) {
  for (Aggregation c : {Aggregation::mean, Aggregation::perplexity, Aggregation::weighted_perplexity,
                        Aggregation::bits_per_byte})
    if (a == to_string(c)) return c;
  if (a == "agg_inst_level_acc" || a == "utils.agg_inst_level_acc" || a == "ifeval.agg_inst_level_acc")
    return Aggregation::inst_level_acc;
  return std::nullopt;
}

bool get_flag(const TaskConfig& task, const std::string& metric, const std::string& key, const json& v) {
  if (!v.is_boolean())
    fail(task, "metric '" + metric + "': option '" + key + "' must be true or false, got " + v.dump());
  return v.get<bool>();
}

ExactMatchOptions exact_match_options(const TaskConfig& task, const json& entry) {
  ExactMatchOptions o;
  for (const auto& [key, v] : entry.items()) {
    if (key == "metric" || key == "aggregation" || key == "higher_is_better") continue;
    if (key == "regexes_to_ignore") {
      if (!v.is_array()) fail(task, "metric 'exact_match': regexes_to_ignore must be a list of strings");
      for (const auto& p : v) {
        if (!p.is_string()) fail(task, "metric 'exact_match': regexes_to_ignore must be a list of strings");
        o.regexes_to_ignore.push_back(p.get<std::string>());
      }
    } else if (key == "ignore_case") {
      o.ignore_case = get_flag(task, "exact_match", key, v);
    } else if (key == "ignore_punctuation") {
      o.ignore_punctuation = get_flag(task, "exact_match", key, v);
    } else if (key == "ignore_numbers") {
      o.ignore_numbers = get_flag(task, "exact_match", key, v);
    } else {
      fail(task, "metric 'exact_match': unknown option '" + key + "'");
    }
  }
  // Compile each pattern once here so that a bad one fails before scoring.
  for (const auto& p : o.regexes_to_ignore) {
    try {
      PyRegex check(p);
    } catch (const std::exception& e) {
      fail(task, std::string("metric 'exact_match': regexes_to_ignore: ") + e.what());
    }
  }
  return o;
}

MetricSpec metric_from_entry(const TaskConfig& task, const json& entry) {
  if (!entry.is_object() || !entry.contains("metric") || !entry.at("metric").is_string())
    fail(task, "metric_list entry " + entry.dump() + " has no 'metric' name");
  MetricSpec m;
  m.name = entry.at("metric").get<std::string>();
  m.entry = entry;
  const auto computed = computed_metrics(task);
  if (std::find(computed.begin(), computed.end(), m.name) == computed.end())
    fail(task, "unknown metric '" + m.name + "' for output_type " + to_string(task.output_type));
  m.aggregation = default_aggregation(m.name);
  if (const auto it = entry.find("aggregation"); it != entry.end()) {
    if (!it->is_string()) fail(task, "metric '" + m.name + "': aggregation must be a name");
    const std::string a = it->get<std::string>();
    const auto parsed = parse_aggregation(a);
    if (!parsed) fail(task, "metric '" + m.name + "': unknown aggregation '" + a + "'");
    m.aggregation = *parsed;
    const Aggregation def = default_aggregation(m.name);
    const bool inst = m.aggregation == Aggregation::inst_level_acc || def == Aggregation::inst_level_acc;
    if (takes_pairs(m.aggregation) != takes_pairs(def) || (inst && m.aggregation != def))
      fail(task, "metric '" + m.name + "': aggregation '" + a + "' does not fit its per-document values");
  }
  m.higher_is_better = default_higher_is_better(m.name);
  if (const auto it = entry.find("higher_is_better"); it != entry.end())
    m.higher_is_better = get_flag(task, m.name, "higher_is_better", *it);
  if (m.name == "exact_match") m.exact_match = exact_match_options(task, entry);
  else
    for (const auto& [key, v] : entry.items())
      if (key != "metric" && key != "aggregation" && key != "higher_is_better")
        fail(task, "metric '" + m.name + "': unknown option '" + key + "'");
  return m;
}

std::string upper(const std::string& s) {
  // Python str.upper() as the task templates implement it (one-to-one
  // mappings; see docs/scoring.md "Differences from Jinja2").
  static const Template t("{{ s.upper() }}", "uppercase filter");
  return t.render(json{{"s", s}});
}

FilterStep step_from_entry(const TaskConfig& task, const std::string& pipeline, const json& e) {
  if (!e.is_object() || !e.contains("function") || !e.at("function").is_string())
    fail(task, "filter '" + pipeline + "': step " + e.dump() + " has no 'function' name");
  const std::string fn = e.at("function").get<std::string>();
  FilterStep s;
  auto no_args = [&]() {
    for (const auto& [key, v] : e.items())
      if (key != "function") fail(task, "filter '" + pipeline + "': function '" + fn + "' takes no '" + key + "'");
  };
  if (fn == "take_first") {
    no_args();
    s.kind = FilterStep::Kind::take_first;
  } else if (fn == "lowercase") {
    no_args();
    s.kind = FilterStep::Kind::lowercase;
  } else if (fn == "uppercase") {
    no_args();
    s.kind = FilterStep::Kind::uppercase;
  } else if (fn == "regex") {
    std::string pattern = k_gsm8k_strict_pattern;  // RegexFilter's default
    int group_select = 0;
    std::string fallback = "[invalid]";
    for (const auto& [key, v] : e.items()) {
      if (key == "function") continue;
      if (key == "regex_pattern" && v.is_string()) pattern = v.get<std::string>();
      else if (key == "group_select" && v.is_number_integer()) group_select = v.get<int>();
      else if (key == "fallback" && v.is_string()) fallback = v.get<std::string>();
      else fail(task, "filter '" + pipeline + "': regex: bad argument '" + key + "': " + v.dump());
    }
    s.kind = FilterStep::Kind::regex;
    try {
      s.regex.emplace(pattern, group_select, fallback);
    } catch (const std::exception& ex) {
      fail(task, "filter '" + pipeline + "': regex: " + ex.what());
    }
  } else if (fn == "mmlu_pro_extract") {
    s.kind = FilterStep::Kind::mmlu_pro_extract;
    for (const auto& [key, v] : e.items()) {
      if (key == "function") continue;
      if (key == "fallback" && v.is_string()) s.fallback = v.get<std::string>();
      else fail(task, "filter '" + pipeline + "': mmlu_pro_extract: bad argument '" + key + "': " + v.dump());
    }
  } else {
    fail(task, "filter '" + pipeline + "': unknown filter function '" + fn +
                   "' (regex, take_first, lowercase, uppercase, mmlu_pro_extract)");
  }
  return s;
}

}  // namespace

bool is_ifeval_processor(const std::string& p) { return p == "ifeval.process_results"; }

std::vector<MetricSpec> resolve_metrics(const TaskConfig& task) {
  std::vector<MetricSpec> out;
  if (!task.metric_list.is_null() && !task.metric_list.is_array()) fail(task, "metric_list must be a list");
  if (task.metric_list.is_null() || task.metric_list.empty()) {
    for (const auto& name : computed_metrics(task))
      out.push_back(metric_from_entry(task, json{{"metric", name}}));
    return out;
  }
  for (const auto& e : task.metric_list) {
    MetricSpec m = metric_from_entry(task, e);
    for (const auto& prev : out)
      if (prev.name == m.name) fail(task, "metric '" + m.name + "' listed twice");
    out.push_back(std::move(m));
  }
  return out;
}

std::vector<FilterPipeline> resolve_filters(const TaskConfig& task) {
  std::vector<FilterPipeline> out;
  if (!task.filter_list.is_null() && !task.filter_list.is_array()) fail(task, "filter_list must be a list");
  if (task.filter_list.is_null() || task.filter_list.empty()) {
    FilterPipeline p;
    p.name = "none";
    p.steps.push_back(FilterStep{});
    p.entry = json{{"name", "none"}, {"filter", json::array({json{{"function", "take_first"}}})}};
    out.push_back(std::move(p));
    return out;
  }
  for (const auto& e : task.filter_list) {
    if (!e.is_object() || !e.contains("name") || !e.at("name").is_string())
      fail(task, "filter_list entry " + e.dump() + " has no 'name'");
    FilterPipeline p;
    p.name = e.at("name").get<std::string>();
    p.entry = e;
    if (!e.contains("filter") || !e.at("filter").is_array())
      fail(task, "filter '" + p.name + "': 'filter' must be a list of steps");
    for (const auto& s : e.at("filter")) {
      p.steps.push_back(step_from_entry(task, p.name, s));
      if (task.output_type != OutputType::generate_until && p.steps.back().kind != FilterStep::Kind::take_first)
        fail(task, "filter '" + p.name + "': only take_first applies to " +
                       std::string(to_string(task.output_type)) + " responses");
    }
    for (const auto& prev : out)
      if (prev.name == p.name) fail(task, "filter '" + p.name + "' listed twice");
    out.push_back(std::move(p));
  }
  return out;
}

std::string FilterPipeline::apply(const std::vector<std::string>& repeats) const {
  std::vector<std::string> cur = repeats;
  for (const auto& s : steps) {
    switch (s.kind) {
      case FilterStep::Kind::take_first:
        cur = {take_first(cur)};
        break;
      case FilterStep::Kind::regex:
        cur = s.regex->apply(cur);
        break;
      case FilterStep::Kind::lowercase:
        for (auto& r : cur) r = python_lower(r);
        break;
      case FilterStep::Kind::uppercase:
        for (auto& r : cur) r = upper(r);
        break;
      case FilterStep::Kind::mmlu_pro_extract:
        for (auto& r : cur) r = mmlu_pro_extract_answer(r).value_or(s.fallback);
        break;
    }
  }
  return take_first(cur);
}

}  // namespace qsweep::scoring
