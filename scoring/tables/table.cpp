#include "scoring/tables/table.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <stdexcept>

namespace qsweep::scoring::tables {

using json = nlohmann::json;

namespace {

const std::string* axis_value(const std::vector<std::pair<std::string, std::string>>& axes,
                              const std::string& name) {
  for (const auto& [a, v] : axes)
    if (a == name) return &v;
  return nullptr;
}

// Bits of a torch dtype name ("bfloat16" -> 16); 0 when unknown.
int dtype_bits(const std::string& d) {
  if (d == "float32" || d == "fp32") return 32;
  if (d == "float16" || d == "bfloat16" || d == "fp16" || d == "bf16") return 16;
  if (d == "float64") return 64;
  return 0;
}

std::string dtype_label(const std::string& d) {
  if (d == "float32") return "FP32";
  if (d == "float16") return "FP16";
  if (d == "bfloat16") return "BF16";
  return "baseline";
}

// The model artifact a score answered with: the same node id, else the one
// whose axes are all among the row's (the most of them).
const ModelInput* find_model(const std::vector<ModelInput>& models, const ScoreInput& s) {
  for (const auto& m : models)
    if (!s.checkpoint_node.empty() && m.node == s.checkpoint_node) return &m;
  const ModelInput* best = nullptr;
  size_t best_n = 0;
  for (const auto& m : models) {
    bool subset = !m.axes.empty();
    for (const auto& [a, v] : m.axes) {
      const std::string* sv = axis_value(s.axes, a);
      if (!sv || *sv != v) subset = false;
    }
    if (subset && m.axes.size() > best_n) best = &m, best_n = m.axes.size();
  }
  return best;
}

json opt_num(const json& j, const char* k) {
  return j.is_object() && j.contains(k) && j[k].is_number() ? j[k] : json(nullptr);
}

}  // namespace

json Column::to_json() const {
  return {{"id", id}, {"task", task}, {"metric", metric}, {"convention", convention},
          {"higher_is_better", higher_is_better}, {"scale", scale}, {"decimals", decimals}};
}

json Table::to_json() const {
  json cols = json::array();
  for (const auto& c : columns) cols.push_back(c.to_json());
  json l = {{"title", layout.title},         {"rows", layout.rows},
            {"column", layout.column},       {"group", layout.group},
            {"baseline_label", layout.baseline_label}, {"convention", layout.convention},
            {"decimals", layout.decimals},   {"column_decimals", layout.column_decimals},
            {"percent", layout.percent},
            {"families", layout.families}};
  return {{"format", "qsweep-table"}, {"version", 1}, {"title", layout.title}, {"layout", l},
          {"columns", cols},          {"rows", rows}, {"notes", notes}};
}

std::string default_metric(const json& task_metrics) {
  static const char* const pref[] = {"acc_norm,none",
                                     "acc,none",
                                     "exact_match,strict-match",
                                     "exact_match,flexible-extract",
                                     "exact_match,none",
                                     "prompt_level_strict_acc,none",
                                     "mc2,none",
                                     "word_perplexity,none",
                                     "perplexity,none",
                                     "mean_kl"};
  if (!task_metrics.is_object() || task_metrics.empty()) return {};
  for (const char* p : pref)
    if (task_metrics.contains(p)) return p;
  return task_metrics.begin().key();
}

// Ratings (MT-Bench's 1-10 turn scores) are not fractions: never x 100.
static bool rating_metric(const std::string& m) { return m == "turn1" || m == "turn2" || m == "avg" || m == "unparsed"; }

bool lower_is_better(const std::string& metric) {
  if (metric == "unparsed") return true;
  for (const char* s : {"perplexity", "bits_per_byte", "kl", "bpb", "ppl"})
    if (metric.find(s) != std::string::npos) return true;
  return false;
}

std::string fmt_fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", std::clamp(decimals, 0, 12), v);
  std::string s = buf;
  if (s[0] == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);
  return s;
}

