#include "stages/quantize_stage.h"

#include <fstream>
#include <stdexcept>

#include "model/checkpoint/checkpoint.h"
#include "quant/gptq_checkpoint.h"
#include "stages/model_input.h"

namespace qsweep {

namespace fs = std::filesystem;
using nlohmann::json;


std::string QuantizeStage::description() const {
  return "quantizes the weights of a Hugging Face checkpoint (input `checkpoint`) and writes a "
         "checkpoint that vLLM and the embedded engine load; so far method rtn, format gptq";
}

std::vector<ParamSpec> QuantizeStage::params() const {
  return {
      {"method", ParamType::kString, true, nullptr,
       "rtn (round-to-nearest); gptq, awq, smoothquant, fp8: not implemented yet (issue #4)"},
      {"bits", ParamType::kInt, true, nullptr, "weight bits: 4 or 8"},
      {"group_size", ParamType::kInt, false, 128,
       "input columns per scale: -1 (per output channel), 32, 64 or 128"},
      {"sym", ParamType::kBool, false, true,
       "symmetric (zero point fixed at 2^(bits-1)); false: asymmetric"},
      {"format", ParamType::kString, false, "gptq",
       "checkpoint format: gptq (AutoGPTQ v1, vLLM `gptq`/`gptq_marlin`)"},
  };
}

std::string QuantizeStage::check_params(const json& p) const {
  const std::string method = p.value("method", std::string());
  if (method == "gptq" || method == "awq" || method == "smoothquant" || method == "fp8")
    return "params.method: '" + method + "' is not implemented yet (issue #4)";
  if (method != "rtn")
    return "params.method: unknown method '" + method +
           "' (rtn; gptq, awq, smoothquant, fp8 are not implemented yet)";
  const std::string format = p.value("format", std::string("gptq"));
  if (format == "compressed-tensors" || format == "awq")
    return "params.format: '" + format + "' is not implemented yet (issue #4)";
  if (format != "gptq") return "params.format: unknown format '" + format + "' (gptq)";
  quant::RtnConfig c;
  c.bits = p.value("bits", 0);
  c.group_size = p.value("group_size", 128);
  if (std::string e = quant::check_rtn_config(c); !e.empty()) {
    return (c.bits != 4 && c.bits != 8 ? "params.bits: " : "params.group_size: ") + e;
  }
  return {};
}

void QuantizeStage::run(StageContext& ctx) const {
  if (std::string e = check_params(ctx.params); !e.empty()) throw std::runtime_error(e);
  auto it = ctx.inputs.find("checkpoint");
  if (it == ctx.inputs.end() || it->second.items.size() != 1)
    throw std::runtime_error(
        "quantize needs exactly one input `checkpoint` (a model folder artifact)");
  const fs::path root = it->second.items.front().path;
  const fs::path dir = find_model_dir(root);
  quant::RtnConfig cfg;
  cfg.bits = ctx.params.value("bits", 0);
  cfg.group_size = ctx.params.value("group_size", 128);
  cfg.sym = ctx.params.value("sym", true);
  const model::Checkpoint src(dir);
  if (ctx.progress)
    ctx.progress->log("quantize: rtn w" + std::to_string(cfg.bits) + " group " +
                      std::to_string(cfg.group_size) + (cfg.sym ? " sym" : " asym") + " of " +
                      dir.string());
  ProgressSink* progress = ctx.progress;
  const quant::GptqWriteResult r = quant::write_gptq_checkpoint(
      src, cfg, ctx.output_dir,
      [progress](int done, int total, const std::string&) {
        if (progress) progress->update(uint64_t(done), uint64_t(total), "layers");
      },
      [&ctx] { return ctx.cancelled(); });
  const std::string rel = dir == root ? "." : dir.lexically_relative(root).generic_string();
  const json manifest = {{"format", 1},
                         {"method", "rtn"},
                         {"checkpoint_format", "gptq"},
                         {"bits", cfg.bits},
                         {"group_size", cfg.group_size},
                         {"sym", cfg.sym},
                         {"source", rel},
                         {"quantized", r.quantized},
                         {"skipped", r.skipped}};
  {
    std::ofstream f(ctx.output_dir / "quantize.json", std::ios::trunc);
    f << manifest.dump(2) << "\n";
    if (!f.flush())
      throw std::runtime_error("cannot write " + (ctx.output_dir / "quantize.json").string());
  }
  ctx.outputs = {{"method", "rtn"},  {"format", "gptq"},
                 {"bits", cfg.bits}, {"group_size", cfg.group_size},
                 {"sym", cfg.sym},   {"layers_quantized", r.quantized.size()}};
}

}  // namespace qsweep
