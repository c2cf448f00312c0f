#include "stages/quantize_stage.h"

#include <stdexcept>

#include "model/checkpoint/checkpoint.h"
#include "model/util/text_file.h"
#include "quant/calibrate.h"
#include "quant/quantize_model.h"
#include "stages/model_input.h"
#include "stages/quant_recipe.h"
#include "stages/node_gpu.h"

namespace qsweep {

namespace fs = std::filesystem;
using nlohmann::json;


std::string QuantizeStage::description() const {
  return "quantizes a Hugging Face checkpoint (input `checkpoint`; calibration artifact "
         "`calibration`) with rtn, gptq, awq, smoothquant or fp8, layer by layer and resumable, "
         "into a compressed-tensors, gptq or awq checkpoint that vLLM and the embedded engine load";
}

std::vector<ParamSpec> QuantizeStage::params() const { return quantize_param_specs(); }

Resources QuantizeStage::default_resources() const { return Resources::all_threads(); }

void QuantizeStage::resolve_defaults(json& p, const Resources& r) const {
  const json& m = p.contains("method") ? p["method"] : json();
  default_device(p, r, m.is_string() && method_uses_gpu(m.get<std::string>()));
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
      const json t = model::read_json_file(cdir / "tokens.json");
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

  std::unique_ptr<quant::GptqSolver> gpu;
  std::unique_ptr<quant::AwqSearcher> gpu_clip;
  if (rr.device == "cuda") {
    const NodeGpu g = require_node_gpu(ctx);
    gpu = g.plugin->make_gptq_solver(g.device);
    gpu_clip = g.plugin->make_awq_searcher(g.device);
    // The calibration forward passes on the same GPU.
    job.device = g.layer_device(job.recipe.gptq.tf32);
    job.recipe.gptq_solver = gpu.get();
    job.recipe.awq_searcher = gpu_clip.get();
    ctx.progress->log(std::string("quantize: ") +
                      (rr.method == "awq" ? "AWQ's searches and the calibration passes"
                                          : "GPTQ Hessians and solves, and the calibration passes,") +
                      " on " + gpu->device() + " (" + g.plugin->device_description() + ")");
  }
  const std::vector<std::string> kept =
      quant::prepare_format(job, src, rr.format, rr.skip_incompatible, rr.tool_fields);
  job.fingerprint = ctx.key;
  job.scratch = ctx.scratch_dir;
  job.progress = [&ctx](int done, int total) {
    ctx.progress->update(uint64_t(done), uint64_t(total), "layers");
  };
  job.log = [&ctx](const std::string& s) { ctx.progress->log(s); };
  job.cancelled = [&ctx] { return ctx.cancelled(); };
  ctx.progress->log("quantize: " + rr.summary.dump() + " of " + dir.string() +
                    (kept.empty() ? "" : "; " + std::to_string(kept.size()) +
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
  model::write_text_file(ctx.output_dir / "quantize.json", manifest.dump(2) + "\n");
  ctx.outputs = rr.summary;
  ctx.outputs["layers_quantized"] = res.quantized.size();
  ctx.outputs["layers_kept"] = res.kept.size();
}

}  // namespace qsweep