std::string fmt_bytes(double b) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1000 && u < 4) b /= 1000, ++u;
  char buf[48];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", b, units[u]);
  return buf;
}

std::string row_label(const json& row) {
  std::string s;
  for (const auto& k : row["key_order"]) {
    if (!s.empty()) s += " / ";
    s += row["keys"][k.get<std::string>()].get<std::string>();
  }
  return s;
}

Table build_table(const std::vector<ScoreInput>& scores, const std::vector<ModelInput>& models,
                  const Layout& layout) {
  Table t;
  t.layout = layout;
  if (layout.convention != "raw" && layout.convention != "normalized")
    throw std::runtime_error("params.convention: '" + layout.convention + "' is not raw or normalized");
  // Row axes: as configured, else every axis of the inputs but the column one.
  std::vector<std::string> row_axes = layout.rows;
  if (row_axes.empty())
    for (const auto& s : scores)
      for (const auto& [a, v] : s.axes)
        if (a != layout.column && std::find(row_axes.begin(), row_axes.end(), a) == row_axes.end())
          row_axes.push_back(a);
  t.layout.rows = row_axes;

  struct RowAcc {
    json row;
    const ModelInput* model = nullptr;
    std::string base_label;  // what a baseline row's method is called
  };
  std::vector<RowAcc> rows;
  std::map<std::string, size_t> row_index;
  std::map<std::string, size_t> col_index;
  std::set<long long> limits;
  bool fewshot_note = false;

  for (const auto& s : scores) {
    const std::string* cv = axis_value(s.axes, layout.column);
    const std::string col = cv ? *cv : s.task;
    const ModelInput* m = find_model(models, s);
    std::string base_label = layout.baseline_label;
    if (base_label.empty()) base_label = m ? dtype_label(m->dtype) : "baseline";
    json keys = json::object();
    std::string id;
    for (const auto& a : row_axes) {
      const std::string* v = axis_value(s.axes, a);
      std::string val = v ? *v : (s.baseline ? base_label : "-");
      keys[a] = val;
      id += (id.empty() ? "" : " / ") + val;
    }
    auto [it, fresh] = row_index.emplace(id, rows.size());
    if (fresh) {
      RowAcc r;
      r.model = m;
      r.base_label = base_label;
      const std::string* g = axis_value(s.axes, layout.group);
      r.row = {{"id", id},
               {"keys", keys},
               {"key_order", row_axes},
               {"group", g ? *g : std::string()},
               {"baseline", s.baseline},
               {"cells", json::object()}};
      rows.push_back(std::move(r));
    }
    RowAcc& r = rows[it->second];
    if (r.row["baseline"].get<bool>() != s.baseline)
      throw std::runtime_error(s.node + ": row '" + id +
                               "' has both baseline and non-baseline scores; give the row axes "
                               "(params.rows) that tell them apart");
    if (!r.model) r.model = m;
    const json& tm = s.summary.contains(s.task) ? s.summary[s.task] : json(nullptr);
    if (!tm.is_object())
      throw std::runtime_error(s.node + ": summary.json has no metrics for task '" + s.task + "'");
    // The metrics shown: params.metrics[col] ("m1|m2" gives one column each,
    // named col:m), else the default one.
    std::vector<std::string> shown;
    if (auto mi = layout.metrics.find(col); mi != layout.metrics.end()) {
      for (size_t p = 0;;) {
        const size_t e = mi->second.find('|', p);
        shown.push_back(mi->second.substr(p, e == std::string::npos ? std::string::npos : e - p));
        if (e == std::string::npos) break;
        p = e + 1;
      }
    } else {
      shown.push_back(default_metric(tm));
    }
    for (const std::string& metric : shown) {
      const std::string col_id = shown.size() > 1 ? col + ":" + metric.substr(0, metric.find(',')) : col;
      if (r.row["cells"].contains(col_id))
        throw std::runtime_error(s.node + ": a second score for row '" + id + "', column '" + col_id +
                                 "' (the first: " +
                                 r.row["cells"][col_id]["provenance"].value("score_node", std::string()) +
                                 "); set params.rows so that every score has its own cell");
      auto [ci, cfresh] = col_index.emplace(col_id, t.columns.size());
      if (cfresh) {
        Column c;
        c.id = col_id;
        c.task = s.task;
        c.metric = metric;
        c.convention = layout.convention;
        c.higher_is_better = !lower_is_better(c.metric);
        c.scale = layout.percent && c.higher_is_better && !rating_metric(c.metric) ? 100 : 1;
        auto di = layout.column_decimals.find(col_id);
        c.decimals = di != layout.column_decimals.end() ? di->second : layout.decimals;
        t.columns.push_back(c);
      }
      const Column& c = t.columns[ci->second];
      if (!tm.contains(c.metric)) {
        std::string have;
        for (const auto& [k, v] : tm.items()) have += (have.empty() ? "" : ", ") + k;
        throw std::runtime_error(s.node + ": task '" + s.task + "' has no metric '" + c.metric +
                                 "' (it has: " + have + "); set params.metrics." + col);
      }
      const json& mv = tm[c.metric];
      json cell = {{"task", s.task},
                   {"metric", c.metric},
                   {"convention", "raw"},
                   {"samples", mv.value("samples", json(nullptr))},
                   {"limit", s.limit ? json(*s.limit) : json(nullptr)},
                   {"metrics", tm},
                   {"normalized", s.normalized},
                   {"provenance", s.provenance},
                   {"flags", json::array()}};
      double value = mv.value("value", 0.0) * c.scale;
      json stderr_v = opt_num(mv, "stderr");
      if (stderr_v.is_number()) stderr_v = stderr_v.get<double>() * c.scale;
      if (c.convention == "normalized") {
        if (s.normalized.is_object() && s.normalized.contains("value")) {
          value = s.normalized["value"].get<double>();
          cell["convention"] = "normalized";
          stderr_v = nullptr;
        } else {
          cell["flags"].push_back("raw");  // no normalized score for this task
        }
      }
      cell["value"] = value;
      cell["stderr"] = stderr_v;
      if (s.limit) {
        cell["flags"].push_back("limited");
        limits.insert(*s.limit);
      }
      if (s.fewshot_from_eval_split) {
        cell["flags"].push_back("fewshot_from_eval_split");
        fewshot_note = true;
      }
      r.row["cells"][col_id] = std::move(cell);
    }
  }

  // Rows: grouped, the baseline first in its group, otherwise input order.
  std::vector<std::string> group_order;
  for (const auto& r : rows) {
    const std::string g = r.row["group"].get<std::string>();
    if (std::find(group_order.begin(), group_order.end(), g) == group_order.end())
      group_order.push_back(g);
  }
  std::stable_sort(rows.begin(), rows.end(), [&](const RowAcc& a, const RowAcc& b) {
    auto ga = std::find(group_order.begin(), group_order.end(), a.row["group"].get<std::string>());
    auto gb = std::find(group_order.begin(), group_order.end(), b.row["group"].get<std::string>());
    if (ga != gb) return ga < gb;
    return a.row["baseline"].get<bool>() && !b.row["baseline"].get<bool>();
  });

  std::map<std::string, std::vector<size_t>> baselines;  // group -> baseline rows
  for (size_t i = 0; i < rows.size(); ++i)
    if (rows[i].row["baseline"].get<bool>()) baselines[rows[i].row["group"].get<std::string>()].push_back(i);

  for (auto& r : rows) {
    json& row = r.row;
    const std::string group = row["group"].get<std::string>();
    const auto bit = baselines.find(group);
    const RowAcc* base = bit != baselines.end() && bit->second.size() == 1 ? &rows[bit->second[0]] : nullptr;
    // Method and storage.
    json method = r.model && r.model->method.is_object() ? r.model->method : json::object();
    const bool is_base = row["baseline"].get<bool>();
    const std::string dtype = r.model ? r.model->dtype : std::string();
    if (is_base) {
      const int b = dtype_bits(dtype);
      method = {{"name", r.base_label},
                {"dtype", dtype},
                {"w_bits", b ? json(b) : json(nullptr)},
                {"a_bits", b ? json(b) : json(nullptr)}};
    } else if (method.contains("w_bits")) {
      // a_bits "same as the model" resolves to the baseline's dtype bits.
      if (method["a_bits"].is_null() && base && base->model) {
        const int b = dtype_bits(base->model->dtype);
        if (b) method["a_bits"] = b;
      }
    }
    json storage = json::object();
    if (r.model && r.model->measured_bytes) storage["measured_bytes"] = *r.model->measured_bytes;
    std::optional<unsigned long long> params = r.model ? r.model->params : std::nullopt;
    if (!params && base && base->model) params = base->model->params;
    if (params) storage["params"] = *params;
    if (params && method.contains("w_bits") && method["w_bits"].is_number())
      storage["nominal_bytes"] = double(*params) * method["w_bits"].get<double>() / 8;
    row["method"] = method;
    row["storage"] = storage;
    if (r.model) row["model_node"] = r.model->node;
    row["baseline_row"] = !is_base && base ? json(base->row["id"]) : json(nullptr);
    // Diffs to the baseline and the average.
    double sum = 0, base_sum = 0;
    size_t n = 0, base_n = 0;
    size_t n_avg_cols = 0;
    // The average: of the score columns (higher is better, not 1-10 ratings).
    auto in_avg = [](const Column& c) { return c.higher_is_better && !rating_metric(c.metric); };
    for (const auto& c : t.columns) {
      n_avg_cols += in_avg(c);
      if (!row["cells"].contains(c.id)) continue;
      json& cell = row["cells"][c.id];
      const double v = cell["value"].get<double>();
      if (in_avg(c)) sum += v, ++n;
      cell["diff"] = nullptr;
      if (!is_base && base && base->row["cells"].contains(c.id)) {
        const json& bc = base->row["cells"][c.id];
        if (bc["convention"] == cell["convention"]) cell["diff"] = v - bc["value"].get<double>();
      }
    }
    if (base)
      for (const auto& c : t.columns)
        if (in_avg(c) && base->row["cells"].contains(c.id) && row["cells"].contains(c.id))
          base_sum += base->row["cells"][c.id]["value"].get<double>(), ++base_n;
    json avg = {{"value", n ? json(sum / double(n)) : json(nullptr)},
                {"n", n},
                {"complete", n == n_avg_cols},
                {"of", n_avg_cols},
                {"diff", nullptr}};
    if (!is_base && base && n && base_n == n) avg["diff"] = sum / double(n) - base_sum / double(base_n);
    row["average"] = avg;
  }
  for (const auto& [g, idx] : baselines)
    if (idx.size() > 1)
      t.notes.push_back("group '" + g + "' has " + std::to_string(idx.size()) +
                        " baseline rows; its differences are not shown");
  for (auto& r : rows) {
    const std::string g = r.row["group"].get<std::string>();
    if (!r.row["baseline"].get<bool>() && !baselines.count(g))
      t.notes.push_back("no baseline row for " + layout.group + " '" + g + "': no differences shown");
  }
  std::sort(t.notes.begin(), t.notes.end());
  t.notes.erase(std::unique(t.notes.begin(), t.notes.end()), t.notes.end());
  if (!limits.empty()) {
    std::string l;
    for (long long x : limits) l += (l.empty() ? "" : ", ") + std::to_string(x);
    t.notes.insert(t.notes.begin(), "† computed with --limit " + l +
                                        " (the first documents of each task only): not comparable "
                                        "with full-set results");
  }
  if (fewshot_note)
    t.notes.push_back("‡ few-shot exemplars taken from the evaluated split (the usual split is not "
                      "available offline; never the evaluated document itself)");
  for (auto& r : rows) t.rows.push_back(std::move(r.row));
  return t;
}

}  // namespace qsweep::scoring::tables
