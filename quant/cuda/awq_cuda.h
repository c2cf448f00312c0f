#pragma once
// AutoAWQ's searches over one Linear's own output on an NVIDIA GPU
// (quant/awq_search.h, SPECS.md A2.2-A2.3):
//   - the clip search: per shrink step, a kernel clamps and pseudo-quantizes
//     every (row, group) exactly as awq_pseudo_quantize (fp32, IEEE division,
//     round half to even), a strided-batched cuBLAS SGEMM (fp32, no TF32)
//     gives every group's partial outputs [N, tokens], and a kernel sums each
//     (row, group)'s squared error over the tokens in double in the CPU's
//     order and keeps the first best step;
//   - the scale search of a Linear fed by the previous one (o_proj, down_proj):
//     per ratio a kernel makes the candidate Q(W * s) / s with the CPU's fp32
//     operations, cuBLAS its outputs x W'^T, the loss is summed on the device
//     in double.
// Results differ from the CPU only where the GEMMs' summation order flips a
// strict comparison (tested on the GPU machine).
//
// No CUDA types in this header; the library exists only with the toolkit.

#include <memory>

#include "quant/awq_search.h"

namespace qsweep::quant::cuda {

/// The searcher on GPU `device`. Both searches need groups that tile the
/// input width (K % group_size == 0); other shapes run on the CPU.
std::unique_ptr<AwqSearcher> make_awq_searcher(int device);

}  // namespace qsweep::quant::cuda
