#include "stages/calibrate_stage.h"

#include <tbb/task_arena.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <stdexcept>

#include "model/checkpoint/checkpoint.h"
#include "model/tokenizer/chat_template.h"
#include "model/util/text_file.h"
#include "quant/calib_data.h"
#include "quant/calibrate.h"
#include "stages/node_gpu.h"
#include "stages/model_input.h"

namespace qsweep {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct PresetDefaults {
  const char* name;
  int n_samples, seq_len;
  uint64_t seed;
};
// The reference tools' defaults (SPECS.md A1.1, A2.5, A3.1).
constexpr PresetDefaults k_presets[] = {
    {"autoawq", 128, 512, 42},
    {"gptq", 128, 2048, 0},
    {"llmcompressor", 512, 2048, 42},
    {"smoothquant", 512, 512, 42},
};


}  // namespace

CalibSettings resolve_calib_settings(const json& p) {
  CalibSettings s;
  s.preset = p.value("preset", std::string("autoawq"));
  const PresetDefaults* d = nullptr;
  for (const auto& x : k_presets)
    if (s.preset == x.name) d = &x;
  if (!d)
    throw std::runtime_error("params.preset: unknown calibration preset '" + s.preset +
                             "' (autoawq, gptq, llmcompressor, smoothquant)");
  auto get = [&](const char* k, int64_t def) {
    return p.contains(k) && !p[k].is_null() ? p[k].get<int64_t>() : def;
  };
  s.n_samples = int(get("n_samples", d->n_samples));
  s.seq_len = int(get("seq_len", d->seq_len));
  s.seed = uint64_t(get("seed", int64_t(d->seed)));
  return s;
}

std::string CalibrateStage::description() const {
  return "builds a calibration token set from a dataset (input `dataset`) with a reference "
         "tool's sampling preset and collects the model's (input `checkpoint`) per-channel "
         "activation statistics on it";
}

std::vector<ParamSpec> CalibrateStage::params() const {
  return {
      {"preset", ParamType::kString, false, "autoawq",
       "sampling procedure and defaults: autoawq (128 docs <= 512 tokens, concatenated, "
       "512-token blocks), gptq (128 random 2048-token windows), llmcompressor (512 docs "
       "truncated to 2048), smoothquant (512 docs truncated to 512)"},
      {"n_samples", ParamType::kInt, false, nullptr, "documents / samples (default: the preset's)"},
      {"device", ParamType::kString, false, nullptr, device_param_doc("the statistics' forward passes")},
      {"seq_len", ParamType::kInt, false, nullptr, "tokens per sequence (default: the preset's)"},
      {"seed", ParamType::kInt, false, nullptr, "shuffle / pick seed (default: the preset's)"},
      {"text_field", ParamType::kString, false, "text", "JSON field holding a document's text"},
      {"file", ParamType::kString, false, "",
       "data file inside a dataset artifact (default: its only .jsonl/.json/.txt)"},
      {"chat_template", ParamType::kString, false, "auto",
       "for conversation documents (a list of {role, content}): auto (the model's "
       "tokenizer_config.json chat_template) or a family (llama2, llama3, llama3.1, gemma, "
       "gemma1, vicuna_v1.1, chatml)"},
  };
}

Resources CalibrateStage::default_resources() const { return Resources::all_threads(); }

void CalibrateStage::resolve_defaults(json& p, const Resources& r) const { default_device(p, r, true); }

std::string CalibrateStage::check_params(const json& p) const {
  if (std::string e = check_device_param(p); !e.empty()) return e;
  try {
    const CalibSettings s = resolve_calib_settings(p);
    quant::CalibConfig c;
    c.preset = s.preset;
    c.n_samples = s.n_samples;
    c.seq_len = s.seq_len;
    return quant::check_calib_config(c);
  } catch (const std::exception& e) {
    return e.what();
  }
}

