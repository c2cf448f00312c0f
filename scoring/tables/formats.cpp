#include "scoring/tables/formats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>


namespace qsweep::scoring::tables {

using json = nlohmann::json;

namespace {

bool has_flag(const json& cell, const char* f) {
  if (!cell.contains("flags")) return false;
  for (const auto& x : cell["flags"])
    if (x == f) return true;
  return false;
}

std::string num_or_empty(const json& v, int decimals) {
  return v.is_number() ? fmt_fixed(v.get<double>(), decimals) : std::string();
}

std::string full(const json& v) {
  if (!v.is_number()) return {};
  char b[40];
  std::snprintf(b, sizeof b, "%.10g", v.get<double>());
  return b;
}

std::string diff_text(const json& diff, int decimals, const char* up, const char* down) {
  if (!diff.is_number()) return {};
  const double d = diff.get<double>();
  const std::string mag = fmt_fixed(std::abs(d), decimals);
  if (mag == fmt_fixed(0, decimals)) return std::string(" ") + "±" + mag;
  return std::string(" ") + (d > 0 ? up : down) + mag;
}

std::string storage_text(const json& row, const char* field) {
  const json& s = row["storage"];
  return s.contains(field) && s[field].is_number() ? fmt_bytes(s[field].get<double>()) : "-";
}

// Display width in code points (the markers are one column each).
size_t width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

std::string tex_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '_': case '&': case '%': case '#': case '$': case '{': case '}':
        o += '\\';
        o += c;
        break;
      case '~': o += "\\textasciitilde{}"; break;
      case '^': o += "\\textasciicircum{}"; break;
      case '\\': o += "\\textbackslash{}"; break;
      case '-':  // "--" would typeset as an en dash
        o += !o.empty() && o.back() == '-' ? "{}-" : "-";
        break;
      default: o += c;
    }
  }
  return o;
}

std::vector<std::string> header(const Table& t) {
  std::vector<std::string> h = t.layout.rows;
  for (const char* x : {"W/A bits", "size (measured)", "size (nominal)"}) h.push_back(x);
  for (const auto& c : t.columns) h.push_back(c.id);
  h.push_back("average");
  return h;
}

std::vector<std::string> row_cells(const Table& t, const json& row) {
  std::vector<std::string> r;
  for (const auto& k : t.layout.rows) r.push_back(row["keys"].value(k, std::string()));
  r.push_back(bits_label(row));
  r.push_back(storage_text(row, "measured_bytes"));
  r.push_back(storage_text(row, "nominal_bytes"));
  for (const auto& c : t.columns) r.push_back(cell_text(row, c.id, c.decimals));
  const json& a = row["average"];
  std::string avg = num_or_empty(a["value"], t.layout.decimals);
  if (!avg.empty()) {
    avg += diff_text(a["diff"], t.layout.decimals, "▲", "▼");
    if (!a["complete"].get<bool>())
      avg += " (" + a["n"].dump() + "/" + a["of"].dump() + ")";
  }
  r.push_back(avg);
  return r;
}

}  // namespace

std::string flag_marks(const json& cell) {
  std::string m;
  if (has_flag(cell, "limited")) m += "†";
  if (has_flag(cell, "fewshot_from_eval_split")) m += "‡";
  if (has_flag(cell, "raw")) m += "*";
  return m;
}

std::string bits_label(const json& row) {
  const json& m = row["method"];
  if (!m.is_object() || !m.contains("w_bits") || !m["w_bits"].is_number()) return "-";
  std::string s = "W" + m["w_bits"].dump();
  s += "A" + (m.contains("a_bits") && m["a_bits"].is_number() ? m["a_bits"].dump() : std::string("?"));
  return s;
}

std::string cell_text(const json& row, const std::string& column, int decimals) {
  if (!row["cells"].contains(column)) return {};
  const json& c = row["cells"][column];
  return fmt_fixed(c["value"].get<double>(), decimals) + diff_text(c["diff"], decimals, "▲", "▼") +
         flag_marks(c);
}

