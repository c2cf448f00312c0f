#pragma once
// lm-evaluation-harness rolling windows for loglikelihood_rolling
// (lm_eval/utils.py get_rolling_token_windows + make_disjoint_window): every
// token is predicted exactly once; the first window is predicted from a
// prefix token (BOS/EOT), later windows see up to max_len tokens of context.

#include <vector>

namespace qsweep::model {

struct RollingWindow {
  std::vector<int> input;      // tokens fed to the model
  std::vector<int> predicted;  // the last predicted.size() targets of input shifted by one
};

/// Windows over `tokens` for a model of `max_len` positions; context_len >= 1
/// is the minimum context of later windows (lm-eval uses 1).
std::vector<RollingWindow> rolling_windows(const std::vector<int>& tokens, int prefix_token,
                                           int max_len, int context_len = 1);

/// make_disjoint_window: (input, predicted) -> (context, continuation) with
/// context + continuation[:-1] == input.
void disjoint_window(const RollingWindow& w, std::vector<int>* context,
                     std::vector<int>* continuation);

}  // namespace qsweep::model
