#include "stages/command_stage.h"

#include "pipeline/resources.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <stdexcept>

#include "pipeline/interpolate.h"

namespace qsweep {

namespace {

using nlohmann::json;

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string r;
  for (size_t i = 0; i < v.size(); ++i) r += (i ? sep : "") + v[i];
  return r;
}

std::string format_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

// The run-time placeholders of one node (see command_stage.h for the list).
class RuntimeVars {
 public:
  explicit RuntimeVars(const StageContext& ctx) : ctx_(ctx) {}

  std::optional<std::string> lookup(const std::string& path) const {
    if (path == "output_dir") return std::filesystem::absolute(ctx_.output_dir).string();
    if (path == "node") return ctx_.node_id;
    if (path == "key") return ctx_.key;
    if (path == "threads") return std::to_string(ctx_.resources.threads);
    if (path == "qsweep") {  // this qsweep executable (not part of any key)
      std::error_code ec;
      const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
      return ec ? std::string("qsweep") : exe.string();
    }
    if (path.rfind("params.", 0) == 0) {
      const json* v = json_path(ctx_.params, path.substr(7));
      if (!v) return std::nullopt;
      return json_to_text(*v);
    }
    if (auto items = input_values(path)) return join(*items, " ");
    return std::nullopt;
  }

  /// For an argv element that is exactly "${inputs.NAME}" or
  /// "${inputs.NAME.key}" of a list input: one value per item.
  std::optional<std::vector<std::string>> expand_list(const std::string& element) const {
    std::vector<TemplatePart> parts;
    std::string err;
    if (!parse_template(element, &parts, &err) || parts.size() != 1 || !parts[0].is_placeholder ||
        parts[0].fallback)
      return std::nullopt;
    const ResolvedInput* in = find_input(parts[0].text, nullptr);
    if (!in || !in->is_list) return std::nullopt;
    return input_values(parts[0].text);
  }

  /// What to tell a user whose placeholder `path` was undefined.
  std::string hint(const std::string& path) const {
    if (path.rfind("inputs.", 0) == 0) {
      std::vector<std::string> names;
      for (const auto& [name, in] : ctx_.inputs) names.push_back(name);
      return "declared inputs: " + (names.empty() ? std::string("(none)") : join(names, ", "));
    }
    if (path.rfind("params.", 0) == 0) {
      std::vector<std::string> names;
      if (ctx_.params.is_object())
        for (const auto& [name, v] : ctx_.params.items()) names.push_back(name);
      return "params: " + join(names, ", ") + " (free-form values go under params.vars)";
    }
    return "known: output_dir, node, key, threads, inputs.NAME, inputs.NAME.key, params.PATH";
  }

 private:
  // "inputs.NAME" or "inputs.NAME.key" -> the input; *want_key tells which.
  const ResolvedInput* find_input(const std::string& path, bool* want_key) const {
    if (path.rfind("inputs.", 0) != 0) return nullptr;
    std::string rest = path.substr(7);
    size_t dot = rest.find('.');
    std::string name = rest.substr(0, dot);
    bool key = false;
    if (dot != std::string::npos) {
      if (rest.substr(dot + 1) != "key") return nullptr;
      key = true;
    }
    auto it = ctx_.inputs.find(name);
    if (it == ctx_.inputs.end()) return nullptr;
    if (want_key) *want_key = key;
    return &it->second;
  }

  std::optional<std::vector<std::string>> input_values(const std::string& path) const {
    bool want_key = false;
    const ResolvedInput* in = find_input(path, &want_key);
    if (!in || (!in->is_list && in->items.size() != 1)) return std::nullopt;
    std::vector<std::string> r;
    for (const auto& item : in->items)
      r.push_back(want_key ? item.key : std::filesystem::absolute(item.path).string());
    return r;
  }

  const StageContext& ctx_;
};

// Substitutes one template; `where` names it in errors ("argv[2]", "env.HOME").
std::string substitute(const std::string& where, const std::string& tmpl, const RuntimeVars& vars) {
  std::string undefined;
  Resolver resolve = [&](const std::string& path, const std::optional<std::string>&) {
    auto v = vars.lookup(path);
    if (!v) undefined = path;
    return v;
  };
  std::string out, err;
  if (!interpolate(tmpl, resolve, &out, &err)) {
    std::string msg = where + ": " + err;
    if (!undefined.empty()) msg += "; " + vars.hint(undefined);
    throw std::runtime_error(msg);
  }
  return out;
}

std::string signal_text(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  const char* descr = sigdescr_np(sig);
  std::string r = "signal " + std::to_string(sig);
  if (abbrev) r += std::string(" (SIG") + abbrev + (descr ? std::string(": ") + descr : "") + ")";
  return r;
}

std::string stderr_suffix(const std::string& tail) {
  if (tail.empty()) return " (stderr was empty)";
  std::string t = tail;
  if (!t.empty() && t.back() == '\n') t.pop_back();
  return "; last lines of stderr:\n" + t;
}

// Checks a param that must be a template string; "" when fine.
std::string check_template(const std::string& where, const json& v) {
  if (!v.is_string()) return where + ": expected a string, got " + v.dump();
  std::vector<TemplatePart> parts;
  std::string err;
  if (!parse_template(v.get<std::string>(), &parts, &err)) return where + ": " + err;
  return {};
}

}  // namespace

