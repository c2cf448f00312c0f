#include "model/engine/rolling.h"

#include <algorithm>
#include <stdexcept>

namespace qsweep::model {

std::vector<RollingWindow> rolling_windows(const std::vector<int>& tokens, int prefix_token,
                                           int max_len, int context_len) {
  if (context_len < 1 || context_len > max_len)
    throw std::invalid_argument("rolling_windows: need 1 <= context_len <= max_len");
  std::vector<RollingWindow> out;
  const int n = static_cast<int>(tokens.size());
  if (n == 0) return out;
  const int pred_len = max_len - context_len + 1;
  // First window: the prefix token then the first tokens, predicting up to max_len.
  const int first = std::min(max_len, n);
  RollingWindow w0;
  w0.input.push_back(prefix_token);
  w0.input.insert(w0.input.end(), tokens.begin(), tokens.begin() + first - 1);
  w0.predicted.assign(tokens.begin(), tokens.begin() + first);
  out.push_back(std::move(w0));
  int done = first;
  while (done < n) {
    const int take = std::min(n - done, pred_len);
    const int end = done + take;  // predicts tokens [end - take, end)
    RollingWindow w;
    const int in_begin = std::max(0, end - max_len - 1);
    w.input.assign(tokens.begin() + in_begin, tokens.begin() + end - 1);
    w.predicted.assign(tokens.begin() + end - take, tokens.begin() + end);
    out.push_back(std::move(w));
    done = end;
  }
  return out;
}

void disjoint_window(const RollingWindow& w, std::vector<int>* context,
                     std::vector<int>* continuation) {
  const size_t keep = w.input.size() - (w.predicted.size() - 1);
  context->assign(w.input.begin(), w.input.begin() + keep);
  *continuation = w.predicted;
}

}  // namespace qsweep::model
