#include "stages/tabulate_stage.h"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

#include "model/util/text_file.h"
#include "scoring/tables/formats.h"
#include "scoring/tables/html_report.h"
#include "scoring/tables/reproduce.h"
#include "stages/tabulate_inputs.h"

namespace qsweep {

namespace fs = std::filesystem;
using json = nlohmann::json;
namespace tb = scoring::tables;

namespace {

const std::vector<std::string> k_formats = {"md", "csv", "tex", "json", "html"};

std::vector<std::string> strings(const json& p, const char* k) {
  std::vector<std::string> v;
  if (p.contains(k) && p[k].is_array())
    for (const auto& x : p[k]) v.push_back(x.get<std::string>());
  return v;
}

std::map<std::string, std::string> string_map(const json& p, const char* k) {
  std::map<std::string, std::string> m;
  if (p.contains(k) && p[k].is_object())
    for (const auto& [a, b] : p[k].items()) m[a] = b.is_string() ? b.get<std::string>() : b.dump();
  return m;
}

const ResolvedInput* input(const StageContext& ctx, const char* name) {
  auto it = ctx.inputs.find(name);
  return it == ctx.inputs.end() ? nullptr : &it->second;
}

}  // namespace

std::string TabulateStage::description() const {
  return "results tables (Markdown, CSV, LaTeX, JSON, HTML report with plots) of score artifacts: rows "
         "model x method, one column per task, differences to the baseline; with a manifest, a "
         "reproduction report against published numbers";
}

std::vector<ParamSpec> TabulateStage::params() const {
  return {
      {"title", ParamType::kString, false, "", "heading of the table and the HTML report"},
      {"rows", ParamType::kStringList, false, json::array(),
       "matrix axes forming a row, e.g. [model, recipe] ([] = every axis but `column`)"},
      {"column", ParamType::kString, false, "task", "matrix axis forming the columns"},
      {"group", ParamType::kString, false, "model",
       "axis pairing a row with its baseline row (and a family in the plots)"},
      {"baseline_label", ParamType::kString, false, "",
       "value of a baseline row's missing row axes (\"\" = its dtype: FP32, FP16, BF16)"},
      {"metrics", ParamType::kStringMap, false, json::object(),
       "column -> \"metric,filter\" shown (default: acc_norm, acc, exact_match strict-match, ...)"},
      {"convention", ParamType::kString, false, "raw",
       "raw | normalized (the Open LLM Leaderboard v2 normalized score where the score node made one)"},
      {"decimals", ParamType::kInt, false, 2, "decimal places of every displayed number"},
      {"column_decimals", ParamType::kStringMap, false, json::object(),
       "column -> decimal places where it differs, e.g. {\"kl_vs_fp32:mean_kl\": 4}"},
      {"percent", ParamType::kBool, false, true, "show fraction metrics (accuracy, exact match) x 100"},
      {"families", ParamType::kStringMap, false, json::object(),
       "group value -> family name in the size plot (default: the group value)"},
      {"formats", ParamType::kStringList, false, k_formats,
       "outputs to write: md, csv, tex, json, html (json is always written)"},
  };
}

std::string TabulateStage::check_params(const json& p) const {
  const std::string conv = p.value("convention", std::string("raw"));
  if (conv != "raw" && conv != "normalized")
    return "params.convention: '" + conv + "' is not raw or normalized";
  const auto d = p.value("decimals", int64_t(2));
  if (d < 0 || d > 6) return "params.decimals: " + std::to_string(d) + " is outside 0..6";
  for (const auto& [col, v] : string_map(p, "column_decimals")) {
    char* end = nullptr;
    const long d2 = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end || d2 < 0 || d2 > 12)
      return "params.column_decimals." + col + ": '" + v + "' is not a number of decimal places (0..12)";
  }
  for (const auto& f : strings(p, "formats"))
    if (std::find(k_formats.begin(), k_formats.end(), f) == k_formats.end())
      return "params.formats: unknown format '" + f + "' (md, csv, tex, json, html)";
  return {};
}

std::string TabulateStage::check_file_input(const std::string& input, const fs::path& path) const {
  if (input != "manifest") return {};
  try {
    tb::load_manifest(path);
  } catch (const std::exception& e) {
    return std::string("inputs.manifest: ") + e.what();
  }
  return {};
}

void TabulateStage::run(StageContext& ctx) const {
  const json& p = ctx.params;
  tb::Layout l;
  l.title = p.value("title", std::string());
  l.rows = strings(p, "rows");
  l.column = p.value("column", std::string("task"));
  l.group = p.value("group", std::string("model"));
  l.baseline_label = p.value("baseline_label", std::string());
  l.metrics = string_map(p, "metrics");
  l.convention = p.value("convention", std::string("raw"));
  l.decimals = int(p.value("decimals", int64_t(2)));
  l.percent = p.value("percent", true);
  for (const auto& [col, v] : string_map(p, "column_decimals")) l.column_decimals[col] = std::stoi(v);
  l.families = string_map(p, "families");

  std::vector<tb::ScoreInput> scores;
  if (const ResolvedInput* b = input(ctx, "baseline"))
    for (const auto& it : b->items) scores.push_back(read_score_artifact(it, true));
  const ResolvedInput* s = input(ctx, "scores");
  if (!s) throw std::runtime_error(ctx.node_id + " needs an input `scores` (a list of score nodes)");
  for (const auto& it : s->items) scores.push_back(read_score_artifact(it, false));
  if (scores.empty())
    throw std::runtime_error(ctx.node_id + ": `scores` and `baseline` match no score node");
  std::vector<tb::ModelInput> models;
  if (const ResolvedInput* m = input(ctx, "models"))
    for (const auto& it : m->items) models.push_back(read_model_artifact(it));
  ctx.progress->log("tabulate: " + std::to_string(scores.size()) + " score artifact(s), " +
                    std::to_string(models.size()) + " model artifact(s)");

  const tb::Table t = tb::build_table(scores, models, l);
  const json tj = t.to_json();
  json rep = nullptr;
  if (const ResolvedInput* mi = input(ctx, "manifest"); mi && !mi->items.empty()) {
    const tb::Manifest m = tb::load_manifest(mi->items.front().path);
    rep = tb::reproduce(m, tj);
    model::write_text_file(ctx.output_dir / "reproduction.json", rep.dump(2) + "\n");
    model::write_text_file(ctx.output_dir / "reproduction.md", tb::reproduction_markdown(rep, l.decimals));
  }
  const auto fmts = strings(p, "formats");
  auto want = [&](const char* f) { return std::find(fmts.begin(), fmts.end(), f) != fmts.end(); };
  model::write_text_file(ctx.output_dir / "table.json", tj.dump(2) + "\n");
  if (want("md")) model::write_text_file(ctx.output_dir / "table.md", tb::to_markdown(t));
  if (want("csv")) model::write_text_file(ctx.output_dir / "table.csv", tb::to_csv(t));
  if (want("tex")) model::write_text_file(ctx.output_dir / "table.tex", tb::to_latex(t));
  if (want("html")) model::write_text_file(ctx.output_dir / "report.html", tb::html_report(tj, rep));
  ctx.outputs = {{"rows", t.rows.size()}, {"columns", t.columns.size()}};
  if (rep.is_object()) ctx.outputs["reproduction"] = rep["counts"];
}

}  // namespace qsweep
