#include "stages/quantize_stage.h"

#include <fstream>
#include <set>
#include <stdexcept>
#include <thread>

#include "model/checkpoint/checkpoint.h"
#include "quant/calibrate.h"
#include "quant/quantize_model.h"
#include "stages/model_input.h"
#include "stages/quant_recipe.h"

namespace qsweep {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A QuantizedLinear with the recipe's settings and the shape [out, in]
// (values unset): what the format checks and the config need.
quant::QuantizedLinear shape_only(const ResolvedRecipe& rr, const std::string& prefix, int out,
                                  int in) {
  const quant::LayerRecipe& r = rr.recipe;
  quant::QuantizedLinear q;
  q.prefix = prefix;
  const bool fp8 = r.method == quant::LayerRecipe::Method::kFp8;
  q.type = fp8 ? quant::WeightType::kFloat8 : quant::WeightType::kInt;
  q.bits = fp8 ? 8 : r.bits;
  q.strategy = fp8 ? r.fp8_weights
                   : (r.group_size == -1 ? quant::WeightStrategy::kChannel
                                         : quant::WeightStrategy::kGroup);
  q.sym = fp8 || r.sym;
  q.act_order = r.method == quant::LayerRecipe::Method::kGptq && r.gptq.act_order &&
                !r.gptq.static_groups && r.group_size != -1;
  q.weight = quant::QuantizedWeight::sized(out, in, q.bits, fp8 ? -1 : r.group_size);
  q.weight.scale.setOnes();
  q.weight.zero.setConstant(fp8 ? 0.0f : float(1 << (q.bits - 1)));
  q.weight.codes.setZero();
  q.weight.q.setZero();
  q.act = r.act;
  return q;
}

json read_json(const fs::path& p) {
  std::ifstream f(p);
  if (!f) throw std::runtime_error("cannot read " + p.string());
  try {
    return json::parse(f);
  } catch (const std::exception& e) {
    throw std::runtime_error(p.string() + ": not valid JSON: " + e.what());
  }
}

}  // namespace

std::string QuantizeStage::description() const {
  return "quantizes a Hugging Face checkpoint (input `checkpoint`; calibration artifact "
         "`calibration`) with rtn, gptq, awq, smoothquant or fp8, layer by layer and resumable, "
         "into a compressed-tensors, gptq or awq checkpoint that vLLM and the embedded engine load";
}

std::vector<ParamSpec> QuantizeStage::params() const { return quantize_param_specs(); }

Resources QuantizeStage::default_resources() const {
  Resources r;
  r.threads = int(std::max(1u, std::thread::hardware_concurrency()));
  return r;
}

std::string QuantizeStage::check_params(const json& p) const {
  try {
    resolve_recipe(p);
    return {};
  } catch (const std::exception& e) {
    return e.what();
  }
}

