#pragma once
// RMSNorm in fp32: y = x / sqrt(mean(x^2) + eps) * w, or * (1 + w) for Gemma.

namespace qsweep::model {

/// x [n, d] -> y [n, d] (may alias x); w [d].
void rms_norm(const float* x, float* y, int n, int d, const float* w, float eps, bool plus_one);

}  // namespace qsweep::model
