#include "scoring/tables/html_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "scoring/tables/formats.h"
#include "scoring/tables/table.h"

namespace qsweep::scoring::tables {

using json = nlohmann::json;

namespace {

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string ptr_escape(const std::string& s) {
  std::string o;
  for (char c : s) o += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
  return o;
}

// A number from the data: <TAG data-p=POINTER data-d=D>fmt</TAG>.
std::string num(const std::string& tag, const std::string& pointer, double v, int d,
                const std::string& attrs = "") {
  return "<" + tag + " data-p=\"" + esc(pointer) + "\" data-d=\"" + std::to_string(d) + "\"" + attrs + ">" +
         fmt_fixed(v, d) + "</" + tag + ">";
}

// A size from the data: data-f="bytes" says the text is fmt_bytes(value).
std::string bytes_span(const std::string& pointer, double v, const std::string& tag = "span") {
  return "<" + tag + " data-p=\"" + esc(pointer) + "\" data-f=\"bytes\">" + esc(fmt_bytes(v)) + "</" + tag + ">";
}

std::string f2(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

const char* k_palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                           "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};

std::string provenance_text(const json& cell) {
  std::string s = "metric " + cell.value("metric", std::string());
  if (cell.contains("samples") && cell["samples"].is_number()) s += "; n = " + cell["samples"].dump();
  if (cell.contains("stderr") && cell["stderr"].is_number())
    s += "; stderr " + fmt_fixed(cell["stderr"].get<double>(), 3);
  s += cell.contains("limit") && cell["limit"].is_number() ? "; --limit " + cell["limit"].dump()
                                                           : std::string("; every document");
  if (cell.contains("provenance") && cell["provenance"].is_object())
    for (const auto& [k, v] : cell["provenance"].items())
      if (v.is_string()) s += "\n" + k + ": " + v.get<std::string>();
  return s;
}

std::string cell_ptr(size_t r, const std::string& col, const char* field) {
  return "/table/rows/" + std::to_string(r) + "/cells/" + ptr_escape(col) + "/" + field;
}

std::string diff_html(const json& diff, const std::string& pointer, int d, bool higher_better) {
  if (!diff.is_number()) return {};
  const double x = diff.get<double>();
  const bool zero = fmt_fixed(std::abs(x), d) == fmt_fixed(0, d);
  const char* arrow = zero ? "±" : x > 0 ? "▲" : "▼";
  const bool good = (x > 0) == higher_better;
  return std::string(" <span class=\"") + (zero ? "same" : good ? "up" : "down") + "\">" + arrow +
         num("span", pointer, std::abs(x), d, " data-abs=\"1\"") + "</span>";
}

std::string table_html(const json& t) {
  const int d = t["layout"].value("decimals", 2);
  const auto& cols = t["columns"];
  std::string o = "<table class=\"results\"><thead><tr>";
  for (const auto& k : t["layout"]["rows"]) o += "<th>" + esc(k.get<std::string>()) + "</th>";
  o += "<th>W/A bits</th><th>size (measured)</th><th>size (nominal)</th>";
  for (const auto& c : cols)
    o += "<th title=\"" + esc(c["metric"].get<std::string>()) + "\">" + esc(c["id"].get<std::string>()) + "</th>";
  o += "<th>average</th></tr></thead><tbody>\n";
  for (size_t r = 0; r < t["rows"].size(); ++r) {
    const json& row = t["rows"][r];
    o += std::string("<tr") + (row["baseline"].get<bool>() ? " class=\"baseline\"" : "") + ">";
    for (const auto& k : t["layout"]["rows"])
      o += "<td>" + esc(row["keys"].value(k.get<std::string>(), std::string())) + "</td>";
    o += "<td>" + esc(bits_label(row)) + "</td>";
    for (const char* f : {"measured_bytes", "nominal_bytes"}) {
      const json& s = row["storage"];
      o += "<td class=\"num\">" +
           (s.contains(f) && s[f].is_number()
                ? bytes_span("/table/rows/" + std::to_string(r) + "/storage/" + f, s[f].get<double>())
                : std::string("-")) +
           "</td>";
    }
    for (const auto& c : cols) {
      const std::string id = c["id"].get<std::string>();
      if (!row["cells"].contains(id)) {
        o += "<td class=\"num missing\">-</td>";
        continue;
      }
      const json& cell = row["cells"][id];
      const int cd = c.value("decimals", d);
      o += "<td class=\"num\" title=\"" + esc(provenance_text(cell)) + "\">" +
           num("span", cell_ptr(r, id, "value"), cell["value"].get<double>(), cd) +
           diff_html(cell["diff"], cell_ptr(r, id, "diff"), cd, c["higher_is_better"].get<bool>()) +
           esc(flag_marks(cell)) + "</td>";
    }
    const json& a = row["average"];
    o += "<td class=\"num\">";
    if (a["value"].is_number()) {
      o += num("span", "/table/rows/" + std::to_string(r) + "/average/value", a["value"].get<double>(), d) +
           diff_html(a["diff"], "/table/rows/" + std::to_string(r) + "/average/diff", d, true);
      if (!a["complete"].get<bool>()) o += " (" + a["n"].dump() + "/" + a["of"].dump() + ")";
    }
    o += "</td></tr>\n";
  }
  o += "</tbody></table>\n";
  for (const auto& n : t["notes"]) o += "<p class=\"note\">" + esc(n.get<std::string>()) + "</p>\n";
  return o;
}

// Average score vs storage (log x), one colour per family.
std::string scatter_svg(const json& t) {
  struct Pt { double x, y; size_t r; std::string fam; const char* field; double bytes; };
  std::vector<Pt> pts;
  const json& fams = t["layout"].value("families", json::object());
  for (size_t r = 0; r < t["rows"].size(); ++r) {
    const json& row = t["rows"][r];
    const json& s = row["storage"];
    double x = 0;
    const char* field = "measured_bytes";
    if (s.contains("measured_bytes") && s["measured_bytes"].is_number()) {
      x = s["measured_bytes"].get<double>();
    } else if (s.contains("nominal_bytes") && s["nominal_bytes"].is_number()) {
      x = s["nominal_bytes"].get<double>();
      field = "nominal_bytes";
    }
    if (x <= 0 || !row["average"]["value"].is_number()) continue;
    const std::string g = row["group"].get<std::string>();
    pts.push_back({std::log10(x), row["average"]["value"].get<double>(), r,
                   fams.contains(g) ? fams[g].get<std::string>() : g, field, x});
  }
  if (pts.empty()) return "<p class=\"note\">No storage sizes: the size plot needs the model artifacts (the `models` input).</p>\n";
  double x0 = pts[0].x, x1 = x0, y0 = pts[0].y, y1 = y0;
  const Pt* lo = &pts[0];
  const Pt* hi = &pts[0];
  for (const auto& p : pts) {
    if (p.x < lo->x) lo = &p;
    if (p.x > hi->x) hi = &p;
    y0 = std::min(y0, p.y), y1 = std::max(y1, p.y);
  }
  x0 = lo->x, x1 = hi->x;
  auto bytes_of = [&](const Pt* p) {
    return bytes_span("/table/rows/" + std::to_string(p->r) + "/storage/" + p->field, p->bytes, "tspan");
  };
  if (x1 - x0 < 0.2) x0 -= 0.1, x1 += 0.1;
  if (y1 - y0 < 1e-9) y0 -= 1, y1 += 1;
  const double W = 640, H = 340, L = 60, R = 170, T = 20, B = 45;
  auto sx = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto sy = [&](double y) { return H - B - (y - y0) / (y1 - y0) * (H - T - B); };
  std::map<std::string, size_t> fam_index;
  for (const auto& p : pts) fam_index.emplace(p.fam, fam_index.size());
  const int d = t["layout"].value("decimals", 2);
  std::string o = "<svg class=\"plot\" width=\"" + f2(W) + "\" height=\"" + f2(H) + "\" viewBox=\"0 0 " + f2(W) +
                  " " + f2(H) + "\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\">\n";
  o += "<line x1=\"" + f2(L) + "\" y1=\"" + f2(H - B) + "\" x2=\"" + f2(W - R) + "\" y2=\"" + f2(H - B) + "\" class=\"axis\"/>";
  o += "<line x1=\"" + f2(L) + "\" y1=\"" + f2(T) + "\" x2=\"" + f2(L) + "\" y2=\"" + f2(H - B) + "\" class=\"axis\"/>\n";
  o += "<text x=\"" + f2((L + W - R) / 2) + "\" y=\"" + f2(H - 8) + "\" class=\"lbl\" text-anchor=\"middle\">storage (log scale): " + bytes_of(lo) +
       " .. " + bytes_of(hi) + "</text>";
  o += "<text x=\"14\" y=\"" + f2((T + H - B) / 2) + "\" class=\"lbl\" transform=\"rotate(-90 14 " + f2((T + H - B) / 2) +
       ")\" text-anchor=\"middle\">average score</text>\n";
  // Lines join the rows of one family in size order.
  for (const auto& [fam, fi] : fam_index) {
    std::vector<Pt> f;
    for (const auto& p : pts)
      if (p.fam == fam) f.push_back(p);
    std::sort(f.begin(), f.end(), [](const Pt& a, const Pt& b) { return a.x < b.x; });
    std::string path;
    for (const auto& p : f) path += (path.empty() ? "M" : " L") + f2(sx(p.x)) + " " + f2(sy(p.y));
    o += "<path d=\"" + path + "\" fill=\"none\" stroke=\"" + k_palette[fi % 10] + "\" stroke-opacity=\"0.35\"/>\n";
  }
  for (const auto& p : pts) {
    const json& row = t["rows"][p.r];
    const std::string rp = "/table/rows/" + std::to_string(p.r) + "/average/value";
    o += "<g><title>" + esc(row["id"].get<std::string>() + " (" + bits_label(row) + ")") + "</title><circle cx=\"" +
         f2(sx(p.x)) + "\" cy=\"" + f2(sy(p.y)) + "\" r=\"5\" fill=\"" + k_palette[fam_index[p.fam] % 10] + "\"" +
         (row["baseline"].get<bool>() ? " stroke=\"#000\" stroke-width=\"1.5\"" : "") + "/>" +
         num("text", rp, p.y, d, " x=\"" + f2(sx(p.x) + 7) + "\" y=\"" + f2(sy(p.y) - 6) + "\" class=\"val\"") + "</g>\n";
  }
  size_t li = 0;
  for (const auto& [fam, fi] : fam_index) {
    const double y = T + 14 + 16 * double(li++);
    o += "<rect x=\"" + f2(W - R + 12) + "\" y=\"" + f2(y - 9) + "\" width=\"10\" height=\"10\" fill=\"" + k_palette[fi % 10] +
         "\"/><text x=\"" + f2(W - R + 28) + "\" y=\"" + f2(y) + "\" class=\"lbl\">" + esc(fam) + "</text>\n";
  }
  o += "</svg>\n";
  return o;
}

// Differences to the baseline: rows x columns, red = worse, blue = better.
std::string heatmap_svg(const json& t) {
  std::vector<size_t> rows;
  double maxabs = 0;
  json cols = json::array();  // the columns with at least one difference
  for (const auto& c : t["columns"]) {
    const std::string id = c["id"].get<std::string>();
    bool any = false;
    for (const auto& row : t["rows"])
      any = any || (row["cells"].contains(id) && row["cells"][id]["diff"].is_number());
    if (any) cols.push_back(c);
  }
  for (size_t r = 0; r < t["rows"].size(); ++r) {
    const json& row = t["rows"][r];
    bool any = false;
    for (const auto& c : cols) {
      const std::string id = c["id"].get<std::string>();
      if (row["cells"].contains(id) && row["cells"][id]["diff"].is_number()) {
        any = true;
        maxabs = std::max(maxabs, std::abs(row["cells"][id]["diff"].get<double>()));
      }
    }
    if (any) rows.push_back(r);
  }
  if (rows.empty()) return "<p class=\"note\">No differences to a baseline row (no baseline input).</p>\n";
  if (maxabs <= 0) maxabs = 1;
  const int d = t["layout"].value("decimals", 2);
  const double cw = 86, ch = 24, L = 220, T = 70;
  const double W = L + cw * double(cols.size()) + 10, H = T + ch * double(rows.size()) + 10;
  std::string o = "<svg class=\"plot\" width=\"" + f2(W) + "\" height=\"" + f2(H) + "\" viewBox=\"0 0 " + f2(W) + " " +
                  f2(H) + "\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\">\n";
  for (size_t ci = 0; ci < cols.size(); ++ci) {
    const double x = L + cw * double(ci) + cw / 2;
    o += "<text x=\"" + f2(x) + "\" y=\"" + f2(T - 8) + "\" class=\"lbl\" text-anchor=\"start\" transform=\"rotate(-30 " +
         f2(x) + " " + f2(T - 8) + ")\">" + esc(cols[ci]["id"].get<std::string>()) + "</text>\n";
  }
  for (size_t ri = 0; ri < rows.size(); ++ri) {
    const json& row = t["rows"][rows[ri]];
    const double y = T + ch * double(ri);
    o += "<text x=\"" + f2(L - 6) + "\" y=\"" + f2(y + ch * 0.68) + "\" class=\"lbl\" text-anchor=\"end\">" +
         esc(row["id"].get<std::string>()) + "</text>\n";
    for (size_t ci = 0; ci < cols.size(); ++ci) {
      const std::string id = cols[ci]["id"].get<std::string>();
      const double x = L + cw * double(ci);
      if (!row["cells"].contains(id) || !row["cells"][id]["diff"].is_number()) {
        o += "<rect x=\"" + f2(x) + "\" y=\"" + f2(y) + "\" width=\"" + f2(cw - 2) + "\" height=\"" + f2(ch - 2) +
             "\" fill=\"#eee\"/>\n";
        continue;
      }
      const json& cell = row["cells"][id];
      const double v = cell["diff"].get<double>();
      const bool good = (v > 0) == cols[ci]["higher_is_better"].get<bool>();
      const double a = std::min(1.0, std::abs(v) / maxabs);
      const int c0 = int(255 - 175 * a);
      char fill[16];
      std::snprintf(fill, sizeof fill, good ? "#%02x%02xff" : "#ff%02x%02x", c0, c0);
      o += "<g><title>" + esc(row["id"].get<std::string>() + " · " + id + "\n" + provenance_text(cell)) +
           "</title><rect x=\"" + f2(x) + "\" y=\"" + f2(y) + "\" width=\"" + f2(cw - 2) + "\" height=\"" + f2(ch - 2) +
           "\" fill=\"" + fill + "\"/>" +
           num("text", cell_ptr(rows[ri], id, "diff"), v, cols[ci].value("decimals", d),
               " x=\"" + f2(x + cw / 2 - 1) + "\" y=\"" + f2(y + ch * 0.68) + "\" class=\"val\" text-anchor=\"middle\"") +
           "</g>\n";
    }
  }
  o += "</svg>\n";
  return o;
}

// One bar chart per column: every row's value with a +-stderr error bar.
std::string bars_svg(const json& t) {
  std::string o;
  const int d = t["layout"].value("decimals", 2);
  const auto& rows = t["rows"];
  for (const auto& c : t["columns"]) {
    const std::string id = c["id"].get<std::string>();
    double vmax = 0;
    std::vector<size_t> rs;
    for (size_t r = 0; r < rows.size(); ++r) {
      if (!rows[r]["cells"].contains(id)) continue;
      const json& cell = rows[r]["cells"][id];
      const double se = cell["stderr"].is_number() ? cell["stderr"].get<double>() : 0;
      vmax = std::max(vmax, cell["value"].get<double>() + se);
      rs.push_back(r);
    }
    if (rs.empty()) continue;
    if (vmax <= 0) vmax = 1;
    const double bh = 18, L = 220, T = 26, PW = 300;
    const double W = L + PW + 90, H = T + bh * double(rs.size()) + 8;
    o += "<figure><svg class=\"plot\" width=\"" + f2(W) + "\" height=\"" + f2(H) + "\" viewBox=\"0 0 " + f2(W) + " " +
         f2(H) + "\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\">\n<text x=\"4\" y=\"16\" class=\"ttl\">" +
         esc(id) + " (" + esc(c["metric"].get<std::string>()) + ")</text>\n";
    for (size_t i = 0; i < rs.size(); ++i) {
      const json& row = rows[rs[i]];
      const json& cell = row["cells"][id];
      const double v = cell["value"].get<double>();
      const double y = T + bh * double(i);
      const double w = std::max(0.0, v) / vmax * PW;
      o += "<g><title>" + esc(row["id"].get<std::string>() + "\n" + provenance_text(cell)) + "</title>";
      o += "<text x=\"" + f2(L - 6) + "\" y=\"" + f2(y + bh * 0.7) + "\" class=\"lbl\" text-anchor=\"end\">" +
           esc(row["id"].get<std::string>()) + esc(flag_marks(cell)) + "</text>";
      o += "<rect x=\"" + f2(L) + "\" y=\"" + f2(y + 2) + "\" width=\"" + f2(w) + "\" height=\"" + f2(bh - 5) + "\" fill=\"" +
           (row["baseline"].get<bool>() ? "#555" : "#4a78b5") + "\"/>";
      if (cell["stderr"].is_number()) {
        const double se = cell["stderr"].get<double>() / vmax * PW;
        const double cy = y + bh / 2;
        o += "<path d=\"M" + f2(L + w - se) + " " + f2(cy) + " H" + f2(L + w + se) + " M" + f2(L + w - se) + " " +
             f2(cy - 4) + " V" + f2(cy + 4) + " M" + f2(L + w + se) + " " + f2(cy - 4) + " V" + f2(cy + 4) +
             "\" stroke=\"#000\" fill=\"none\"/>";
      }
      o += num("text", cell_ptr(rs[i], id, "value"), v, c.value("decimals", d),
               " x=\"" + f2(L + PW + 8) + "\" y=\"" + f2(y + bh * 0.7) + "\" class=\"val\"") +
           "</g>\n";
    }
    o += "</svg></figure>\n";
  }
  return o;
}

std::string verdicts_html(const json& rep) {
  if (!rep.is_object()) return {};
  std::string o = "<h2>Reproduction: " + esc(rep.value("title", std::string())) + "</h2>\n";
  const json& c = rep["counts"];
  o += "<p class=\"counts\">";
  for (const char* k : {"match", "within_noise", "drift", "missing"})
    o += "<span class=\"v-" + std::string(k) + "\">" + k + ": " +
         num("b", "/reproduction/counts/" + std::string(k), c.value(k, 0), 0) + "</span> ";
  o += "</p>\n<table class=\"results\"><thead><tr><th>table</th><th>row</th><th>column</th><th>published</th>"
       "<th>measured</th><th>stderr</th><th>diff</th><th>verdict</th></tr></thead><tbody>\n";
  for (size_t i = 0; i < rep["cells"].size(); ++i) {
    const json& cell = rep["cells"][i];
    const std::string p = "/reproduction/cells/" + std::to_string(i) + "/";
    std::string row;
    for (const auto& [k, v] : cell["row"].items()) row += (row.empty() ? "" : " / ") + v.get<std::string>();
    auto n = [&](const char* k) {
      return cell.contains(k) && cell[k].is_number() ? num("span", p + k, cell[k].get<double>(), 2) : std::string("-");
    };
    const std::string v = cell["verdict"].get<std::string>();
    std::string hover = "tolerance " + cell.value("tolerance", json::object()).dump();
    if (cell.contains("provenance") && cell["provenance"].is_object())
      for (const auto& [k, pv] : cell["provenance"].items())
        if (pv.is_string()) hover += "\n" + k + ": " + pv.get<std::string>();
    o += "<tr title=\"" + esc(hover) + "\"><td>" + esc(cell.value("table", std::string())) + "</td><td>" + esc(row) +
         "</td><td>" + esc(cell["column"].get<std::string>()) + "</td><td class=\"num\">" + n("published") +
         "</td><td class=\"num\">" + n("measured") + "</td><td class=\"num\">" + n("stderr") +
         "</td><td class=\"num\">" + n("diff") + "</td><td class=\"v-" + esc(v) + "\">" + esc(v) +
         (cell.value("limited", false) ? " †" : "") + "</td></tr>\n";
  }
  o += "</tbody></table>\n";
  if (!rep["findings"].empty()) {
    o += "<h3>Findings</h3><ul class=\"findings\">\n";
    for (const auto& f : rep["findings"]) {
      const std::string v = f["verdict"].get<std::string>();
      o += "<li><span class=\"f-" + esc(v) + "\">" + esc(v) + "</span> " + esc(f["text"].get<std::string>());
      std::string sub;
      for (const auto& ch : f["checks"])
        sub += "<li>" + esc(ch.value("kind", std::string())) + ": " + esc(ch["verdict"].get<std::string>()) + " — " +
               esc(ch.value("detail", std::string())) + "</li>";
      if (!f.value("note", std::string()).empty()) sub += "<li>note: " + esc(f["note"].get<std::string>()) + "</li>";
      if (!sub.empty()) o += "<ul>" + sub + "</ul>";
      o += "</li>\n";
    }
    o += "</ul>\n";
  }
  return o;
}

const char* k_css = R"(body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222}
h1{font-size:20px}h2{font-size:17px;margin-top:28px}
table.results{border-collapse:collapse;margin:8px 0}table.results th,table.results td{padding:3px 8px;border-bottom:1px solid #ddd;white-space:nowrap}
table.results th{border-bottom:2px solid #444;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.baseline td{background:#f4f4f4;font-weight:600}.up{color:#1a5fb4}.down{color:#c01c28}.same{color:#777}
.note{color:#555;font-size:12px}svg.plot{display:block;margin:8px 0}.axis{stroke:#444}
.lbl{font-size:11px;fill:#333}.val{font-size:10px;fill:#111}.ttl{font-size:12px;font-weight:600}
.v-match{color:#26a269}.v-within_noise{color:#1a5fb4}.v-drift{color:#c01c28;font-weight:600}.v-missing{color:#777}
.f-supported{color:#26a269;font-weight:600}.f-contradicted{color:#c01c28;font-weight:600}.f-undetermined,.f-not{color:#777}
figure{margin:0;display:inline-block;vertical-align:top})";

}  // namespace

std::string html_report(const json& table, const json& reproduction) {
  const std::string title = table.value("title", std::string()).empty() ? "qsweep results" : table["title"].get<std::string>();
  std::string o = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>" + esc(title) +
                  "</title>\n<style>" + k_css + "</style></head>\n<body>\n<h1>" + esc(title) + "</h1>\n";
  o += "<p class=\"note\">Hover a cell, point or bar for its provenance (metric, samples, stderr, --limit, artifact "
       "keys). Differences (▲ up / ▼ down) are to the baseline row of the same " +
       esc(table["layout"].value("group", std::string("model"))) + ".</p>\n";
  o += "<h2>Table</h2>\n" + table_html(table);
  o += "<h2>Score vs storage size</h2>\n" + scatter_svg(table);
  o += "<h2>Difference to the baseline (method × task)</h2>\n" + heatmap_svg(table);
  o += "<h2>Per task (± stderr)</h2>\n" + bars_svg(table);
  o += verdicts_html(reproduction);
  o += "</body></html>\n";
  return o;
}

}  // namespace qsweep::scoring::tables
