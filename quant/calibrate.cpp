#include "quant/calibrate.h"

#include <cstring>
#include <stdexcept>

#include "model/checkpoint/safetensors.h"
#include "quant/layer_stream.h"

namespace qsweep::quant {

namespace fs = std::filesystem;

ActStatsMap collect_act_stats(const model::Checkpoint& ckpt,
                              const std::vector<std::vector<int>>& seqs,
                              const std::function<void(int, int)>& progress,
                              const std::function<bool()>& cancelled,
                              const LayerDeviceFactory& device) {
  const model::ModelConfig& c = ckpt.config();
  LayerStream stream(ckpt);
  if (device) stream.set_device(device(c));
  Activations act = stream.embed(seqs);
  ActStatsMap out;
  for (int l = 0; l < c.n_layer; ++l) {
    if (cancelled && cancelled()) throw std::runtime_error("calibration cancelled");
    model::TransformerLayer L = stream.load_layer(l);
    std::map<LinearId, ActStatsAccumulator> acc;
    for (LinearId id : {LinearId::kQ, LinearId::kO, LinearId::kGate, LinearId::kDown})
      hook_stats(L, id, &acc.emplace(id, ActStatsAccumulator(linear_slot(L, id)->in_features())).first->second);
    stream.forward(L, act);
    for (auto& [id, a] : acc) out[linear_prefix(l, id)] = a.finish();
    if (progress) progress(l + 1, c.n_layer);
  }
  return out;
}

void save_act_stats(const fs::path& file, const ActStatsMap& stats) {
  std::map<std::string, model::TensorData> t;
  auto vec = [](const Eigen::VectorXf& v) {
    return model::make_f32_tensor({int64_t(v.size())}, v.data());
  };
  for (const auto& [p, s] : stats) {
    const std::string b = p + ".input.";
    t[b + "absmax"] = vec(s.absmax);
    t[b + "min"] = vec(s.min);
    t[b + "max"] = vec(s.max);
    t[b + "absmean"] = vec(s.absmean);
    const float ema[2] = {s.ema_min, s.ema_max};
    t[b + "ema"] = model::make_f32_tensor({2}, ema);
    const int64_t cnt[2] = {s.tokens, s.samples};
    model::TensorData ct{model::DType::kI64, {2}, std::vector<uint8_t>(16)};
    std::memcpy(ct.bytes.data(), cnt, 16);
    t[b + "count"] = std::move(ct);
  }
  model::write_safetensors(file, t, {{"format", "qsweep-act-stats-1"}});
}

ActStatsMap load_act_stats(const fs::path& file) {
  const model::SafetensorsFile sf(file);
  ActStatsMap out;
  auto get = [&](const std::string& name, model::DType dt, int64_t n) -> const model::TensorView& {
    const model::TensorView* v = sf.find(name);
    if (!v || v->dtype != dt || v->numel() != n || v->shape.size() != 1)
      throw std::runtime_error(file.string() + ": tensor '" + name + "' is missing or not " +
                               model::dtype_name(dt) + " [" + std::to_string(n) + "]");
    return *v;
  };
  for (const auto& [name, v] : sf.tensors()) {
    const std::string suffix = ".input.absmax";
    if (name.size() <= suffix.size() ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const std::string p = name.substr(0, name.size() - suffix.size());
    const int64_t k = v.numel();
    ActStats s;
    auto vec = [&](const std::string& n) {
      const model::TensorView& t = get(p + ".input." + n, model::DType::kF32, k);
      Eigen::VectorXf r(k);
      std::memcpy(r.data(), t.data, t.n_bytes);
      return r;
    };
    s.absmax = vec("absmax");
    s.min = vec("min");
    s.max = vec("max");
    s.absmean = vec("absmean");
    float ema[2];
    std::memcpy(ema, get(p + ".input.ema", model::DType::kF32, 2).data, 8);
    s.ema_min = ema[0];
    s.ema_max = ema[1];
    int64_t cnt[2];
    std::memcpy(cnt, get(p + ".input.count", model::DType::kI64, 2).data, 16);
    s.tokens = cnt[0];
    s.samples = cnt[1];
    out[p] = std::move(s);
  }
  if (out.empty()) throw std::runtime_error(file.string() + ": holds no activation statistics");
  return out;
}

}  // namespace qsweep::quant
