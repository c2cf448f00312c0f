#include "scoring/results_doc.h"

#include <optional>
#include <stdexcept>

#include "scoring/ifeval/process_results.h"
#include "scoring/metrics.h"
#include "scoring/processors.h"
#include "scoring/pyre.h"
#include "scoring/template.h"

namespace qsweep::scoring {

using nlohmann::json;

bool is_mc2_processor(const std::string& p) {
  return p == "truthfulqa.process_results_mc2" || p == "utils.process_results_mc2";
}

std::size_t count_words(const std::string& s) {
  static const PyRegex ws(R"(\s+)");
  return ws.findall(s).size() + 1;  // re.split without groups: matches + 1 pieces
}

namespace {

[[noreturn]] void fail(const TaskConfig& task, const EvalDoc& d, const std::string& msg) {
  throw std::runtime_error(task.task + ": doc_id " + std::to_string(d.doc_id) + ": " + msg);
}

RequestType expected_request(OutputType t) {
  switch (t) {
    case OutputType::multiple_choice:
    case OutputType::loglikelihood: return RequestType::loglikelihood;
    case OutputType::loglikelihood_rolling: return RequestType::loglikelihood_rolling;
    case OutputType::generate_until: return RequestType::generate_until;
  }
  return RequestType::loglikelihood;
}

json gen_kwargs_json(const GenerationKwargs& g) {
  json j = {{"until", g.until}, {"do_sample", g.do_sample}, {"temperature", g.temperature}};
  if (g.max_gen_toks) j["max_gen_toks"] = *g.max_gen_toks;
  return j;
}

/// The value of `metric` for this doc from the named computed values.
double pick(const TaskConfig& task, const EvalDoc& d, const std::string& metric,
            const std::vector<std::pair<std::string, double>>& computed) {
  for (const auto& [name, v] : computed)
    if (name == metric) return v;
  fail(task, d, "metric '" + metric + "' is not produced by " +
                    (task.process_results.empty() ? std::string(to_string(task.output_type))
                                                  : task.process_results));
}

std::vector<int> mc2_labels(const TaskConfig& task, const EvalDoc& d) {
  const json* l = nullptr;
  if (d.doc.is_object() && d.doc.contains("mc2_targets") && d.doc.at("mc2_targets").is_object() &&
      d.doc.at("mc2_targets").contains("labels"))
    l = &d.doc.at("mc2_targets").at("labels");
  if (!l || !l->is_array()) fail(task, d, "mc2 needs doc[\"mc2_targets\"][\"labels\"] (a list of 0/1)");
  std::vector<int> out;
  for (const auto& v : *l) {
    if (!v.is_number_integer()) fail(task, d, "mc2 label " + v.dump() + " is not an integer");
    out.push_back(v.get<int>());
  }
  return out;
}

}  // namespace

ScoredDoc score_doc(const TaskConfig& task, const std::vector<MetricSpec>& metrics,
                    const std::vector<FilterPipeline>& filters, const EvalSet& set, std::size_t doc,
                    const std::vector<std::size_t>& req_ids, const std::vector<Response>& responses) {
  const EvalDoc& d = set.docs[doc];
  if (req_ids.empty()) fail(task, d, "no requests");
  for (auto r : req_ids)
    if (set.requests[r].type != expected_request(task.output_type))
      fail(task, d, std::string("a ") + to_string(set.requests[r].type) + " request in a " +
                        to_string(task.output_type) + " task");

  ScoredDoc out;
  json& s = out.sample;
  s["doc_id"] = d.doc_id;
  s["doc"] = d.doc;
  s["subtask"] = d.subtask;
  json args = json::array(), resps = json::array(), filtered = json::array();

  // Per-filter computed values (name -> value) of lm-eval's process_results;
  // the metric_list then selects among them.
  std::vector<std::pair<std::string, double>> computed;
  std::vector<std::pair<std::string, MetricItem>> pairs;  // rolling: (ll, count)

  switch (task.output_type) {
    case OutputType::multiple_choice: {
      std::vector<double> lls;
      for (auto r : req_ids) {
        const auto& q = set.requests[r];
        lls.push_back(responses[r].logprob);
        args.push_back({q.context, q.continuation});
        resps.push_back(json::array({json::array({responses[r].logprob, responses[r].is_greedy})}));
        filtered.push_back({responses[r].logprob, responses[r].is_greedy});
      }
      const std::vector<std::string> choices = task.choices(d.doc);
      if (choices.size() != lls.size())
        fail(task, d, std::to_string(lls.size()) + " requests for " + std::to_string(choices.size()) + " choices");
      s["target"] = task.target(d.doc);
      if (is_mc2_processor(task.process_results)) {
        const double mc2 = truthfulqa_mc2(lls, mc2_labels(task, d));
        computed.push_back({"acc", mc2});
        s["pred"] = argmax(lls);
        s["correct"] = nullptr;  // mc2 is a probability mass, not right/wrong
      } else if (!task.process_results.empty()) {
        throw std::runtime_error(task.file + ": unknown process_results '" + task.process_results + "'");
      } else {
        // multiple_input (Winogrande): doc_to_text is the gold index and
        // the choices are the contexts; else the gold is doc_to_target's.
        const json text = task.text(d.doc);
        const bool multiple_input = text.is_number_integer();
        const long long gold = multiple_input ? text.get<long long>() : task.gold_index(d.doc);
        const std::size_t g = gold < 0 ? choices.size() : static_cast<std::size_t>(gold);
        const MultipleChoiceScore sc = score_multiple_choice(lls, choices, g);
        computed.push_back({"acc", sc.acc});
        computed.push_back({"acc_norm", sc.acc_norm});
        s["gold"] = gold;
        s["pred"] = sc.pred;
        s["pred_norm"] = sc.pred_norm;
        s["correct"] = sc.acc == 1.0;
      }
      break;
    }
    case OutputType::loglikelihood: {
      if (req_ids.size() != 1) fail(task, d, "a loglikelihood task has one request per doc");
      const auto r = req_ids[0];
      args.push_back({set.requests[r].context, set.requests[r].continuation});
      resps.push_back(json::array({json::array({responses[r].logprob, responses[r].is_greedy})}));
      filtered.push_back({responses[r].logprob, responses[r].is_greedy});
      computed.push_back({"perplexity", responses[r].logprob});
      computed.push_back({"acc", responses[r].is_greedy ? 1.0 : 0.0});
      s["target"] = task.target(d.doc);
      s["correct"] = responses[r].is_greedy;
      break;
    }
    case OutputType::loglikelihood_rolling: {
      if (req_ids.size() != 1) fail(task, d, "a loglikelihood_rolling task has one request per doc");
      const auto r = req_ids[0];
      args.push_back({set.requests[r].context, set.requests[r].continuation});
      resps.push_back(json::array({responses[r].logprob}));
      filtered.push_back(responses[r].logprob);
      const std::string target = python_str(task.target(d.doc));
      const double words = static_cast<double>(count_words(target));
      const double bytes = static_cast<double>(target.size());
      pairs.push_back({"word_perplexity", {responses[r].logprob, words}});
      pairs.push_back({"byte_perplexity", {responses[r].logprob, bytes}});
      pairs.push_back({"bits_per_byte", {responses[r].logprob, bytes}});
      s["target"] = target;
      s["correct"] = nullptr;
      break;
    }
    case OutputType::generate_until: {
      if (req_ids.size() != 1) fail(task, d, "a generate_until task has one request per doc");
      const auto r = req_ids[0];
      args.push_back({set.requests[r].context, gen_kwargs_json(set.requests[r].gen)});
      resps.push_back(json::array({responses[r].text}));
      s["pred"] = responses[r].text;
      // Per filter pipeline: the filtered response, the answer scored, correctness.
      json extracted = json::object(), filtered_by = json::object(), correct = json::object();
      const auto record = [&] {
        s["arguments"] = args;
        s["resps"] = resps;
        s["filtered_resps"] = filtered_by;
        s["extracted"] = extracted;
        s["correct"] = correct;
      };
      if (is_ifeval_processor(task.process_results)) {
        // leaderboard/ifeval/utils.py process_results on each pipeline's
        // filtered response; inst-level values are (followed, count) pairs
        // for agg_inst_level_acc.
        s["target"] = task.target(d.doc);
        for (const auto& f : filters) {
          const std::string answer = f.apply({responses[r].text});
          extracted[f.name] = answer;
          filtered_by[f.name] = json::array({answer});
          ifeval::DocResult res;
          try {
            res = ifeval::process_results(d.doc, answer);
          } catch (const std::exception& e) {
            fail(task, d, e.what());
          }
          auto pair = [](const std::vector<bool>& v) {
            double followed = 0;
            for (bool b : v) followed += b ? 1 : 0;
            return MetricItem{followed, static_cast<double>(v.size())};
          };
          for (const auto& m : metrics) {
            const std::string key = m.name + "," + f.name;
            if (m.name == "prompt_level_strict_acc") {
              out.values.push_back({key, {res.prompt_level_strict ? 1.0 : 0.0, 0}});
              s[key] = res.prompt_level_strict;
            } else if (m.name == "prompt_level_loose_acc") {
              out.values.push_back({key, {res.prompt_level_loose ? 1.0 : 0.0, 0}});
              s[key] = res.prompt_level_loose;
            } else if (m.name == "inst_level_strict_acc") {
              out.values.push_back({key, pair(res.inst_level_strict)});
              s[key] = res.inst_level_strict;
            } else if (m.name == "inst_level_loose_acc") {
              out.values.push_back({key, pair(res.inst_level_loose)});
              s[key] = res.inst_level_loose;
            } else {
              fail(task, d, "metric '" + m.name + "' is not produced by " + task.process_results);
            }
          }
          correct[f.name] = res.prompt_level_strict;
        }
        record();
        return out;
      }
      // Reference: str(doc_to_target); with doc_to_choice, choices[target].
      const json target = task.target(d.doc);
      std::string reference;
      if (task.doc_to_choice.set) {
        const auto choices = task.choices(d.doc);
        if (!target.is_number_integer() || target.get<long long>() < 0 ||
            target.get<long long>() >= static_cast<long long>(choices.size()))
          fail(task, d, "target " + python_str(target) + " is not a choice index");
        reference = choices[target.get<std::size_t>()];
      } else {
        if (target.is_array()) fail(task, d, "multiple targets are not supported");
        reference = python_str(target);
      }
      s["target"] = target;
      const bool math = is_math_processor(task.process_results);
      if (!math && !task.process_results.empty())
        throw std::runtime_error(task.file + ": unknown process_results '" + task.process_results + "'");
      for (const auto& f : filters) {
        const std::string filtered_text = f.apply({responses[r].text});
        filtered_by[f.name] = json::array({filtered_text});
        // math.process_results computes exact_match itself (its only
        // metric) from the filtered generation; the answer it extracted is
        // what the samples record shows.
        std::optional<MathResult> mr;
        if (math) {
          mr = math_process_results(d.doc, filtered_text);
          extracted[f.name] = mr->answer;
        } else extracted[f.name] = filtered_text;
        const std::string answer = filtered_text;
        for (const auto& m : metrics) {
          if (math && m.name != "exact_match")
            fail(task, d, "metric '" + m.name + "' is not produced by " + task.process_results);
          const double v = math ? mr->exact_match : exact_match(answer, reference, m.exact_match);
          out.values.push_back({m.name + "," + f.name, {v, 0}});
          s[m.name + "," + f.name] = v;
          if (&m == &metrics.front()) correct[f.name] = v == 1.0;
        }
      }
      record();
      return out;
    }
  }

  // Non-generate tasks: every pipeline is take_first, so each gets the same values.
  json filtered_by = json::object();
  for (const auto& f : filters) {
    filtered_by[f.name] = filtered;
    for (const auto& m : metrics) {
      const std::string key = m.name + "," + f.name;
      MetricItem item;
      bool found = false;
      for (const auto& [name, v] : pairs)
        if (name == m.name) item = v, found = true;
      if (!found) item.a = pick(task, d, m.name, computed);
      out.values.push_back({key, item});
      s[key] = found ? json::array({item.a, item.b}) : json(item.a);
    }
  }
  s["arguments"] = args;
  s["resps"] = resps;
  s["filtered_resps"] = filtered_by;
  return out;
}

}  // namespace qsweep::scoring
