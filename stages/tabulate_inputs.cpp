#include "stages/tabulate_inputs.h"

#include <stdexcept>

#include "model/checkpoint/safetensors.h"
#include "model/util/text_file.h"
#include "stages/model_input.h"

namespace qsweep {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

json read_json(const fs::path& p, const std::string& node) {
  try {
    return model::read_json_file(p);
  } catch (const std::exception& e) {
    throw std::runtime_error(node + ": " + e.what());
  }
}

// The cache keeps <objects>/<k[0:2]>/<key>/{manifest.json,out/}; an input's
// path is its out/ folder. Empty when the layout is not that (tests).
fs::path manifest_of(const fs::path& out_dir) {
  const fs::path m = out_dir.parent_path() / "manifest.json";
  std::error_code ec;
  return fs::is_regular_file(m, ec) ? m : fs::path();
}

fs::path sibling_out(const fs::path& out_dir, const std::string& key) {
  if (key.size() < 2) return {};
  const fs::path objects = out_dir.parent_path().parent_path().parent_path();
  const fs::path d = objects / key.substr(0, 2) / key / "out";
  std::error_code ec;
  return fs::is_directory(d, ec) ? d : fs::path();
}

// {name -> {key, node}} of a cache manifest's inputs.
json manifest_inputs(const fs::path& manifest) {
  json out = json::object();
  if (manifest.empty()) return out;
  try {
    const json m = model::read_json_file(manifest);
    for (const auto& in : m.value("inputs", json::array()))
      out[in.value("name", std::string())] = {{"key", in.value("key", std::string())},
                                              {"node", in.value("node", std::string())}};
  } catch (const std::exception&) {
    // provenance is best effort: a cell without it still has the score key
  }
  return out;
}

// quality.json of `qsweep model kl --json` (KL divergence and perplexity of
// a quantized model against its fp32 reference) as the task "kl_vs_fp32".
scoring::tables::ScoreInput read_quality_artifact(const InputArtifact& in, bool baseline) {
  scoring::tables::ScoreInput s;
  s.node = in.node;
  s.key = in.key;
  s.axes = in.axes;
  s.baseline = baseline;
  s.task = "kl_vs_fp32";
  const json q = read_json(in.path / "quality.json", in.node);
  for (const char* k : {"mean_kl", "ppl_quant", "ppl_ref", "positions"})
    if (!q.contains(k) || !q[k].is_number())
      throw std::runtime_error(in.node + ": quality.json has no number '" + k + "'");
  json m = json::object();
  for (const char* k : {"mean_kl", "p99_kl", "max_kl", "ppl_quant", "ppl_ref", "top1_agree"})
    if (q.contains(k) && q[k].is_number())
      m[k] = {{"value", q[k]}, {"stderr", nullptr}, {"samples", q["positions"]}};
  s.summary = {{s.task, m}};
  s.provenance = {{"quality_node", in.node}, {"quality_key", in.key}};
  return s;
}

}  // namespace

scoring::tables::ScoreInput read_score_artifact(const InputArtifact& in, bool baseline) {
  scoring::tables::ScoreInput s;
  s.node = in.node;
  s.key = in.key;
  s.axes = in.axes;
  s.baseline = baseline;
  std::error_code ec;
  if (!fs::is_regular_file(in.path / "summary.json", ec) && fs::is_regular_file(in.path / "quality.json", ec))
    return read_quality_artifact(in, baseline);
  if (!fs::is_regular_file(in.path / "summary.json", ec))
    throw std::runtime_error(in.node + ": no summary.json in " + in.path.string() +
                             " (tabulate takes score artifacts, or quality.json of `qsweep model kl`, in "
                             "`scores` and `baseline`)");
  s.summary = read_json(in.path / "summary.json", in.node);
  const json results = read_json(in.path / "results.json", in.node);
  const json q = results.value("qsweep", json::object());
  s.task = q.value("task", std::string());
  if (s.task.empty() && s.summary.size() == 1) s.task = s.summary.begin().key();
  if (q.contains("limit") && q["limit"].is_number_integer()) s.limit = q["limit"].get<long long>();
  s.fewshot_from_eval_split = q.value("fewshot_from_eval_split", false);
  s.checkpoint_node = results.value("config", json::object()).value("model", std::string());
  if (fs::is_regular_file(in.path / "normalized.json", ec))
    s.normalized = read_json(in.path / "normalized.json", in.node);
  s.provenance = {{"score_node", in.node}, {"score_key", in.key}};
  const json ins = manifest_inputs(manifest_of(in.path));
  if (ins.contains("infer")) {
    const std::string ik = ins["infer"]["key"].get<std::string>();
    s.provenance["infer_node"] = ins["infer"]["node"];
    s.provenance["infer_key"] = ik;
    const fs::path infer_out = sibling_out(in.path, ik);
    if (!infer_out.empty()) {
      const json ii = manifest_inputs(manifest_of(infer_out));
      if (ii.contains("checkpoint")) {
        s.provenance["checkpoint_node"] = ii["checkpoint"]["node"];
        s.provenance["checkpoint_key"] = ii["checkpoint"]["key"];
      }
    }
  }
  if (!s.checkpoint_node.empty() && !s.provenance.contains("checkpoint_node"))
    s.provenance["checkpoint_node"] = s.checkpoint_node;
  return s;
}

scoring::tables::ModelInput read_model_artifact(const InputArtifact& in) {
  scoring::tables::ModelInput m;
  m.node = in.node;
  m.key = in.key;
  m.axes = in.axes;
  const fs::path dir = find_model_dir(in.path);
  const json cfg = read_json(dir / "config.json", in.node);
  for (const char* k : {"torch_dtype", "dtype"})
    if (cfg.contains(k) && cfg[k].is_string()) m.dtype = cfg[k].get<std::string>();
  unsigned long long bytes = 0, params = 0;
  std::vector<fs::path> weights;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const std::string ext = it->path().extension().string();
    if (ext == ".safetensors" || ext == ".bin" || ext == ".pt" || ext == ".gguf") {
      bytes += it->file_size(ec);
      if (ext == ".safetensors") weights.push_back(it->path());
    }
  }
  if (bytes) m.measured_bytes = bytes;
  fs::path qj = in.path / "quantize.json";
  if (!fs::is_regular_file(qj, ec)) qj = dir / "quantize.json";
  const bool quantized = fs::is_regular_file(qj, ec) || cfg.contains("quantization_config");
  if (fs::is_regular_file(qj, ec)) {
    const json r = read_json(qj, in.node).value("recipe", json::object());
    const std::string method = r.value("method", std::string());
    const std::string acts = r.value("activations", std::string("none"));
    json w_bits = r.contains("bits") && r["bits"].is_number() ? r["bits"] : json(nullptr);
    if (method == "fp8") w_bits = 8;
    m.method = {{"name", method},
                {"preset", r.value("preset", std::string())},
                {"w_bits", w_bits},
                {"a_bits", acts == "none" || acts.empty() ? json(nullptr) : json(8)},
                {"activations", acts},
                {"group_size", r.value("group_size", json(nullptr))},
                {"sym", r.value("sym", json(nullptr))},
                {"format", r.value("format", json(nullptr))}};
  }
  if (!quantized && !weights.empty()) {
    // Every tensor's elements: the parameter count behind the nominal size.
    for (const auto& w : weights) {
      const model::SafetensorsFile f(w);
      for (const auto& [name, t] : f.tensors()) params += static_cast<unsigned long long>(t.numel());
    }
    m.params = params;
  }
  return m;
}

}  // namespace qsweep
