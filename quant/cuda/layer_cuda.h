#pragma once
// LayerStream's calibration passes on an NVIDIA GPU (quant/layer_device.h):
// a decoder layer, its attention or its MLP run entirely on the device in
// fp32 with the GPU engine's kernels (model/cuda/: RMSNorm, RoPE, the fp32
// tiled attention with online softmax, gated activations) and cuBLAS SGEMMs
// (TF32 off unless asked, as the references). Per pass the layer's weights
// are uploaded once; per batch the rows go up, the output comes back, and a
// hooked Linear's input is copied to the host for its hooks. A pass that
// only feeds hooks (y null) stops after the last hooked Linear.
//
// AWQ's block scale searches keep the inputs, the reference output and the
// weights on the device: per candidate scale vector a kernel makes each
// scaled Linear's Q(W * s) / s in place in the stacked weights (the CPU's
// fp32 operations, bit for bit), the block runs batch by batch and the loss
// is summed on the device in double, in a fixed order.
//
// Results differ from the CPU device only in float summation order (GEMMs,
// attention); tests/quant/gptq_cuda_test.cpp compares them on the GPU
// machine. No CUDA types in this header.

#include <memory>

#include "quant/layer_device.h"

namespace qsweep::quant::cuda {

/// The passes of a model with config `c` on GPU `device`; `tf32`: TF32
/// tensor cores for the GEMMs. Throws std::runtime_error when the device
/// does not exist or the model's head_dim is not even and at most 256.
std::unique_ptr<LayerDevice> make_layer_device(const model::ModelConfig& c, int device, bool tf32);

}  // namespace qsweep::quant::cuda