void CalibrateStage::run(StageContext& ctx) const {
  if (std::string e = check_params(ctx.params); !e.empty()) throw std::runtime_error(e);
  const CalibSettings s = resolve_calib_settings(ctx.params);
  const fs::path model_dir =
      find_model_dir(single_input(ctx, "checkpoint", "a model folder artifact").path);
  const fs::path data = find_data_file(
      single_input(ctx, "dataset", "a calibration text file or dataset artifact").path,
      ctx.params.value("file", std::string()));
  const model::Checkpoint ckpt(model_dir);
  const int ctx_len = ckpt.config().max_position_embeddings;
  if (ctx_len > 0 && s.seq_len > ctx_len)
    throw std::runtime_error("params.seq_len: " + std::to_string(s.seq_len) +
                             " tokens exceed the model's context of " + std::to_string(ctx_len) +
                             " (max_position_embeddings of " + model_dir.string() +
                             "); set seq_len <= " + std::to_string(ctx_len));
  quant::CalibConfig cfg;
  cfg.preset = s.preset;
  cfg.n_samples = s.n_samples;
  cfg.seq_len = s.seq_len;
  cfg.seed = s.seed;
  cfg.text_field = ctx.params.value("text_field", std::string("text"));
  const auto tok = model::load_tokenizer(model_dir.string());
  const std::vector<quant::CalibDocument> docs = quant::read_documents(data, cfg.text_field);
  std::optional<model::ChatTemplate> chat;
  if (std::any_of(docs.begin(), docs.end(), [](const auto& d) { return d.is_chat(); })) {
    const std::string fam = ctx.params.value("chat_template", std::string("auto"));
    std::optional<model::ChatFamily> forced;
    if (fam != "auto") {
      forced = model::parse_chat_family(fam);
      if (!forced)
        throw std::runtime_error("params.chat_template: unknown family '" + fam + "' (auto, " +
                                 model::chat_family_names() + ")");
    }
    const fs::path cfg_path = model_dir / "tokenizer_config.json";
    if (forced && !fs::exists(cfg_path))
      chat.emplace(*forced, tok->bos_id() >= 0 ? tok->id_to_token(tok->bos_id()) : "",
                   tok->eos_id() >= 0 ? tok->id_to_token(tok->eos_id()) : "");
    else
      chat.emplace(model::ChatTemplate::from_config(cfg_path.string(), forced));
  }
  const quant::CalibSet set = quant::build_calibration(docs, *tok, cfg, chat ? &*chat : nullptr);
  ctx.progress->log("calibrate: " + std::to_string(set.seqs.size()) + " sequence(s), " +
                    std::to_string(set.tokens) + " tokens from " +
                    std::to_string(set.documents_used) + " of " + std::to_string(docs.size()) +
                    " documents (" + s.preset + ")");
  quant::LayerDeviceFactory device;
  if (device_param(ctx.params) == "cuda") {
    const NodeGpu g = require_node_gpu(ctx);
    device = g.layer_device(false);
    ctx.progress->log("calibrate: the forward passes on cuda:" + std::to_string(g.device) + " (" +
                      g.plugin->device_description() + ")");
  }
  tbb::task_arena arena(std::max(1, ctx.resources.threads));
  quant::ActStatsMap stats;
  arena.execute([&] {
    stats = quant::collect_act_stats(
        ckpt, set.seqs,
        [&](int done, int total) { ctx.progress->update(uint64_t(done), uint64_t(total), "layers"); },
        [&] { return ctx.cancelled(); }, device);
  });
  quant::save_act_stats(ctx.output_dir / "stats.safetensors", stats);
  model::write_text_file(ctx.output_dir / "tokens.json", json{{"seqs", set.seqs}}.dump() + "\n");
  const json summary = {{"format", 1},
                        {"preset", s.preset},
                        {"n_samples", s.n_samples},
                        {"seq_len", s.seq_len},
                        {"seed", s.seed},
                        {"text_field", cfg.text_field},
                        {"documents", docs.size()},
                        {"documents_used", set.documents_used},
                        {"chat_template", chat ? model::chat_family_name(chat->family()) : ""},
                        {"sequences", set.seqs.size()},
                        {"tokens", set.tokens},
                        {"sampling_rng", "std::mt19937_64 (not the reference tools' generators)"}};
  model::write_text_file(ctx.output_dir / "calibration.json", summary.dump(2) + "\n");
  ctx.outputs = {{"preset", s.preset}, {"sequences", set.seqs.size()}, {"tokens", set.tokens}};
}

}  // namespace qsweep
