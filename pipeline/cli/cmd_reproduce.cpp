// qsweep reproduce MANIFEST: run the manifest's experiment up to its tabulate
// node, compare the measured table with the published cells, and write the
// reproduction report (Markdown, JSON, HTML). --plan shows what that needs.
#include <cstdio>
#include <filesystem>

#include "model/util/text_file.h"
#include "pipeline/cli/commands.h"
#include "scoring/tables/formats.h"
#include "scoring/tables/html_report.h"
#include "scoring/tables/reproduce.h"

namespace qsweep::cli {

namespace fs = std::filesystem;
namespace tb = scoring::tables;

namespace {

void print_summary(const tb::Manifest& m) {
  size_t cells = 0, checks = 0;
  for (const auto& r : m.rows) cells += r.values.size() + (r.average ? 1 : 0);
  for (const auto& f : m.findings) checks += f.checks.size();
  std::printf("%s: %s\n  %zu published rows, %zu cells over %zu columns; %zu findings (%zu checks)\n"
              "  experiment %s, table node '%s'\n",
              m.name.c_str(), m.title.c_str(), m.rows.size(), cells, m.columns.size(), m.findings.size(),
              checks, m.experiment.c_str(), m.table.c_str());
}

void write_report(const fs::path& dir, const nlohmann::json& table, const nlohmann::json& rep, int decimals) {
  fs::create_directories(dir);
  model::write_text_file(dir / "reproduction.json", rep.dump(2) + "\n");
  model::write_text_file(dir / "reproduction.md", tb::reproduction_markdown(rep, decimals));
  model::write_text_file(dir / "report.html", tb::html_report(table, rep));
}

}  // namespace

int cmd_reproduce(const GlobalOptions& g, const ReproduceArgs& a) {
  tb::Manifest m;
  try {
    m = tb::load_manifest(a.manifest);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qsweep: error: %s\n", e.what());
    return k_exit_usage;
  }
  const fs::path out = a.out.empty() ? fs::path("reproduction") / m.name : fs::path(a.out);
  if (a.published) {  // the checks of the findings on the paper's own numbers
    const nlohmann::json t = tb::published_table(m);
    nlohmann::json rep = tb::reproduce(m, t);
    rep["title"] = m.title + " — the published numbers against themselves";
    std::printf("%s", tb::reproduction_markdown(rep, 2).c_str());
    return k_exit_ok;
  }
  Session s;
  if (!open_session(m.experiment.string(), g, true, &s, /*allow_unresolved=*/a.plan)) return k_exit_usage;
  const Node* n = s.graph.find(m.table);
  if (!n || n->kind != "tabulate") {
    std::fprintf(stderr, "qsweep: error: %s: table: '%s' is %s in %s; name the experiment's tabulate node\n",
                 a.manifest.c_str(), m.table.c_str(), n ? "not a tabulate node" : "no node",
                 m.experiment.c_str());
    return k_exit_usage;
  }
  const int ti = s.graph.by_id.at(m.table);
  if (a.plan) {
    print_summary(m);
    return print_plan(s, {ti}, false);
  }
  RunArgs ra = a.run;
  ra.experiment = m.experiment.string();
  ra.targets = {m.table};
  const int rc = cmd_run(g, ra);
  if (rc != k_exit_ok) return rc;
  const fs::path dir = s.store->output_dir(s.scan.nodes[ti].key);
  nlohmann::json table;
  try {
    table = model::read_json_file(dir / "table.json");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qsweep: error: %s\n", e.what());
    return k_exit_failed;
  }
  const nlohmann::json rep = tb::reproduce(m, table);
  const int decimals = table["layout"].value("decimals", 2);
  write_report(out, table, rep, decimals);
  const auto& c = rep["counts"];
  std::printf("\n%s", tb::reproduction_markdown(rep, decimals).c_str());
  std::printf("\nReproduction of %s: %d match, %d within noise, %d drift, %d missing -> %s\n  %s\n  %s\n  %s\n",
              m.name.c_str(), c.value("match", 0), c.value("within_noise", 0), c.value("drift", 0),
              c.value("missing", 0), tb::reproduction_passes(rep) ? "PASS" : "FAIL",
              (out / "reproduction.md").c_str(), (out / "reproduction.json").c_str(), (out / "report.html").c_str());
  return tb::reproduction_passes(rep) ? k_exit_ok : k_exit_failed;
}

}  // namespace qsweep::cli
