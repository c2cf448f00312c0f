#include "scoring/tables/reproduce.h"

#include <cmath>
#include <map>
#include <set>
#include <stdexcept>

#include <yaml-cpp/yaml.h>

#include "scoring/readers.h"
#include "scoring/tables/table.h"
#include "scoring/yaml_json.h"

namespace qsweep::scoring::tables {

using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const fs::path& file, const YAML::Node& at, const std::string& field,
                       const std::string& what) {
  const auto m = at.Mark();
  throw std::runtime_error(file.string() + ":" + std::to_string(m.line + 1) + ":" +
                           std::to_string(m.column + 1) + ": " + field + ": " + what);
}

std::string str_of(const fs::path& f, const YAML::Node& n, const std::string& field, bool required) {
  if (!n.IsDefined() || n.IsNull()) {
    if (required) throw std::runtime_error(f.string() + ": " + field + ": missing (see docs/results.md)");
    return {};
  }
  if (!n.IsScalar()) fail(f, n, field, "expected a string");
  return n.Scalar();
}

double num_of(const fs::path& f, const YAML::Node& n, const std::string& field) {
  const json j = n.IsScalar() ? scalar_to_json(n) : json(nullptr);
  if (!j.is_number()) fail(f, n, field, "expected a number, got '" + (n.IsScalar() ? n.Scalar() : std::string("?")) + "'");
  return j.get<double>();
}

Tolerance tol_of(const fs::path& f, const YAML::Node& n, const std::string& field) {
  Tolerance t;
  if (!n.IsDefined() || n.IsNull()) return t;
  if (!n.IsMap()) fail(f, n, field, "expected a mapping {abs, rel, k_stderr}");
  for (const auto& kv : n) {
    const std::string k = kv.first.Scalar();
    const double v = num_of(f, kv.second, field + "." + k);
    if (v < 0) fail(f, kv.second, field + "." + k, "must be >= 0");
    if (k == "abs") t.abs = v;
    else if (k == "rel") t.rel = v;
    else if (k == "k_stderr") t.k_stderr = v;
    else fail(f, kv.first, field + "." + k, "unknown tolerance (abs, rel, k_stderr)");
  }
  return t;
}

// A table row matches a selector when every selector key globs its key value.
bool selects(const json& selector, const json& row) {
  if (!selector.is_object()) return false;
  for (const auto& [k, v] : selector.items()) {
    if (!row["keys"].contains(k)) return false;
    const std::string want = v.is_string() ? v.get<std::string>() : v.dump();
    if (!wildcard_match(want, row["keys"][k].get<std::string>())) return false;
  }
  return true;
}

const json* find_row(const json& table, const json& selector) {
  for (const auto& r : table["rows"])
    if (selects(selector, r)) return &r;
  return nullptr;
}

const json* find_row_id(const json& table, const std::string& id) {
  for (const auto& r : table["rows"])
    if (r["id"] == id) return &r;
  return nullptr;
}

struct Measured {
  bool ok = false;
  double value = 0;
  std::optional<double> stderr_v;
  bool limited = false;
  json provenance;
};

// The measured value of a manifest column in a table row, in published units.
Measured measured(const json& row, const ManifestColumn& c) {
  Measured m;
  if (!row.contains("cells")) return m;
  const json* found = nullptr;  // any cell of the task holds all its metrics
  for (const auto& [id, cell] : row["cells"].items())
    if (id == c.task || cell.value("task", std::string()) == c.task) {
      found = &cell;
      break;
    }
  if (!found) return m;
  const json& cell = *found;
  for (const auto& f : cell.value("flags", json::array()))
    if (f == "limited") m.limited = true;
  m.provenance = cell.value("provenance", json::object());
  if (c.convention == "normalized") {
    const json& n = cell.value("normalized", json(nullptr));
    if (!n.is_object() || !n.contains("value") || !n["value"].is_number()) return m;
    if (!c.metric.empty() && n.contains("metric") && n["metric"] != c.metric) return m;
    m.value = n["value"].get<double>();
    m.ok = true;
    return m;
  }
  const json& ms = cell.value("metrics", json::object());
  if (!ms.contains(c.metric) || !ms[c.metric].is_object() || !ms[c.metric]["value"].is_number()) return m;
  m.value = ms[c.metric]["value"].get<double>() * c.scale;
  if (ms[c.metric].contains("stderr") && ms[c.metric]["stderr"].is_number())
    m.stderr_v = ms[c.metric]["stderr"].get<double>() * c.scale;
  m.ok = true;
  return m;
}

