// The tabulate stage's work at the size of the study (issue #7): the Lee et
// al. 2024 manifest's rows (35 model x method rows, 12 lm-eval tasks) as
// measured scores, laid out, written in every format, and reproduced against
// the complete manifest (562 cells, 14 checks). Prints milliseconds per step
// (best of 20 repetitions). Usage: tables_bench [MANIFEST]
#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <string>

#include "scoring/tables/formats.h"
#include "scoring/tables/html_report.h"
#include "scoring/tables/reproduce.h"
#include "scoring/tables/table.h"

namespace tb = qsweep::scoring::tables;
using json = nlohmann::json;

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : QSWEEP_SOURCE_DIR "/experiments/lee2024/manifest.yaml";
  const tb::Manifest m = tb::load_manifest(path);
  // Scores: every published Table 2/3 cell as a measured score artifact (the
  // published value as the metric, a binomial-like stderr).
  std::vector<tb::ScoreInput> scores;
  for (const auto& r : m.rows) {
    if (r.table == "Table 4") continue;
    const std::string model = r.row["model"], recipe = r.row["recipe"];
    for (const auto& [col, v] : r.values) {
      const tb::ManifestColumn& c = *m.column(col);
      tb::ScoreInput s;
      s.baseline = recipe == "fp16";
      s.node = (s.baseline ? "score_fp16[" + model : "score[" + model + "," + recipe) + "," + c.task + "]";
      s.key = std::string(32, 'a');
      s.axes = {{"model", model}};
      if (!s.baseline) s.axes.push_back({"recipe", recipe});
      s.axes.push_back({"task", c.task});
      s.task = c.task;
      const double p = v / c.scale;
      s.summary = {{c.task, {{c.metric, {{"value", p}, {"stderr", std::sqrt(p * (1 - p) / 1000)}, {"samples", 1000}}}}}};
      s.provenance = {{"score_node", s.node}, {"score_key", s.key}};
      scores.push_back(std::move(s));
    }
  }
  tb::Layout l;
  l.rows = {"model", "recipe"};
  l.baseline_label = "fp16";
  l.title = "Lee et al. 2024 (bench)";
  for (const auto& c : m.columns) l.metrics[c.task] = c.metric;
  auto best = [](auto&& fn) {
    double b = 1e9;
    for (int i = 0; i < 20; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      fn();
      b = std::min(b, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    return b;
  };
  tb::Table t;
  json tj, rep;
  std::string html;
  const double t_build = best([&] { t = tb::build_table(scores, {}, l); });
  const double t_json = best([&] { tj = t.to_json(); });
  const double t_text = best([&] { (void)tb::to_markdown(t), (void)tb::to_csv(t), (void)tb::to_latex(t); });
  const double t_rep = best([&] { rep = tb::reproduce(m, tj); });
  const double t_html = best([&] { html = tb::html_report(tj, rep); });
  const double t_load = best([&] { (void)tb::load_manifest(path); });
  std::printf("%zu scores -> %zu rows x %zu columns; reproduction: %d match of %zu cells\n", scores.size(),
              t.rows.size(), t.columns.size(), rep["counts"]["match"].get<int>(), rep["cells"].size());
  std::printf("load manifest %.2f ms, build %.2f ms, to_json %.2f ms, md+csv+tex %.2f ms, reproduce %.2f ms, "
              "html %.2f ms (%zu bytes)\n",
              t_load, t_build, t_json, t_text, t_rep, t_html, html.size());
  return 0;
}