std::string to_markdown(const Table& t) {
  std::vector<std::vector<std::string>> lines = {header(t)};
  for (const auto& row : t.rows) lines.push_back(row_cells(t, row));
  const size_t n = lines[0].size();
  std::vector<size_t> w(n, 3);
  for (const auto& l : lines)
    for (size_t i = 0; i < n; ++i) w[i] = std::max(w[i], width(l[i]));
  const size_t n_text = t.layout.rows.size() + 1;  // row keys and bits: left-aligned
  auto pad = [&](const std::string& s, size_t i) {
    const std::string sp(w[i] - width(s), ' ');
    return i < n_text ? s + sp : sp + s;
  };
  std::string out;
  if (!t.layout.title.empty()) out += "### " + t.layout.title + "\n\n";
  for (size_t li = 0; li < lines.size(); ++li) {
    out += "|";
    for (size_t i = 0; i < n; ++i) out += " " + pad(lines[li][i], i) + " |";
    out += "\n";
    if (li == 0) {
      out += "|";
      for (size_t i = 0; i < n; ++i)
        out += " " + (i < n_text ? std::string(w[i], '-') : std::string(w[i] - 1, '-') + ":") + " |";
      out += "\n";
    }
  }
  std::string metrics;
  for (const auto& c : t.columns)
    metrics += (metrics.empty() ? "" : ", ") + c.id + ": " + c.metric +
               (c.convention == "normalized" ? " (normalized)" : "") + (c.scale == 100 ? " x100" : "");
  out += "\nMetrics: " + metrics + ". ▲/▼: difference to the " + t.layout.group +
         "'s baseline row. Size: weight files on disk (measured) and parameters x weight bits "
         "(nominal).\n";
  for (const auto& n : t.notes) out += "\n" + n + "\n";
  return out;
}

std::string to_csv(const Table& t) {
  std::string out;
  std::vector<std::string> h = t.layout.rows;
  for (const char* x : {"baseline", "method", "preset", "w_bits", "a_bits", "storage_measured_bytes",
                        "storage_nominal_bytes", "params"})
    h.push_back(x);
  for (const auto& c : t.columns)
    for (const char* suf : {"", "_stderr", "_diff", "_samples", "_limit", "_flags", "_metric"})
      h.push_back(c.id + suf);
  for (const char* x : {"average", "average_diff", "average_n"}) h.push_back(x);
  for (size_t i = 0; i < h.size(); ++i) out += (i ? "," : "") + csv_field(h[i]);
  out += "\n";
  for (const auto& row : t.rows) {
    std::vector<std::string> f;
    for (const auto& k : t.layout.rows) f.push_back(row["keys"].value(k, std::string()));
    const json& m = row["method"];
    f.push_back(row["baseline"].get<bool>() ? "true" : "false");
    f.push_back(m.value("name", std::string()));
    f.push_back(m.value("preset", std::string()));
    f.push_back(full(m.value("w_bits", json(nullptr))));
    f.push_back(full(m.value("a_bits", json(nullptr))));
    const json& s = row["storage"];
    f.push_back(full(s.value("measured_bytes", json(nullptr))));
    f.push_back(full(s.value("nominal_bytes", json(nullptr))));
    f.push_back(full(s.value("params", json(nullptr))));
    for (const auto& c : t.columns) {
      if (!row["cells"].contains(c.id)) {
        for (int i = 0; i < 7; ++i) f.push_back("");
        continue;
      }
      const json& cell = row["cells"][c.id];
      f.push_back(full(cell["value"]));
      f.push_back(full(cell["stderr"]));
      f.push_back(full(cell["diff"]));
      f.push_back(full(cell["samples"]));
      f.push_back(full(cell["limit"]));
      std::string flags;
      for (const auto& x : cell["flags"]) flags += (flags.empty() ? "" : ";") + x.get<std::string>();
      f.push_back(flags);
      f.push_back(cell.value("metric", std::string()));
    }
    f.push_back(full(row["average"]["value"]));
    f.push_back(full(row["average"]["diff"]));
    f.push_back(full(row["average"]["n"]));
    for (size_t i = 0; i < f.size(); ++i) out += (i ? "," : "") + csv_field(f[i]);
    out += "\n";
  }
  return out;
}

