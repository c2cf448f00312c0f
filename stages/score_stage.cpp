#include "stages/score_stage.h"

#include <fstream>
#include <stdexcept>

#include "model/util/text_file.h"
#include "scoring/eval_set.h"
#include "scoring/normalize.h"
#include "scoring/results.h"
#include "scoring/task.h"
#include "stages/model_input.h"

namespace qsweep {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// responses.jsonl -> one Response per request, checked against the eval set.
std::vector<scoring::Response> read_responses(const fs::path& file, const scoring::EvalSet& set) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + file.string());
  std::vector<scoring::Response> out;
  std::string line;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty()) continue;
    const auto where = [&] { return file.string() + ":" + std::to_string(lineno); };
    json j = json::parse(line, nullptr, false);
    if (!j.is_object()) throw std::runtime_error(where() + ": not a JSON object");
    if (!j.contains("i") || !j["i"].is_number_unsigned() || j["i"].get<size_t>() != out.size())
      throw std::runtime_error(where() + ": field 'i' must be " + std::to_string(out.size()) +
                               " (responses are in request order)");
    scoring::Response r;
    if (j.contains("text")) {
      if (!j["text"].is_string()) throw std::runtime_error(where() + ": field 'text' must be a string");
      r.text = j["text"].get<std::string>();
    } else {
      if (!j.contains("logprob") || !j["logprob"].is_number())
        throw std::runtime_error(where() + ": field 'logprob' must be a number");
      r.logprob = j["logprob"].get<double>();
      r.is_greedy = j.value("is_greedy", false);
    }
    out.push_back(std::move(r));
  }
  if (out.size() != set.requests.size())
    throw std::runtime_error(file.string() + ": " + std::to_string(out.size()) +
                             " responses for " + std::to_string(set.requests.size()) +
                             " requests; rerun the infer node");
  return out;
}

// A small Markdown table of the summary: name | metric | value | stderr | n.
std::string summary_markdown(const json& summary, const json& infer) {
  std::string md = "| task | metric | value | stderr | samples |\n| --- | --- | ---: | ---: | ---: |\n";
  for (const auto& [task, metrics] : summary.items()) {
    if (!metrics.is_object()) continue;
    for (const auto& [metric, v] : metrics.items()) {
      if (!v.is_object() || !v.contains("value")) continue;
      char val[64], se[64];
      std::snprintf(val, sizeof val, "%.4f", v["value"].is_number() ? v["value"].get<double>() : 0.0);
      if (v.contains("stderr") && v["stderr"].is_number())
        std::snprintf(se, sizeof se, "%.4f", v["stderr"].get<double>());
      else
        std::snprintf(se, sizeof se, "N/A");
      md += "| " + task + " | " + metric + " | " + val + " | " + se + " | " +
            (v.contains("samples") ? v["samples"].dump() : std::string("")) + " |\n";
    }
  }
  if (infer.contains("limit") && !infer["limit"].is_null())
    md += "\n**Limited run**: only the first " + infer["limit"].dump() +
          " docs per task (lm-eval --limit); not comparable with full results.\n";
  if (infer.value("fewshot_from_eval_split", false))
    md += "\nThe few-shot split was not available: exemplars were drawn from the evaluated "
          "split (never the evaluated doc itself).\n";
  return md;
}

}  // namespace

std::string ScoreStage::description() const {
  return "lm-eval metrics with stderr, per-sample records and an lm-eval-compatible results.json "
         "of an infer artifact (input `infer`; optional `task` file overriding its copy)";
}

std::vector<ParamSpec> ScoreStage::params() const {
  return {{"normalize", ParamType::kString, false, "none",
           "none, or oll_v2: also the Open LLM Leaderboard v2 normalized score (random baseline 0, "
           "perfect 100; normalized.json and a labelled row)"}};
}

std::string ScoreStage::check_params(const json& p) const {
  const std::string n = p.value("normalize", std::string("none"));
  if (n != "none" && n != "oll_v2") return "params.normalize: unknown scheme '" + n + "' (none, oll_v2)";
  return {};
}