void QuantizeStage::run(StageContext& ctx) const {
  const ResolvedRecipe rr = resolve_recipe(ctx.params);
  const fs::path root = single_input(ctx, "checkpoint", "a model folder artifact").path;
  const fs::path dir = find_model_dir(root);
  const model::Checkpoint src(dir);
  const model::ModelConfig& c = src.config();
  const model::DType mdtype = quant::source_weight_dtype(src);

  quant::QuantizeModelJob job;
  job.recipe = rr.recipe;
  // Calibration artifact: tokens (GPTQ, AWQ) and statistics (SmoothQuant, static FP8).
  const bool need_calib = job.recipe.needs_activations() || job.recipe.needs_stats();
  auto cal = ctx.inputs.find("calibration");
  const bool has_calib = cal != ctx.inputs.end() && cal->second.items.size() == 1;
  if (need_calib && !has_calib)
    throw std::runtime_error(ctx.node_id + ": method " + rr.method +
                             " needs a `calibration` input (a calibrate node of the same model)");
  std::shared_ptr<quant::ActStatsMap> stats;
  if (has_calib) {
    const fs::path cdir = cal->second.items.front().path;
    if (job.recipe.needs_activations()) {
      const json t = read_json(cdir / "tokens.json");
      if (!t.contains("seqs") || !t["seqs"].is_array())
        throw std::runtime_error((cdir / "tokens.json").string() + ": missing array 'seqs'");
      job.calibration = t["seqs"].get<std::vector<std::vector<int>>>();
      const int ctx_len = c.max_position_embeddings;
      for (const auto& s : job.calibration)
        if (ctx_len > 0 && int(s.size()) > ctx_len)
          throw std::runtime_error("calibration sequences of " + std::to_string(s.size()) +
                                   " tokens exceed the context of " + dir.string() + " (" +
                                   std::to_string(ctx_len) + "); calibrate with a smaller seq_len");
    }
    if (job.recipe.needs_stats()) {
      stats = std::make_shared<quant::ActStatsMap>(
          quant::load_act_stats(cdir / "stats.safetensors"));
      job.stats = [stats, cdir](int l, quant::LinearId id) {
        const std::string p = quant::linear_prefix(l, quant::stats_source(id));
        auto it = stats->find(p);
        if (it == stats->end())
          throw std::runtime_error((cdir / "stats.safetensors").string() +
                                   ": no statistics for '" + p +
                                   "' (calibrated on another model?)");
        return it->second;
      };
    }
  }

  // Which Linears the method and format can store; the others fail the node
  // or, with skip_incompatible, stay in full precision.
  std::set<std::string> skip;
  std::vector<std::string> ignore;
  for (int l = 0; l < c.n_layer; ++l)
    for (quant::LinearId id : quant::kAllLinears) {
      const std::string p = quant::linear_prefix(l, id);
      const model::TensorView& v = src.view(p + ".weight");
      if (v.shape.size() != 2)
        throw std::runtime_error("model folder " + dir.string() + ": tensor '" + p +
                                 ".weight' is not 2-D");
      const int out = int(v.shape[0]), in = int(v.shape[1]);
      std::string why = quant::check_format_supports(rr.format, shape_only(rr, p, out, in));
      const int g = rr.recipe.group_size;
      if (why.empty() && rr.recipe.method != quant::LayerRecipe::Method::kFp8 && g != -1 &&
          in % g != 0)
        why = "layer " + p + ": group_size " + std::to_string(g) + " does not divide its " +
              std::to_string(in) + " input features";
      if (why.empty()) continue;
      if (!rr.skip_incompatible)
        throw std::runtime_error(why + "; use a group size / bits / format that fits, or set "
                                       "skip_incompatible: true to keep such Linears in full "
                                       "precision");
      skip.insert(p);
      ignore.push_back(p);
    }
  job.recipe.skip = [skip](int l, quant::LinearId id) {
    return skip.count(quant::linear_prefix(l, id)) > 0;
  };
  const quant::CheckpointFormat fmt = rr.format;
  job.finalize = [fmt, mdtype](quant::QuantizedLinear* q) {
    if (std::string e = quant::check_format_supports(fmt, *q); !e.empty())
      throw std::runtime_error(e);
    quant::finalize_for_format(fmt, mdtype, q);
  };
  job.encode = [fmt, mdtype](const quant::QuantizedLinear& q) {
    return quant::encode_linear(fmt, mdtype, q);
  };
  {
    const std::string p0 = quant::linear_prefix(0, quant::LinearId::kQ);
    const model::TensorView& v = src.view(p0 + ".weight");
    job.quantization_config = quant::quantization_config(
        fmt, shape_only(rr, p0, int(v.shape[0]), int(v.shape[1])), ignore,
        fmt == quant::CheckpointFormat::kGptq ? rr.tool_fields : json::object());
  }
  job.fingerprint = ctx.key;
  job.scratch = ctx.scratch_dir;
  job.progress = [&ctx](int done, int total) {
    ctx.progress->update(uint64_t(done), uint64_t(total), "layers");
  };
  job.log = [&ctx](const std::string& s) { ctx.progress->log(s); };
  job.cancelled = [&ctx] { return ctx.cancelled(); };
  ctx.progress->log("quantize: " + rr.summary.dump() + " of " + dir.string() +
                    (skip.empty() ? "" : "; " + std::to_string(skip.size()) +
                                             " Linear(s) kept in full precision"));
  const quant::QuantizeModelResult res = quant::quantize_model(src, job, ctx.output_dir);

  const std::string rel = dir == root ? "." : dir.lexically_relative(root).generic_string();
  const json manifest = {{"format", 1},
                         {"recipe", rr.summary},
                         {"source", rel},
                         {"quantized", res.quantized},
                         {"kept", res.kept},
                         {"layers_resumed", res.layers_resumed},
                         {"notes", res.notes}};
  std::ofstream f(ctx.output_dir / "quantize.json", std::ios::trunc);
  f << manifest.dump(2) << "\n";
  if (!f.flush())
    throw std::runtime_error("cannot write " + (ctx.output_dir / "quantize.json").string());
  ctx.outputs = rr.summary;
  ctx.outputs["layers_quantized"] = res.quantized.size();
  ctx.outputs["layers_kept"] = res.kept.size();
}

}  // namespace qsweep