std::string CommandStage::description() const {
  return "runs an external program with a templated argv; caches what it writes into its output "
         "folder, with its stdout, stderr and exit code";
}

std::vector<ParamSpec> CommandStage::params() const {
  return {
      {"argv", ParamType::kStringList, true, nullptr,
       "program and arguments; ${inputs.NAME}, ${output_dir}, ${params.PATH} are substituted at "
       "run "
       "time"},
      {"env", ParamType::kStringMap, false, json::object(),
       "environment variables set for the program (values are templates, like argv)"},
      {"outputs", ParamType::kStringList, false, json::array(),
       "files or folders, relative to the output folder, that must exist after a zero exit"},
      {"timeout_s", ParamType::kNumber, false, 0,
       "wall-clock limit in seconds (SIGTERM, then SIGKILL 5 s later); 0 = none"},
      {"cwd", ParamType::kString, false, "",
       "working directory, relative to the experiment's directory; empty = that directory"},
      {"vars", ParamType::kAny, false, json::object(),
       "free-form values for the command, available as ${params.vars.NAME}"},
  };
}

std::vector<std::string> CommandStage::runtime_placeholders() const {
  return {"node", "key", "threads", "qsweep"};
}

std::string CommandStage::check_params(const json& p) const {
  const json& argv = p.contains("argv") ? p["argv"] : json();
  if (!argv.is_array() || argv.empty())
    return "params.argv: must be a non-empty list (the program and its arguments)";
  for (size_t i = 0; i < argv.size(); ++i)
    if (auto e = check_template("params.argv[" + std::to_string(i) + "]", argv[i]); !e.empty())
      return e;
  if (argv[0].get<std::string>().empty()) return "params.argv[0]: the program name is empty";

  if (p.contains("timeout_s")) {
    const json& t = p["timeout_s"];
    if (!t.is_number() || !std::isfinite(t.get<double>()) || t.get<double>() < 0)
      return "params.timeout_s: must be a number of seconds >= 0 (0 = no limit), got " + t.dump();
  }
  if (p.contains("outputs")) {
    const json& outs = p["outputs"];
    if (!outs.is_array()) return "params.outputs: expected a list of relative paths";
    for (size_t i = 0; i < outs.size(); ++i) {
      std::string where = "params.outputs[" + std::to_string(i) + "]";
      if (!outs[i].is_string() || outs[i].get<std::string>().empty())
        return where + ": expected a non-empty relative path, got " + outs[i].dump();
      std::filesystem::path o = outs[i].get<std::string>();
      if (o.is_absolute())
        return where + ": '" + o.string() + "' must be relative to the output folder";
      for (const auto& part : o)
        if (part == "..")
          return where + ": '" + o.string() + "' must stay inside the output folder (no '..')";
    }
  }
  if (p.contains("env")) {
    const json& env = p["env"];
    if (!env.is_object()) return "params.env: expected a map of NAME: value";
    for (const auto& [k, v] : env.items()) {
      if (k.empty() || k.find('=') != std::string::npos)
        return "params.env: invalid variable name '" + k + "' (empty or contains '=')";
      if (auto e = check_template("params.env." + k, v); !e.empty()) return e;
    }
  }
  if (p.contains("cwd"))
    if (auto e = check_template("params.cwd", p["cwd"]); !e.empty()) return e;
  return {};
}

bool parse_progress_line(const std::string& line, uint64_t* done, uint64_t* total,
                         std::string* unit) {
  static const std::string k_prefix = "qsweep-progress:";
  if (line.rfind(k_prefix, 0) != 0) return false;
  size_t i = k_prefix.size();
  auto skip_spaces = [&] {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
  };
  auto number = [&](uint64_t* out) {
    size_t start = i;
    uint64_t v = 0;
    while (i < line.size() && line[i] >= '0' && line[i] <= '9') {
      if (v > (UINT64_MAX - 9) / 10) return false;
      v = v * 10 + static_cast<uint64_t>(line[i++] - '0');
    }
    *out = v;
    return i > start;
  };
  skip_spaces();
  if (!number(done) || i >= line.size() || line[i] != '/') return false;
  ++i;
  if (!number(total)) return false;
  if (i < line.size() && line[i] != ' ' && line[i] != '\t') return false;
  skip_spaces();
  size_t end = line.size();
  while (end > i && (line[end - 1] == ' ' || line[end - 1] == '\t' || line[end - 1] == '\r')) --end;
  *unit = line.substr(i, end - i);
  return true;
}