std::string ScoreStage::check_file_input(const std::string& input, const fs::path& path) const {
  return check_task_file_input(input, path);
}

void ScoreStage::run(StageContext& ctx) const {
  const fs::path infer_dir = single_input(ctx, "infer", "an infer artifact").path;
  fs::path task_file = infer_dir / "task.yaml";
  if (auto it = ctx.inputs.find("task"); it != ctx.inputs.end() && !it->second.items.empty())
    task_file = single_input(ctx, "task", "a task file").path;
  const scoring::TaskConfig task = scoring::load_task_file(task_file);
  const fs::path set_file = infer_dir / "eval_set.json";
  scoring::EvalSet set;
  try {
    set = scoring::EvalSet::from_json(model::read_json_file(set_file));
  } catch (const std::exception& e) {
    throw std::runtime_error(set_file.string() + ": " + e.what());
  }
  if (set.task != task.task)
    throw std::runtime_error("the task file " + task_file.string() + " defines task '" + task.task +
                             "' but the infer artifact answered '" + set.task + "'");
  const auto responses = read_responses(infer_dir / "responses.jsonl", set);
  json infer = json::object();
  if (fs::exists(infer_dir / "infer.json")) infer = model::read_json_file(infer_dir / "infer.json");
  scoring::RunInfo run;
  run.model = infer.value("model", std::string());
  run.model_args = infer.value("model_args", std::string());
  run.backend = infer.value("backend", std::string());
  const scoring::TaskResults r = scoring::score_eval_set(task, set, responses, run);
  model::write_text_file(ctx.output_dir / "results.json", r.results_json.dump(2) + "\n");
  {
    std::string lines;
    for (const auto& s : r.samples)
      lines += s.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    model::write_text_file(ctx.output_dir / "samples.jsonl", lines);
  }
  model::write_text_file(ctx.output_dir / "summary.json", r.summary.dump(2) + "\n");
  // rows.tsv: the task's own (or its group's) metrics, one per line, for
  // tables built by shell scripts: node, task, metric, value, stderr,
  // samples, limit ("-" = none).
  std::string rows;
  if (r.summary.contains(task.task)) {
    for (const auto& [metric, v] : r.summary[task.task].items()) {
      if (!v.is_object() || !v.contains("value")) continue;
      rows += ctx.node_id + "\t" + task.task + "\t" + metric + "\t" + v["value"].dump() + "\t" +
              (v.contains("stderr") && v["stderr"].is_number() ? v["stderr"].dump() : "N/A") + "\t" +
              v.value("samples", json(0)).dump() + "\t" +
              (set.limit ? std::to_string(*set.limit) : std::string("-")) + "\n";
    }
  }
  std::string md = summary_markdown(r.summary, infer);
  if (ctx.params.value("normalize", std::string("none")) == "oll_v2") {
    const json norm = scoring::oll_v2_normalized(task, set, r.summary);
    model::write_text_file(ctx.output_dir / "normalized.json", norm.dump(2) + "\n");
    const double v = norm["value"].get<double>();
    rows += ctx.node_id + "\t" + task.task + "\toll_v2_normalized(" + norm["metric"].get<std::string>() +
            ")\t" + json(v / 100).dump() + "\tN/A\t" + std::to_string(set.docs.size()) + "\t" +
            (set.limit ? std::to_string(*set.limit) : std::string("-")) + "\n";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2f", v);
    md += "\nOpen LLM Leaderboard v2 normalized score (" + norm["metric"].get<std::string>() +
          ", random baseline 0, perfect 100): **" + buf + "**\n";
  }
  model::write_text_file(ctx.output_dir / "rows.tsv", rows);
  model::write_text_file(ctx.output_dir / "score.md", md);
  ctx.outputs = {{"task", task.task}, {"summary", r.summary}};
}

}  // namespace qsweep
