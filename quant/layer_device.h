#pragma once
// Where LayerStream's calibration passes run (quant/layer_stream.h): the CPU
// engine (make_cpu_layer_device) or a GPU (quant/cuda/layer_cuda.h, through
// the CUDA plugin), behind one interface so that the quantizers and the
// calibration statistics are written once.
//
// A pass runs a decoder layer, or its attention or MLP block, over the rows
// of a calibration set batch by batch, calling the hooks of hooked Linears
// with each batch's host inputs (per Linear, the batches in order). AWQ's
// block scale searches (SPECS.md A2.2, module2inspect self_attn and mlp) run
// as an AwqBlock: the reference output once, then one loss per candidate
// scale vector, so that a device keeps the inputs, the reference and the
// weights resident across the 20 candidates.

#include <Eigen/Dense>
#include <array>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "quant/layer_stream.h"

namespace qsweep::quant {

/// What a pass runs.
///   kLayer:     y = x + attn(norm1(x)); y += mlp(norm2(y))  (the layer's output)
///   kAttention: y = o_proj(attention(q, k, v of x)), x already normed
///   kMlp:       y = down(act(gate(x)) * up(x)), x already normed
enum class LayerPart { kLayer, kAttention, kMlp };

/// One forward call: rows [row0, row0 + n_rows) of the pass's x and y,
/// holding `n_seq` whole sequences of seq_len[0..n_seq) rows (positions
/// from 0 in each). MLP passes: one "sequence" of all n_rows rows.
struct RowBatch {
  int row0 = 0, n_rows = 0, n_seq = 0;
  const int* seq_len = nullptr;
};

/// The rows a pass's batches cover (they are consecutive from row 0).
inline int rows_of(const std::vector<RowBatch>& batches) {
  return batches.empty() ? 0 : batches.back().row0 + batches.back().n_rows;
}

/// The layer a pass runs. `layer` is the layer itself (the CPU runs it as
/// is, hooks included); `linear` / `hooks` / `stats` the same layer for
/// other devices: each Linear's dense fp32 weights (null when not dense),
/// the hooks wrapped around it, outermost (called first) first, and the
/// statistics accumulators fed with its inputs (hook_stats; a device may
/// reduce on the device and merge, ActStatsAccumulator::merge).
struct LayerPlan {
  model::TransformerLayer* layer = nullptr;
  std::array<const model::DenseLinear*, 7> linear{};       ///< by LinearId
  std::array<std::vector<const LinearHook*>, 7> hooks{};    ///< by LinearId
  std::array<std::vector<ActStatsAccumulator*>, 7> stats{};  ///< by LinearId
};

class LayerDevice {
 public:
  virtual ~LayerDevice() = default;
  /// "cpu", "cuda:0 (NVIDIA H100 ...)".
  virtual std::string name() const = 0;

  /// Runs `part` of the plan's layer over `batches` (in order): x [rows, d]
  /// host input, y [rows, d] host output (may alias x; null: only the
  /// hooks see the pass). Hooks are called once per batch with that batch's
  /// rows of their Linear's input.
  virtual void run(LayerPart part, const LayerPlan& plan, const std::vector<RowBatch>& batches, const float* x,
                   float* y) = 0;

  /// AutoAWQ's scale search over a block (`part` kAttention: module2inspect
  /// self_attn, kMlp: mlp): the block's output on x [rows, d] with the
  /// layer as it is now is the reference; loss(s) is awq_loss between it
  /// and the output with each Linear of `scaled` ([N_i, K], K == s.size())
  /// replaced by awq_pseudo_quantize(W * s) / s. The plan's layer is
  /// unchanged when the object is destroyed; it runs no hooks. x must stay
  /// valid while the object lives.
  class AwqBlock {
   public:
    virtual ~AwqBlock() = default;
    virtual double loss(const Eigen::VectorXf& s) = 0;
  };
  virtual std::unique_ptr<AwqBlock> awq_block(LayerPart part, const LayerPlan& plan,
                                              const std::vector<LinearId>& scaled,
                                              const std::vector<RowBatch>& batches, const float* x, int bits,
                                              int group_size) = 0;
};

/// The CPU engine (model/engine/decoder_layer.h), multithreaded with oneTBB.
std::unique_ptr<LayerDevice> make_cpu_layer_device(const model::ModelConfig& c);

/// Makes the device of a model's passes (the quantize and calibrate stages'
/// `device: cuda`); empty: the CPU.
using LayerDeviceFactory = std::function<std::unique_ptr<LayerDevice>(const model::ModelConfig&)>;

}  // namespace qsweep::quant
