#pragma once
// How far a quantized model is from its reference, as llama.cpp's
// `perplexity --kl-divergence` measures it: over every position of a fixed
// set of token sequences, the KL divergence KL(P_ref || P_quant) of the
// next-token distributions, both perplexities, and how often both models
// pick the same top-1 token. Natural logarithms; computed in double from the
// engines' fp32 logits.

#include <vector>

#include "model/engine/engine.h"

namespace qsweep::quant {

struct QualityResult {
  int sequences = 0;
  int64_t positions = 0;   ///< next-token distributions compared (n_tok - 1 per sequence)
  double mean_kl = 0;      ///< nats per position
  double max_kl = 0;
  double p99_kl = 0;       ///< 99th percentile
  double ppl_ref = 0, ppl_quant = 0;  ///< exp(mean NLL of the actual next tokens)
  double top1_agree = 0;   ///< fraction of positions with the same argmax
};

/// Both engines must share the vocabulary; sequences of < 2 tokens are skipped.
QualityResult compare_models(const model::Engine& ref, const model::Engine& quant,
                             const std::vector<std::vector<int>>& seqs);

}  // namespace qsweep::quant