std::string to_latex(const Table& t) {
  const size_t n_keys = t.layout.rows.size();
  std::string spec(n_keys + 1, 'l');
  spec += std::string(2 + t.columns.size() + 1, 'r');
  std::string out = "% Generated by qsweep (tabulate): \\usepackage{booktabs} in the preamble.\n";
  out += "\\begin{tabular}{" + spec + "}\n\\toprule\n";
  std::vector<std::string> h;
  for (const auto& k : t.layout.rows) h.push_back(tex_escape(k));
  for (const char* x : {"W/A", "Size", "Nominal"}) h.push_back(x);
  for (const auto& c : t.columns) h.push_back(tex_escape(c.id));
  h.push_back("Avg.");
  for (size_t i = 0; i < h.size(); ++i) out += (i ? " & " : "") + h[i];
  out += " \\\\\n\\midrule\n";
  std::string last_group;
  bool first = true;
  auto tex_cell = [&](const json& value, const json& diff, const std::string& marks, int d) {
    if (!value.is_number()) return std::string("--");
    std::string s = fmt_fixed(value.get<double>(), d);
    if (diff.is_number()) {
      const double x = diff.get<double>();
      const std::string mag = fmt_fixed(std::abs(x), d);
      const char* arrow = mag == fmt_fixed(0, d) ? "\\pm" : (x > 0 ? "\\uparrow" : "\\downarrow");
      s += "\\,{\\scriptsize$" + std::string(arrow) + "$" + mag + "}";
    }
    std::string sup;
    if (marks.find("†") != std::string::npos) sup += "\\dagger";
    if (marks.find("‡") != std::string::npos) sup += "\\ddagger";
    if (marks.find('*') != std::string::npos) sup += "*";
    if (!sup.empty()) s += "$^{" + sup + "}$";
    return s;
  };
  for (const auto& row : t.rows) {
    const std::string g = row["group"].get<std::string>();
    if (!first && g != last_group) out += "\\midrule\n";
    first = false;
    last_group = g;
    std::vector<std::string> f;
    for (const auto& k : t.layout.rows) f.push_back(tex_escape(row["keys"].value(k, std::string())));
    f.push_back(tex_escape(bits_label(row)));
    f.push_back(tex_escape(storage_text(row, "measured_bytes")));
    f.push_back(tex_escape(storage_text(row, "nominal_bytes")));
    for (const auto& c : t.columns) {
      if (!row["cells"].contains(c.id)) {
        f.push_back("--");
        continue;
      }
      const json& cell = row["cells"][c.id];
      f.push_back(tex_cell(cell["value"], cell["diff"], flag_marks(cell), c.decimals));
    }
    f.push_back(tex_cell(row["average"]["value"], row["average"]["diff"], "", t.layout.decimals));
    for (size_t i = 0; i < f.size(); ++i) out += (i ? " & " : "") + f[i];
    out += " \\\\\n";
  }
  out += "\\bottomrule\n";
  for (const auto& n : t.notes) {
    std::string s = n;
    for (auto [from, to] : {std::pair<std::string, std::string>{"†", "$^\\dagger$"},
                            {"‡", "$^\\ddagger$"}}) {
      for (size_t p = s.find(from); p != std::string::npos; p = s.find(from)) s.replace(p, from.size(), "\x01" + to);
    }
    std::string esc;  // escape everything but the marker replacements
    for (size_t i = 0; i < s.size();) {
      if (s[i] == '\x01') {  // "\x01$...$": copy up to the closing '$'
        const size_t e = s.find('$', i + 2);
        esc += s.substr(i + 1, e - i);
        i = e + 1;
      } else {
        size_t e = s.find('\x01', i);
        if (e == std::string::npos) e = s.size();
        esc += tex_escape(s.substr(i, e - i));
        i = e;
      }
    }
    out += "\\multicolumn{" + std::to_string(h.size()) + "}{l}{\\footnotesize " + esc + "} \\\\\n";
  }
  out += "\\end{tabular}\n";
  return out;
}

}  // namespace qsweep::scoring::tables