std::string verdict(double d, double published, const std::optional<double>& se, const Tolerance& t) {
  const double ad = std::abs(d);
  if (!t.abs && !t.rel && !t.k_stderr) return ad <= 1e-9 ? "match" : "drift";
  if ((t.abs && ad <= *t.abs + 1e-12) || (t.rel && ad <= *t.rel * std::abs(published) + 1e-12))
    return "match";
  if (t.k_stderr && se && ad <= *t.k_stderr * *se) return "within_noise";
  return "drift";
}

// Selectors: one mapping or a list of them.
std::vector<json> selector_list(const json& s) {
  if (s.is_array()) return std::vector<json>(s.begin(), s.end());
  return {s};
}

std::vector<const ManifestColumn*> check_columns(const Manifest& m, const json& check) {
  std::vector<const ManifestColumn*> cols;
  if (check.contains("columns") && check["columns"].is_array()) {
    for (const auto& c : check["columns"])
      if (const ManifestColumn* mc = m.column(c.get<std::string>())) cols.push_back(mc);
  } else {
    for (const auto& c : m.columns) cols.push_back(&c);
  }
  return cols;
}

// Values of the selected rows' cells (on: value | diff_to_baseline).
std::vector<double> collect(const json& table, const std::vector<json>& selectors,
                            const std::vector<const ManifestColumn*>& cols, bool diff,
                            std::set<std::string>* rows_seen) {
  std::vector<double> out;
  for (const auto& row : table["rows"]) {
    bool hit = false;
    for (const auto& s : selectors) hit = hit || selects(s, row);
    if (!hit) continue;
    rows_seen->insert(row["id"].get<std::string>());
    const json* base = nullptr;
    if (diff) {
      if (!row.contains("baseline_row") || !row["baseline_row"].is_string()) continue;
      base = find_row_id(table, row["baseline_row"].get<std::string>());
      if (!base) continue;
    }
    for (const ManifestColumn* c : cols) {
      const Measured v = measured(row, *c);
      if (!v.ok) continue;
      if (!base) {
        out.push_back(v.value);
        continue;
      }
      const Measured b = measured(*base, *c);
      if (b.ok) out.push_back(v.value - b.value);
    }
  }
  return out;
}

