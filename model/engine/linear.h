#pragma once
// Linear layers y = x W^T + b: the interface the model code calls, and the
// fp32 dense implementation. quant/ plugs int4/int8/fp8 kernels in by
// implementing Linear and passing a LinearLoader to Engine::load.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/engine/workspace.h"

namespace qsweep::model {

class Checkpoint;

class Linear {
 public:
  virtual ~Linear() = default;
  /// x [n, in] row-major -> y [n, out] row-major (y is overwritten; bias added).
  /// Called from inside a tbb::task_arena; may use tbb parallelism.
  virtual void forward(const float* x, float* y, int n) const = 0;
  virtual int in_features() const = 0;
  virtual int out_features() const = 0;
  /// Bytes read from memory per forward call (weights), for bandwidth bounds.
  virtual size_t weight_bytes() const = 0;
};

/// fp32 weight W [out, in] (the PyTorch layout), optional bias [out].
class DenseLinear final : public Linear {
 public:
  /// `w` holds at least `offset + out*in` floats; shared so that a tied
  /// lm_head reuses the embedding table.
  DenseLinear(std::shared_ptr<const AlignedVec> w, int out, int in, std::vector<float> bias = {},
              size_t offset = 0);
  void forward(const float* x, float* y, int n) const override;
  int in_features() const override { return in_; }
  int out_features() const override { return out_; }
  size_t weight_bytes() const override {
    return sizeof(float) * (size_t(out_) * in_ + bias_.size());
  }
  const float* weight() const { return storage_->data() + offset_; }
  const std::vector<float>& bias() const { return bias_; }  ///< [out] or empty

 private:
  std::shared_ptr<const AlignedVec> storage_;
  size_t offset_;
  int out_, in_;
  std::vector<float> bias_;  // empty: no bias
};

/// A Linear whose input is quantized at run time (W8A8 int8, FP8 weights
/// with FP8 activations; quant/formats/quantized_linear_kernel.h), exposed
/// as data for engines with their own kernels (the GPU engine); forward()
/// is the host kernel. Per token t and output row r:
///   int8:  xq = int8 per-token dynamic (absmax / 127), acc = sum xq * code (int32),
///   fp8:   xq = e4m3 (per-token dynamic or static input_scale), acc = sum xq * w (fp32),
///   y[t, r] = sx[t] * (w_scale[r] * acc) + bias[r].
class ActQuantizedLinear : public Linear {
 public:
  enum class Act { kInt8Token, kFp8Token, kFp8Static };
  struct Data {
    Act act = Act::kInt8Token;
    int out = 0, in = 0;
    /// [out, in] row-major: int8 the signed code (stored code - 128) as a
    /// two's-complement byte; fp8 the E4M3FN bit pattern.
    std::vector<uint8_t> codes;
    std::vector<float> w_scale;  ///< [out] (a per-tensor scale repeated)
    float input_scale = 0;       ///< kFp8Static: xq = e4m3(x / input_scale)
    std::vector<float> bias;     ///< [out] or empty
  };
  virtual const Data& data() const = 0;
};

/// A weight-only quantized Linear (GPTQ, AWQ, W4A16/W8A16, FP8 weights with
/// unquantized activations), exposed as data for engines with their own
/// kernels (the GPU engine); forward() is the host kernel. Its weight is
///   w[r, k] = scale[r, g] * (v(code[r, k]) - zero[r, g]),  g = g_idx[k],
/// in fp32 in that order (quant/quantized_linear.h: bit for bit the value
/// every decoder produces), v(c) = c for integer codes, the E4M3FN value of
/// the bit pattern c for FP8 codes (zero 0).
class WeightOnlyLinear : public Linear {
 public:
  struct Data {
    int bits = 4;  ///< 4 or 8 (int); 8 (fp8)
    bool fp8 = false;
    int out = 0, in = 0, n_groups = 1;
    std::vector<uint8_t> codes;  ///< [out, in] row-major, one unsigned code (or E4M3 bits) per byte
    std::vector<float> scale;    ///< [out, n_groups] row-major
    std::vector<float> zero;     ///< [out, n_groups] (integer values; 0 for fp8)
    std::vector<int32_t> g_idx;  ///< [in], each in [0, n_groups)
    std::vector<float> bias;     ///< [out] or empty
  };
  virtual const Data& data() const = 0;
  /// w [out, in] row-major = the weights above (what forward() computes with).
  virtual void dequantize(float* w) const = 0;
};

/// A DenseLinear holding a copy of w [out, in] (any Eigen float matrix) and `bias`.
std::unique_ptr<DenseLinear> make_dense_linear(const Eigen::Ref<const Eigen::MatrixXf>& w,
                                               std::vector<float> bias = {});

/// Builds the linear layer of checkpoint tensor prefix `name` (e.g.
/// "model.layers.0.self_attn.q_proj": reads name.weight [out, in] and, when
/// `bias`, name.bias [out]). Throws std::runtime_error on missing tensors or
/// wrong shapes.
using LinearLoader = std::function<std::unique_ptr<Linear>(
    const Checkpoint& ckpt, const std::string& name, int out, int in, bool bias)>;

/// The default loader: weights converted to fp32, DenseLinear.
std::unique_ptr<Linear> load_dense_linear(const Checkpoint& ckpt, const std::string& name, int out,
                                          int in, bool bias);

}  // namespace qsweep::model
