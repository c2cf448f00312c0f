#pragma once
// The calibrate stage's computation: activation statistics of the fp model
// over a calibration set, collected one decoder layer at a time (inputs of
// q_proj (= k, v), o_proj, gate_proj (= up) and down_proj of every layer),
// and their on-disk form.
//
// stats.safetensors, per Linear prefix P (e.g. model.layers.0.self_attn.q_proj):
//   P.input.absmax, P.input.min, P.input.max, P.input.absmean   F32 [K]
//   P.input.ema                                                F32 [2]  (ema_min, ema_max)
//   P.input.count                                              I64 [2]  (tokens, samples)

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "model/checkpoint/checkpoint.h"
#include "quant/act_stats.h"
#include "quant/layer_device.h"

namespace qsweep::quant {

using ActStatsMap = std::map<std::string, ActStats>;  ///< by Linear prefix

/// Runs the fp model layer by layer over `seqs` (one observer batch per
/// sequence). progress(done layers, total); cancelled polled between layers.
/// `device` non-empty: the forward passes on that device
/// (LayerStream::set_device).
ActStatsMap collect_act_stats(const model::Checkpoint& ckpt,
                              const std::vector<std::vector<int>>& seqs,
                              const std::function<void(int, int)>& progress = {},
                              const std::function<bool()>& cancelled = {},
                              const LayerDeviceFactory& device = {});

void save_act_stats(const std::filesystem::path& file, const ActStatsMap& stats);
/// Throws naming the file and tensor on malformed content.
ActStatsMap load_act_stats(const std::filesystem::path& file);

}  // namespace qsweep::quant