json run_check(const Manifest& m, const json& table, const json& check) {
  json r = check;
  const std::string kind = check.value("kind", std::string());
  const auto cols = check_columns(m, check);
  if (kind == "beats") {
    const json* a = find_row(table, check.value("a", json(nullptr)));
    const json* b = find_row(table, check.value("b", json(nullptr)));
    if (!a || !b) {
      r["verdict"] = "undetermined";
      r["detail"] = std::string("no measured row for ") + (!a ? "a" : "b");
      return r;
    }
    int wins = 0, n = 0;
    json per = json::object();
    for (const ManifestColumn* c : cols) {
      const Measured va = measured(*a, *c), vb = measured(*b, *c);
      if (!va.ok || !vb.ok) continue;
      ++n;
      wins += va.value > vb.value;
      per[c->id] = {va.value, vb.value};
    }
    const double min_fraction = check.value("min_fraction", 0.5);
    if (n == 0) {
      r["verdict"] = "undetermined";
      r["detail"] = "no column measured for both rows";
      return r;
    }
    r["wins"] = wins;
    r["compared"] = n;
    r["values"] = per;
    r["verdict"] = double(wins) / n > min_fraction ? "supported" : "contradicted";
    r["detail"] = std::to_string(wins) + " of " + std::to_string(n) + " columns (needs more than " +
                  fmt_fixed(min_fraction * 100, 0) + "%)";
    return r;
  }
  if (kind == "mean_greater") {
    const bool diff = check.value("on", std::string("value")) == "diff_to_baseline";
    std::set<std::string> ra, rb;
    const auto va = collect(table, selector_list(check.value("a", json(nullptr))), cols, diff, &ra);
    const auto vb = collect(table, selector_list(check.value("b", json(nullptr))), cols, diff, &rb);
    if (va.empty() || vb.empty()) {
      r["verdict"] = "undetermined";
      r["detail"] = std::string("no measured cells for ") + (va.empty() ? "a" : "b");
      return r;
    }
    double sa = 0, sb = 0;
    for (double x : va) sa += x;
    for (double x : vb) sb += x;
    const double ma = sa / double(va.size()), mb = sb / double(vb.size());
    const double margin = check.value("margin", 0.0);
    r["mean_a"] = ma;
    r["mean_b"] = mb;
    r["n_a"] = va.size();
    r["n_b"] = vb.size();
    r["verdict"] = ma > mb + margin ? "supported" : "contradicted";
    r["detail"] = "mean " + fmt_fixed(ma, 2) + " vs " + fmt_fixed(mb, 2) +
                  (margin ? " + margin " + fmt_fixed(margin, 2) : std::string()) + " (" +
                  std::to_string(va.size()) + " vs " + std::to_string(vb.size()) + " cells)";
    return r;
  }
  r["verdict"] = "undetermined";
  r["detail"] = "unknown check kind '" + kind + "'";
  return r;
}

}  // namespace

Tolerance Tolerance::merged(const Tolerance& o) const {
  Tolerance t = *this;
  if (o.abs) t.abs = o.abs;
  if (o.rel) t.rel = o.rel;
  if (o.k_stderr) t.k_stderr = o.k_stderr;
  return t;
}

json Tolerance::to_json() const {
  json j = json::object();
  if (abs) j["abs"] = *abs;
  if (rel) j["rel"] = *rel;
  if (k_stderr) j["k_stderr"] = *k_stderr;
  return j;
}

const ManifestColumn* Manifest::column(const std::string& id) const {
  for (const auto& c : columns)
    if (c.id == id) return &c;
  return nullptr;
}