void CommandStage::run(StageContext& ctx) const {
  const json& p = ctx.params;
  RuntimeVars vars(ctx);

  ProcessSpec spec;
  const json& argv_t = p.at("argv");
  for (size_t i = 0; i < argv_t.size(); ++i) {
    const std::string element = argv_t[i].get<std::string>();
    if (auto items = vars.expand_list(element)) {
      spec.argv.insert(spec.argv.end(), items->begin(), items->end());
    } else {
      spec.argv.push_back(substitute("argv[" + std::to_string(i) + "]", element, vars));
    }
  }
  if (spec.argv.empty() || spec.argv[0].empty())
    throw std::runtime_error("argv[0]: the program name is empty after substitution");
  const std::string& program = spec.argv[0];

  std::string cwd = substitute("cwd", p.value("cwd", std::string()), vars);
  spec.cwd = cwd.empty() ? ctx.experiment_dir
                         : (std::filesystem::path(cwd).is_relative() ? ctx.experiment_dir / cwd
                                                                     : std::filesystem::path(cwd));
  const std::string threads = std::to_string(ctx.resources.threads);
  spec.env_add = {{"QSWEEP_OUTPUT_DIR", std::filesystem::absolute(ctx.output_dir).string()},
                  {"QSWEEP_NODE", ctx.node_id},
                  {"QSWEEP_KEY", ctx.key},
                  {"QSWEEP_THREADS", threads},
                  {"OMP_NUM_THREADS", threads}};
  // The node's GPU slots (resources.gpu) and only those.
  if (ctx.resources.gpu > 0 && !ctx.gpu_ids.empty()) spec.env_add["CUDA_VISIBLE_DEVICES"] = cuda_visible_devices(ctx.gpu_ids);
  if (p.contains("env"))
    for (const auto& [k, v] : p["env"].items())
      spec.env_add[k] = substitute("env." + k, v.get<std::string>(), vars);
  spec.stdout_path = ctx.output_dir / "stdout.txt";
  spec.stderr_path = ctx.output_dir / "stderr.txt";
  spec.timeout_s = p.value("timeout_s", 0.0);

  ProgressSink* progress = ctx.progress;
  LineCallback on_line = [progress](const std::string& line) {
    if (!progress) return;
    uint64_t done = 0, total = 0;
    std::string unit;
    if (parse_progress_line(line, &done, &total, &unit)) {
      progress->update(done, total, unit);
    } else {
      progress->log(line);
    }
  };

  ProcessResult r;
  std::string err;
  if (!runner_(spec, ctx.cancel, on_line, &r, &err)) throw std::runtime_error(err);
  // A program that got SIGINT (first Ctrl-C) and still exits 0 with its
  // outputs has finished its work: keep it. Any other end after a cancel is
  // a cancellation (SIGKILL on the second Ctrl-C never exits 0).
  if (r.cancelled && !(r.exit_code == 0 && r.term_signal == 0)) throw std::runtime_error("cancelled");
  const std::string who = "'" + program + "'";
  if (r.timed_out)
    throw std::runtime_error(who + " timed out after " + format_seconds(spec.timeout_s) + " s" +
                             stderr_suffix(r.stderr_tail));
  if (r.term_signal != 0)
    throw std::runtime_error(who + " was killed by " + signal_text(r.term_signal) +
                             stderr_suffix(r.stderr_tail));
  if (r.exit_code == k_exit_retry)
    throw RetryableError(who + " exited with code 75 (EX_TEMPFAIL: asks for a retry)" +
                         stderr_suffix(r.stderr_tail));
  if (r.exit_code != 0)
    throw std::runtime_error(who + " exited with code " + std::to_string(r.exit_code) +
                             stderr_suffix(r.stderr_tail));
  if (p.contains("outputs")) {
    for (const auto& o : p["outputs"]) {
      std::filesystem::path full = ctx.output_dir / o.get<std::string>();
      std::error_code ec;
      if (!std::filesystem::exists(full, ec))
        throw std::runtime_error("declared output '" + o.get<std::string>() +
                                 "' was not written by " + program + " (expected " + full.string() +
                                 ")");
    }
  }
  // The templates, not the resolved argv: resolved paths name the cache's
  // location, and the artifact must not depend on it.
  ctx.outputs = {{"exit_code", 0}, {"seconds", r.seconds}, {"argv", argv_t}};
}

}  // namespace qsweep
