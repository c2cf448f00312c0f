#include "stages/quant_recipe.h"

#include <stdexcept>

#include "stages/node_gpu.h"

namespace qsweep {

using nlohmann::json;
using Method = quant::LayerRecipe::Method;

std::vector<ParamSpec> quantize_param_specs() {
  return {
      {"method", ParamType::kString, true, nullptr, "rtn | gptq | awq | smoothquant | fp8"},
      {"preset", ParamType::kString, false, "",
       "reference tool defaults: gptq autogptq|transformers|llmcompressor, awq autoawq, "
       "smoothquant original|llmcompressor, fp8 FP8|FP8_DYNAMIC (default: the first)"},
      {"bits", ParamType::kInt, false, nullptr, "weight bits 4 | 8 (default 4; smoothquant 8)"},
      {"group_size", ParamType::kInt, false, nullptr,
       "input columns per scale: -1 (per channel), 32, 64, 128 (default 128; 8-bit W8A8 -1)"},
      {"sym", ParamType::kBool, false, nullptr,
       "symmetric integer weights (default true; awq false: zero point)"},
      {"activations", ParamType::kString, false, nullptr,
       "run-time input quantization: none | int8 (per-token dynamic) | fp8-static | "
       "fp8-dynamic (default: none; smoothquant int8; fp8 by preset)"},
      {"act_order", ParamType::kBool, false, false, "gptq: desc_act (columns by descending H diagonal)"},
      {"static_groups", ParamType::kBool, false, nullptr,
       "gptq: group scales from the original weights (default: preset llmcompressor true)"},
      {"damp", ParamType::kNumber, false, nullptr,
       "gptq: relative damping of the Hessian (default: preset; autogptq 0.01, transformers 0.1)"},
      {"true_sequential", ParamType::kBool, false, true,
       "gptq: quantize q/k/v, o, up/gate, down in turn, each with Hessians from the partly "
       "quantized layer"},
      {"duo_scaling", ParamType::kBool, false, true, "awq: scales from activations and weights"},
      {"n_grid", ParamType::kInt, false, 20, "awq: grid points of the scale and clip searches"},
      {"clip", ParamType::kBool, false, true, "awq: clip search (not on q/k)"},
      {"alpha", ParamType::kNumber, false, nullptr, "smoothquant: migration strength (default 0.5)"},
      {"smoothquant_alpha", ParamType::kNumber, false, nullptr,
       "rtn/gptq: smooth with SmoothQuant (llm-compressor formula) at this alpha first"},
      {"format", ParamType::kString, false, "compressed-tensors",
       "checkpoint format: compressed-tensors | gptq (AutoGPTQ v1) | awq (AutoAWQ GEMM)"},
      {"skip_incompatible", ParamType::kBool, false, false,
       "keep Linears whose shape the method/format cannot handle in full precision (listed "
       "in the format's ignore list) instead of failing"},
      {"tf32", ParamType::kBool, false, false,
       "device cuda: allow TF32 tensor cores in GPTQ's Hessian and GEMMs (the references keep fp32)"},
      {"device", ParamType::kString, false, nullptr,
       device_param_doc("the calibration forward passes, GPTQ's Hessians and solves and AWQ's searches (gptq, awq; "
                        "rtn, fp8 and smoothquant have no passes and stay on the CPU)")},
  };
}

namespace {

template <class T>
T get_or(const json& p, const char* k, T def) {
  return p.contains(k) && !p[k].is_null() ? p[k].get<T>() : def;
}

[[noreturn]] void bad(const std::string& field, const std::string& msg) {
  throw std::runtime_error("params." + field + ": " + msg);
}

}  // namespace

bool method_uses_gpu(const std::string& method) { return method == "gptq" || method == "awq"; }

ResolvedRecipe resolve_recipe(const json& p) {
  ResolvedRecipe rr;
  quant::LayerRecipe& r = rr.recipe;
  rr.method = get_or<std::string>(p, "method", "");
  rr.preset = get_or<std::string>(p, "preset", "");
  if (std::string e = check_device_param(p); !e.empty()) throw std::invalid_argument(e);
  rr.device = device_param(p);
  if (get_or<bool>(p, "tf32", false) && rr.device != "cuda")
    throw std::invalid_argument("params.tf32 applies to device: cuda only (the CPU path is always fp32)");
  r.gptq.tf32 = get_or<bool>(p, "tf32", false);
  if (rr.device == "cuda" && !method_uses_gpu(rr.method))
    throw std::invalid_argument(
        "params.device: cuda runs the calibration passes of gptq and awq on the GPU; " + rr.method +
        " has none" +
        (rr.method == "smoothquant" ? " (its statistics come from the calibrate stage, which takes device: cuda)"
                                    : "") +
        ": drop device or set it to cpu");
  const std::string& m = rr.method;
  auto preset_is = [&](std::initializer_list<const char*> ok) {
    std::string list;
    for (const char* o : ok) {
      if (rr.preset == o) return;
      list += std::string(list.empty() ? "" : ", ") + o;
    }
    bad("preset", "'" + rr.preset + "' is not a preset of method " + m + " (" + list + ")");
  };
  std::string act_default = "none";
  int bits_default = 4, group_default = 128;
  bool sym_default = true;
  if (m == "rtn") {
    r.method = Method::kRtn;
    if (!rr.preset.empty()) bad("preset", "method rtn has no presets");
  } else if (m == "gptq") {
    r.method = Method::kGptq;
    if (rr.preset.empty()) rr.preset = "autogptq";
    preset_is({"autogptq", "transformers", "llmcompressor"});
    r.gptq.percdamp = rr.preset == "transformers" ? 0.1f : 0.01f;
    r.gptq.static_groups = rr.preset == "llmcompressor";
  } else if (m == "awq") {
    r.method = Method::kAwq;
    if (rr.preset.empty()) rr.preset = "autoawq";
    preset_is({"autoawq"});
    sym_default = false;
  } else if (m == "smoothquant") {
    r.method = Method::kRtn;
    if (rr.preset.empty()) rr.preset = "original";
    preset_is({"original", "llmcompressor"});
    r.smooth = true;
    r.smooth_llmcompressor = rr.preset == "llmcompressor";
    r.int8_absmax127 = rr.preset == "original";
    bits_default = 8;
    group_default = -1;
    act_default = "int8";
  } else if (m == "fp8") {
    r.method = Method::kFp8;
    if (rr.preset.empty()) rr.preset = "FP8";
    preset_is({"FP8", "FP8_DYNAMIC"});
    bits_default = 8;
    group_default = -1;
    act_default = rr.preset == "FP8" ? "fp8-static" : "fp8-dynamic";
    r.fp8_weights = rr.preset == "FP8" ? quant::WeightStrategy::kTensor
                                       : quant::WeightStrategy::kChannel;
  } else {
    bad("method", "unknown method '" + m + "' (rtn, gptq, awq, smoothquant, fp8)");
  }
  const std::string acts = get_or<std::string>(p, "activations", act_default);
  if (acts == "none") r.act = quant::ActQuant::kNone;
  else if (acts == "int8") r.act = quant::ActQuant::kInt8TokenDynamic;
  else if (acts == "fp8-static") r.act = quant::ActQuant::kFp8TensorStatic;
  else if (acts == "fp8-dynamic") r.act = quant::ActQuant::kFp8TokenDynamic;
  else bad("activations", "unknown scheme '" + acts + "' (none, int8, fp8-static, fp8-dynamic)");
  if (acts == "int8") {
    bits_default = 8;
    group_default = -1;
  }
  r.bits = get_or<int>(p, "bits", bits_default);
  r.group_size = get_or<int>(p, "group_size", group_default);
  r.sym = get_or<bool>(p, "sym", sym_default);
  if (r.method == Method::kFp8) {
    if (r.bits != 8) bad("bits", "fp8 weights are 8 bits");
    if (acts == "int8") bad("activations", "fp8 weights take none, fp8-static or fp8-dynamic");
  } else {
    if (r.bits != 4 && r.bits != 8) bad("bits", "must be 4 or 8 (got " + std::to_string(r.bits) + ")");
    if (r.group_size != -1 && r.group_size != 32 && r.group_size != 64 && r.group_size != 128)
      bad("group_size", "must be -1, 32, 64 or 128 (got " + std::to_string(r.group_size) + ")");
    if (acts == "fp8-static" || acts == "fp8-dynamic")
      bad("activations", "fp8 activations need method fp8");
    if (acts == "int8" && (r.bits != 8 || r.group_size != -1 || !r.sym))
      bad("activations", "int8 activations (W8A8) need 8-bit symmetric per-channel weights "
                         "(bits 8, group_size -1, sym true)");
  }
  if (r.method == Method::kAwq && r.sym)
    bad("sym", "awq quantizes with a zero point (AutoAWQ zero_point=True); use sym: false");
  r.gptq.act_order = get_or<bool>(p, "act_order", false);
  if (r.gptq.act_order && r.method != Method::kGptq) bad("act_order", "applies to method gptq only");
  r.gptq.static_groups = get_or<bool>(p, "static_groups", r.gptq.static_groups);
  r.gptq.percdamp = get_or<float>(p, "damp", r.gptq.percdamp);
  if (!(r.gptq.percdamp > 0)) bad("damp", "must be > 0");
  r.true_sequential = get_or<bool>(p, "true_sequential", true);
  r.awq_duo_scaling = get_or<bool>(p, "duo_scaling", true);
  r.awq_n_grid = get_or<int>(p, "n_grid", 20);
  if (r.awq_n_grid < 1) bad("n_grid", "must be >= 1");
  r.awq_clip = get_or<bool>(p, "clip", true);
  if (m == "smoothquant") {
    r.smooth_alpha = get_or<float>(p, "alpha", 0.5f);
  } else if (p.contains("alpha") && !p["alpha"].is_null()) {
    bad("alpha", "applies to method smoothquant (use smoothquant_alpha to chain SmoothQuant)");
  }
  if (p.contains("smoothquant_alpha") && !p["smoothquant_alpha"].is_null()) {
    if (r.method != Method::kRtn && r.method != Method::kGptq)
      bad("smoothquant_alpha", "chains SmoothQuant before rtn or gptq only");
    if (m == "smoothquant") bad("smoothquant_alpha", "use alpha with method smoothquant");
    r.smooth = true;
    r.smooth_llmcompressor = true;
    r.smooth_alpha = p["smoothquant_alpha"].get<float>();
  }
  if (r.smooth && !(r.smooth_alpha >= 0 && r.smooth_alpha <= 1))
    bad(m == "smoothquant" ? "alpha" : "smoothquant_alpha", "must be within [0, 1]");
  try {
    rr.format =
        quant::parse_checkpoint_format(get_or<std::string>(p, "format", "compressed-tensors"));
  } catch (const std::exception& e) {
    bad("format", e.what());
  }
  rr.skip_incompatible = get_or<bool>(p, "skip_incompatible", false);
  rr.summary = {{"method", m},
                {"preset", rr.preset},
                {"bits", r.bits},
                {"group_size", r.group_size},
                {"sym", r.sym},
                {"activations", acts},
                {"format", quant::checkpoint_format_name(rr.format)}};
  if (r.method == Method::kGptq) {
    rr.summary["act_order"] = r.gptq.act_order;
    rr.summary["static_groups"] = r.gptq.static_groups;
    rr.summary["damp"] = r.gptq.percdamp;
    rr.summary["true_sequential"] = r.true_sequential;
    rr.tool_fields = {{"damp_percent", r.gptq.percdamp},
                      {"static_groups", r.gptq.static_groups},
                      {"true_sequential", r.true_sequential}};
  }
  if (r.method == Method::kAwq) {
    rr.summary["duo_scaling"] = r.awq_duo_scaling;
    rr.summary["n_grid"] = r.awq_n_grid;
    rr.summary["clip"] = r.awq_clip;
  }
  if (r.method == Method::kFp8)
    rr.summary["fp8_weights"] = quant::weight_strategy_name(r.fp8_weights);
  if (r.smooth) {
    rr.summary["smoothquant_alpha"] = r.smooth_alpha;
    rr.summary["smoothquant_formula"] = r.smooth_llmcompressor ? "llmcompressor" : "original";
  }
  if (rr.tool_fields.is_null()) rr.tool_fields = json::object();
  return rr;
}

}  // namespace qsweep