Manifest load_manifest(const fs::path& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path.string());
  } catch (const YAML::BadFile&) {
    throw std::runtime_error(path.string() + ": cannot read the manifest (no such file?)");
  } catch (const YAML::Exception& e) {
    throw std::runtime_error(path.string() + ":" + std::to_string(e.mark.line + 1) + ":" +
                             std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  if (!root.IsMap()) throw std::runtime_error(path.string() + ": a manifest is a YAML mapping");
  Manifest m;
  m.path = path;
  static const std::set<std::string> known = {"version", "name", "title", "source", "experiment", "table",
                                              "group", "baseline", "tolerance", "columns", "rows", "findings"};
  for (const auto& kv : root)
    if (!known.count(kv.first.Scalar()))
      fail(path, kv.first, kv.first.Scalar(), "unknown key (known: version, name, title, source, experiment, "
                                              "table, group, baseline, tolerance, columns, rows, findings)");
  if (str_of(path, root["version"], "version", true) != "1")
    fail(path, root["version"], "version", "only version 1 is known");
  m.name = str_of(path, root["name"], "name", true);
  m.title = str_of(path, root["title"], "title", false);
  m.source = str_of(path, root["source"], "source", false);
  const std::string exp = str_of(path, root["experiment"], "experiment", true);
  m.experiment = fs::absolute(path).parent_path() / exp;
  m.table = str_of(path, root["table"], "table", true);
  if (root["group"].IsDefined()) m.group = str_of(path, root["group"], "group", true);
  if (root["baseline"].IsDefined()) m.baseline = yaml_to_json(root["baseline"]);
  m.tolerance = tol_of(path, root["tolerance"], "tolerance");
  const YAML::Node cols = root["columns"];
  if (!cols.IsMap() || cols.size() == 0) throw std::runtime_error(path.string() + ": columns: missing or empty");
  for (const auto& kv : cols) {
    ManifestColumn c;
    c.id = kv.first.Scalar();
    const std::string f = "columns." + c.id;
    const YAML::Node& n = kv.second;
    if (!n.IsMap()) fail(path, n, f, "expected a mapping {task, metric, convention, scale, label}");
    c.task = str_of(path, n["task"], f + ".task", true);
    c.metric = str_of(path, n["metric"], f + ".metric", true);
    c.convention = n["convention"].IsDefined() ? str_of(path, n["convention"], f + ".convention", true) : "raw";
    if (c.convention != "raw" && c.convention != "normalized")
      fail(path, n["convention"], f + ".convention", "'" + c.convention + "' is not raw or normalized");
    if (n["scale"].IsDefined()) c.scale = num_of(path, n["scale"], f + ".scale");
    c.label = n["label"].IsDefined() ? str_of(path, n["label"], f + ".label", true) : c.id;
    c.tolerance = m.tolerance.merged(tol_of(path, n["tolerance"], f + ".tolerance"));
    m.columns.push_back(c);
  }
  const YAML::Node rows = root["rows"];
  if (!rows.IsSequence()) throw std::runtime_error(path.string() + ": rows: missing (a list of published rows)");
  for (size_t i = 0; i < rows.size(); ++i) {
    const YAML::Node& n = rows[i];
    const std::string f = "rows[" + std::to_string(i) + "]";
    if (!n.IsMap()) fail(path, n, f, "expected a mapping {table, row, label, values, average}");
    ManifestRow r;
    r.line = n.Mark().line + 1;
    r.table = n["table"].IsDefined() ? str_of(path, n["table"], f + ".table", true) : "";
    if (!n["row"].IsMap() || n["row"].size() == 0)
      fail(path, n, f + ".row", "expected the row's keys, e.g. {model: NAME, recipe: NAME}");
    r.row = yaml_to_json(n["row"]);
    for (auto& [k, v] : r.row.items())
      if (!v.is_string()) v = v.dump();  // keys compare as text
    r.label = n["label"].IsDefined() ? yaml_to_json(n["label"]) : json::object();
    if (!n["values"].IsMap() || n["values"].size() == 0)
      fail(path, n, f + ".values", "expected {column id: published value}");
    for (const auto& kv : n["values"]) {
      const std::string id = kv.first.Scalar();
      if (!m.column(id)) fail(path, kv.first, f + ".values." + id, "no such column in `columns`");
      r.values.push_back({id, num_of(path, kv.second, f + ".values." + id)});
    }
    if (n["average"].IsDefined() && !n["average"].IsNull()) r.average = num_of(path, n["average"], f + ".average");
    r.tolerance = tol_of(path, n["tolerance"], f + ".tolerance");
    m.rows.push_back(std::move(r));
  }
  if (root["findings"].IsDefined()) {
    if (!root["findings"].IsSequence()) fail(path, root["findings"], "findings", "expected a list");
    for (size_t i = 0; i < root["findings"].size(); ++i) {
      const YAML::Node& n = root["findings"][i];
      const std::string f = "findings[" + std::to_string(i) + "]";
      Finding fd;
      fd.id = str_of(path, n["id"], f + ".id", true);
      fd.text = str_of(path, n["text"], f + ".text", true);
      fd.note = str_of(path, n["note"], f + ".note", false);
      if (n["checks"].IsDefined()) {
        if (!n["checks"].IsSequence()) fail(path, n["checks"], f + ".checks", "expected a list");
        fd.checks = yaml_to_json(n["checks"]);
        for (size_t k = 0; k < n["checks"].size(); ++k) {
          const std::string kind = fd.checks[k].value("kind", std::string());
          if (kind != "beats" && kind != "mean_greater")
            fail(path, n["checks"][k], f + ".checks[" + std::to_string(k) + "].kind",
                 "'" + kind + "' is not beats or mean_greater");
          if (fd.checks[k].contains("columns"))
            for (const auto& c : fd.checks[k]["columns"])
              if (!c.is_string() || !m.column(c.get<std::string>()))
                fail(path, n["checks"][k]["columns"], f + ".checks[" + std::to_string(k) + "].columns",
                     "'" + (c.is_string() ? c.get<std::string>() : c.dump()) + "' is not a column id");
        }
      }
      m.findings.push_back(std::move(fd));
    }
  }
  return m;
}

json reproduce(const Manifest& m, const json& table) {
  json cells = json::array();
  std::map<std::string, int> counts = {{"match", 0}, {"within_noise", 0}, {"drift", 0}, {"missing", 0}};
  for (const auto& r : m.rows) {
    const json* row = find_row(table, r.row);
    const Tolerance tol_row = r.tolerance;
    double sum = 0, var = 0;
    bool all = true, any_se = true, limited = false;
    for (const auto& [id, pub] : r.values) {
      const ManifestColumn& c = *m.column(id);
      const Tolerance tol = c.tolerance.merged(tol_row);
      json cell = {{"table", r.table}, {"row", r.row},       {"label", r.label},
                   {"column", id},     {"task", c.task},     {"metric", c.metric},
                   {"convention", c.convention}, {"published", pub}, {"tolerance", tol.to_json()},
                   {"line", r.line}};
      const Measured v = row ? measured(*row, c) : Measured{};
      if (!v.ok) {
        cell["verdict"] = "missing";
        cell["measured"] = nullptr;
        all = false;
      } else {
        const double d = v.value - pub;
        cell["measured"] = v.value;
        cell["stderr"] = v.stderr_v ? json(*v.stderr_v) : json(nullptr);
        cell["diff"] = d;
        cell["verdict"] = verdict(d, pub, v.stderr_v, tol);
        cell["limited"] = v.limited;
        cell["provenance"] = v.provenance;
        sum += v.value;
        if (v.stderr_v) var += *v.stderr_v * *v.stderr_v;
        else any_se = false;
        limited = limited || v.limited;
      }
      ++counts[cell["verdict"].get<std::string>()];
      cells.push_back(std::move(cell));
    }
    if (r.average) {
      const Tolerance tol = m.tolerance.merged(tol_row);
      json cell = {{"table", r.table}, {"row", r.row}, {"label", r.label}, {"column", "average"},
                   {"published", *r.average}, {"tolerance", tol.to_json()}, {"line", r.line}};
      if (!all || r.values.empty()) {
        cell["verdict"] = "missing";
        cell["measured"] = nullptr;
      } else {
        const double n = double(r.values.size());
        const double mean = sum / n;
        const std::optional<double> se = any_se ? std::optional<double>(std::sqrt(var) / n) : std::nullopt;
        cell["measured"] = mean;
        cell["stderr"] = se ? json(*se) : json(nullptr);
        cell["diff"] = mean - *r.average;
        cell["verdict"] = verdict(mean - *r.average, *r.average, se, tol);
        cell["limited"] = limited;
      }
      ++counts[cell["verdict"].get<std::string>()];
      cells.push_back(std::move(cell));
    }
  }
  json findings = json::array();
  for (const auto& f : m.findings) {
    json checks = json::array();
    std::string v = f.checks.empty() ? "not checked" : "supported";
    for (const auto& c : f.checks) {
      json r = run_check(m, table, c);
      const std::string cv = r["verdict"].get<std::string>();
      if (cv == "contradicted") v = "contradicted";
      else if (cv == "undetermined" && v == "supported") v = "undetermined";
      checks.push_back(std::move(r));
    }
    findings.push_back({{"id", f.id}, {"text", f.text}, {"note", f.note}, {"checks", checks}, {"verdict", v}});
  }
  json cj = json::object();
  for (const auto& [k, n] : counts) cj[k] = n;
  return {{"format", "qsweep-reproduction"}, {"version", 1}, {"manifest", m.name},
          {"title", m.title}, {"source", m.source}, {"counts", cj}, {"cells", cells},
          {"findings", findings}};
}

json published_table(const Manifest& m) {
  json rows = json::array();
  std::map<std::string, size_t> index;
  for (const auto& r : m.rows) {
    std::string id;
    for (const auto& [k, v] : r.row.items()) id += (id.empty() ? "" : " / ") + v.get<std::string>();
    auto [it, fresh] = index.emplace(id, rows.size());
    if (fresh)
      rows.push_back({{"id", id}, {"keys", r.row}, {"group", r.row.value(m.group, std::string())},
                      {"baseline", selects(m.baseline, json{{"keys", r.row}})},
                      {"cells", json::object()}, {"baseline_row", nullptr}});
    json& row = rows[it->second];
    for (const auto& [cid, v] : r.values) {
      const ManifestColumn& c = *m.column(cid);
      json& cell = row["cells"][c.task];
      if (!cell.is_object()) cell = {{"metrics", json::object()}, {"flags", json::array()}};
      if (c.convention == "normalized") cell["normalized"] = {{"metric", c.metric}, {"value", v}};
      else cell["metrics"][c.metric] = {{"value", v / c.scale}};
    }
  }
  for (auto& row : rows) {
    if (row["baseline"].get<bool>()) continue;
    for (const auto& other : rows)
      if (other["baseline"].get<bool>() && other["group"] == row["group"]) row["baseline_row"] = other["id"];
  }
  return {{"format", "qsweep-table"}, {"version", 1}, {"title", m.title + " (published)"}, {"rows", rows}};
}

bool reproduction_passes(const json& report) {
  const json& c = report["counts"];
  return c.value("drift", 0) == 0 && c.value("missing", 0) == 0;
}

std::string reproduction_markdown(const json& rep, int decimals) {
  const json& c = rep["counts"];
  std::string out = "## Reproduction: " + rep.value("title", rep.value("manifest", std::string())) + "\n\n";
  if (!rep.value("source", std::string()).empty()) out += "Source: " + rep["source"].get<std::string>() + "\n\n";
  out += "Cells: " + std::to_string(c.value("match", 0)) + " match, " +
         std::to_string(c.value("within_noise", 0)) + " within noise, " +
         std::to_string(c.value("drift", 0)) + " drift, " + std::to_string(c.value("missing", 0)) +
         " missing.\n";
  std::string table;
  for (const auto& cell : rep["cells"]) {
    const std::string t = cell.value("table", std::string());
    if (t != table || table.empty()) {
      table = t.empty() ? " " : t;
      out += "\n### " + (t.empty() ? std::string("Cells") : t) + "\n\n";
      out += "| row | column | published | measured | stderr | diff | verdict |\n";
      out += "| --- | --- | ---: | ---: | ---: | ---: | --- |\n";
    }
    std::string row;
    for (const auto& [k, v] : cell["row"].items()) row += (row.empty() ? "" : " / ") + v.get<std::string>();
    auto num = [&](const char* k) {
      return cell.contains(k) && cell[k].is_number() ? fmt_fixed(cell[k].get<double>(), decimals) : std::string("-");
    };
    std::string verdict = cell["verdict"].get<std::string>();
    if (cell.value("limited", false)) verdict += " †";
    out += "| " + row + " | " + cell["column"].get<std::string>() + " | " + num("published") + " | " +
           num("measured") + " | " + num("stderr") + " | " + num("diff") + " | " + verdict + " |\n";
  }
  if (!rep["findings"].empty()) {
    out += "\n### Findings\n\n";
    for (const auto& f : rep["findings"]) {
      out += "- **" + f["verdict"].get<std::string>() + "** — " + f["text"].get<std::string>() + "\n";
      for (const auto& ch : f["checks"])
        out += "  - " + ch.value("kind", std::string()) + ": " + ch["verdict"].get<std::string>() + " (" +
               ch.value("detail", std::string()) + ")\n";
      if (!f.value("note", std::string()).empty()) out += "  - note: " + f["note"].get<std::string>() + "\n";
    }
  }
  bool lim = false;
  for (const auto& cell : rep["cells"]) lim = lim || cell.value("limited", false);
  if (lim) out += "\n† measured with --limit: not comparable with the published full-set number.\n";
  return out;
}

}  // namespace qsweep::scoring::tables
