#pragma once
// A dense Linear whose forward runs on a GPU: the host DenseLinear's fp32
// weights are copied to the device once; each forward copies x [n, in] to
// the device, runs one cuBLAS SGEMM (fp32, TF32 off, as the CPU path), adds
// the bias and copies y [n, out] back. The quantization pipeline's
// calibration forward passes (quant/layer_stream.h) use it to move a layer's
// GEMMs to the GPU while hooks keep seeing host inputs. Host-only header.
//
// Thread-safe: calls on one device are serialized (one stream and cuBLAS
// handle per device, shared by every GpuLinear of the process).

#include <memory>

#include "model/engine/linear.h"

namespace qsweep::model::cuda {

/// `host` must be a DenseLinear (throws std::invalid_argument otherwise);
/// throws std::runtime_error on CUDA errors (out of memory named).
std::unique_ptr<OffloadedLinear> make_gpu_linear(std::unique_ptr<Linear> host, int device);

}  // namespace qsweep::model::cuda
