#pragma once
// Quantizing a whole checkpoint layer by layer (streaming) into a sharded
// Hugging Face folder, resumable after a kill.
//
// Memory: one decoder layer in fp32, its Hessians or AWQ input features, and
// the calibration hidden states ([tokens, d] fp32, twice while a layer runs);
// never the whole model.
//
// Output folder:
//   model-00001-of-NNNNN.safetensors   every tensor outside the decoder layers
//                                      (embeddings, final norm, lm_head), bytes unchanged
//   model-000(l+2)-of-NNNNN...         decoder layer l: the encoded quantized
//                                      Linears and the layer's norms (rescaled
//                                      by AWQ/SmoothQuant, in the source dtype)
//   model.safetensors.index.json       weight_map, metadata.total_size
//   config.json                        the source's + quantization_config
//   the source's tokenizer / generation files
//
// Resume: `scratch` (a directory kept across attempts) receives each finished
// layer's shard and, when the method propagates activations, the hidden
// states entering the next layer; state.json names the recipe fingerprint and
// the number of finished layers. A restarted run with the same fingerprint
// continues after the last finished layer; another fingerprint starts over.

#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/checkpoint/checkpoint.h"
#include "model/checkpoint/safetensors.h"
#include "quant/layer_device.h"
#include "quant/formats/format.h"
#include "quant/layer_methods.h"

namespace qsweep::quant {

/// Encodes one quantized Linear into its checkpoint tensors (full names).
using EncodeFn = std::function<std::map<std::string, model::TensorData>(const QuantizedLinear&)>;

struct QuantizeModelJob {
  LayerRecipe recipe;
  std::vector<std::vector<int>> calibration;  ///< token ids (GPTQ, AWQ)
  StatsFn stats;                              ///< SmoothQuant, static FP8
  FinalizeFn finalize;                        ///< the target format's rounding
  EncodeFn encode;                            ///< the target format's tensors
  nlohmann::json quantization_config;         ///< config.json["quantization_config"]
  std::string fingerprint;                    ///< identifies recipe + inputs for resume
  std::filesystem::path scratch;              ///< empty: no resume
  /// Rows (tokens) per forward call over the calibration set. 512 keeps the
  /// forward pass's scratch (MLP [rows, n_ff] buffers, attention) small next
  /// to one layer's weights: the memory target (peak RSS < 3 x one
  /// layer + the activations) holds at 512 on a 1B-class model and not at
  /// 4096 (bench/RESULTS.md). Results depend on it only through float
  /// summation order.
  int max_batch_rows = 512;
  /// Non-empty: the calibration forward passes run on this device
  /// (LayerStream::set_device; the quantize stage's device: cuda).
  LayerDeviceFactory device;
  std::function<void(int done, int total)> progress;
  std::function<void(const std::string&)> log;
  std::function<bool()> cancelled;  ///< polled between layers
};

struct QuantizeModelResult {
  std::vector<std::string> quantized;  ///< Linear prefixes in order
  std::vector<std::string> kept;       ///< Linears kept in full precision
  int layers_resumed = 0;              ///< layers taken from scratch
  std::vector<std::string> notes;
  /// LayerResult's awq_ratios / gptq_errors of the layers run (not resumed ones).
  std::map<std::string, float> awq_ratios;
  std::map<std::string, double> gptq_errors;
};

/// The dtype of the source's Linear weights (F32, F16 or BF16): the "model
/// dtype" formats store scales in.
model::DType source_weight_dtype(const model::Checkpoint& src);

QuantizeModelResult quantize_model(const model::Checkpoint& src, const QuantizeModelJob& job,
                                   const std::filesystem::path& out_dir);

/// A QuantizedLinear with `r`'s settings and shape [out, in] (values unset,
/// scales 1, zeros mid-range): what format checks and configs look at.
QuantizedLinear recipe_shape(const LayerRecipe& r, const std::string& prefix, int out, int in);

/// Fills job.recipe.skip, job.finalize, job.encode and
/// job.quantization_config for writing `format`. Every decoder-layer Linear
/// the recipe or format cannot handle (group not dividing in_features,
/// format shape limits) is an error naming it, or with `skip_incompatible`
/// is kept in full precision and listed in the config's ignore list.
/// `tool_fields` go into the gptq config (damp_percent, ...). Returns the
/// kept Linears.
std::vector<std::string> prepare_format(QuantizeModelJob& job, const model::Checkpoint& src,
                                        CheckpointFormat format, bool skip_incompatible,
                                        const nlohmann::json& tool_fields);

/// Copies the files besides the weights and config that a model folder
/// carries (tokenizer, generation config, llama2.c tok*.bin).
void copy_model_side_files(const std::filesystem::path& src, const std::filesystem::path& dst);

}  // namespace qsweep::quant
