#pragma once
// Streaming a model one decoder layer at a time over a calibration set
// (SPECS.md A1.1, A2.1): the hidden states of every calibration sequence
// entering a layer are kept in memory ([total tokens, d] fp32), the layer's
// weights are loaded alone, run, and dropped. Linears can be wrapped with
// hooks that see their inputs (Hessians, activation statistics, AWQ's
// input features) and replaced by new weights (quantized or scaled).
//
// Peak memory: one decoder layer in fp32 plus 3 x [total tokens, d] floats
// (input, normed copy, branch output) plus what the hooks keep.

#include <Eigen/Dense>
#include <array>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/checkpoint/checkpoint.h"
#include "model/engine/decoder_layer.h"
#include "quant/act_stats.h"

namespace qsweep::quant {

/// The seven Linears of a decoder layer.
enum class LinearId { kQ, kK, kV, kO, kGate, kUp, kDown };
inline constexpr std::array<LinearId, 7> kAllLinears = {LinearId::kQ,    LinearId::kK,
                                                        LinearId::kV,    LinearId::kO,
                                                        LinearId::kGate, LinearId::kUp,
                                                        LinearId::kDown};
/// "self_attn.q_proj", ..., "mlp.down_proj".
const char* linear_name(LinearId id);
/// "model.layers.<l>.<linear_name>".
std::string linear_prefix(int layer, LinearId id);
/// The slot holding Linear `id` of L.
std::unique_ptr<model::Linear>& linear_slot(model::TransformerLayer& L, LinearId id);

/// Hidden states of a calibration set: sequence s owns rows
/// [row0[s], row0[s] + len[s]) of x [rows, d] (row-major).
struct Activations {
  int d = 0;
  std::vector<int> len, row0;
  model::AlignedVec x;
  int rows() const { return len.empty() ? 0 : row0.back() + len.back(); }
  float* row(int r) { return x.data() + size_t(r) * d; }
  const float* row(int r) const { return x.data() + size_t(r) * d; }
};

/// Called with the input x [n_rows, in] of a hooked Linear for one forward
/// call covering `n_seq` whole sequences of seq_len[0..n_seq) rows each.
using LinearHook =
    std::function<void(const float* x, int n_rows, const int* seq_len, int n_seq)>;

class LayerDevice;
struct LayerPlan;
struct RowBatch;
enum class LayerPart;

class LayerStream {
 public:
  /// `max_batch_rows`: rows per forward call (whole sequences; a sequence
  /// longer than this runs alone). 512 keeps the forward scratch small next
  /// to one layer (quant/quantize_model.h). The passes run on the CPU until
  /// set_device().
  explicit LayerStream(const model::Checkpoint& ckpt, int max_batch_rows = 512);
  ~LayerStream();
  const model::ModelConfig& config() const { return ckpt_.config(); }
  const model::Checkpoint& checkpoint() const { return ckpt_; }

  /// Embeddings of `seqs` (each non-empty, ids checked): the input of layer 0.
  Activations embed(const std::vector<std::vector<int>>& seqs) const;
  /// Decoder layer `l` in fp32 (dense Linears), KV cache slot 0.
  model::TransformerLayer load_layer(int l) const;
  /// Runs L over `act` in place (the next layer's input).
  void forward(model::TransformerLayer& L, Activations& act) const;
  /// Runs L over `act` for its hooks only (act unchanged).
  void forward_discard(model::TransformerLayer& L, const Activations& act) const;
  /// L's self-attention block only: x [rows of `shape`, d] (already normed)
  /// -> y (same shape; o_proj's output).
  void attention(model::TransformerLayer& L, const Activations& shape, const float* x, float* y) const;
  /// L's MLP only: x [rows, d] (already normed) -> y [rows, d] (rows may be any count).
  void mlp(model::TransformerLayer& L, const float* x, float* y, int rows) const;
  /// Where the passes run (default: the CPU engine).
  void set_device(std::unique_ptr<LayerDevice> device);
  LayerDevice& device() const { return *device_; }
  /// The plan of L for the device (layer_device.h).
  static LayerPlan plan(model::TransformerLayer& L);
  /// The forward calls of a pass over `shape`'s sequences (whole sequences,
  /// up to max_batch_rows rows each), and of an MLP pass over `rows` rows
  /// (`len_storage` keeps their lengths).
  std::vector<RowBatch> seq_batches(const Activations& shape) const;
  std::vector<RowBatch> row_batches(int rows, std::vector<int>* len_storage) const;

 private:
  const model::Checkpoint& ckpt_;
  int max_batch_rows_;
  std::unique_ptr<LayerDevice> device_;
};

/// The sequences that the forward calls on this thread cover until the next
/// call (hooks receive them): set by the CPU device before each batch.
void set_hook_batch(const int* seq_len, int n_seq);

/// Wraps L's Linear `id` so that `hook` sees its inputs; unhook() restores it.
/// Drops the resident pages of a tensor's read-only file mapping
/// (madvise MADV_DONTNEED on the pages wholly inside it): the source file is
/// mapped whole, and every page once read would otherwise stay in the RSS
/// until the checkpoint is closed. Later reads fault the pages in again.
void release_pages(const model::TensorView& v);

void hook_linear(model::TransformerLayer& L, LinearId id, LinearHook hook);
/// Wraps L's Linear `id` so that `acc` accumulates its inputs' statistics,
/// one sample per sequence (ActStatsAccumulator::add_sample): on the CPU
/// through a hook, on a GPU with reductions on the device (LayerPlan::stats).
void hook_stats(model::TransformerLayer& L, LinearId id, ActStatsAccumulator* acc);
void unhook_all(model::TransformerLayer& L);

/// The fp32 weight W [out, in] (col-major Eigen) and bias of a dense Linear
/// of L (throws when that Linear is not dense, e.g. still hooked).
Eigen::MatrixXf linear_weight(const model::TransformerLayer& L, LinearId id);
std::vector<float> linear_bias(const model::TransformerLayer& L, LinearId id);
/// Replaces Linear `id` of L by a dense one with weight `w` [out, in] and `bias`.
void set_linear(model::TransformerLayer& L, LinearId id, const Eigen::MatrixXf& w,
                std::vector<float> bias);

}  // namespace qsweep::quant
