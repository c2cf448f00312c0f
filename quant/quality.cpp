#include "quant/quality.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace qsweep::quant {

namespace {

// log-softmax of one row of logits, in double.
void log_softmax(const float* z, int n, std::vector<double>& out) {
  out.resize(n);
  double mx = z[0];
  for (int i = 1; i < n; ++i) mx = std::max(mx, double(z[i]));
  double s = 0;
  for (int i = 0; i < n; ++i) s += std::exp(double(z[i]) - mx);
  const double lse = mx + std::log(s);
  for (int i = 0; i < n; ++i) out[i] = double(z[i]) - lse;
}

}  // namespace

QualityResult compare_models(const model::Engine& ref, const model::Engine& quant,
                             const std::vector<std::vector<int>>& seqs) {
  const int v = ref.config().vocab_size;
  if (quant.config().vocab_size != v)
    throw std::runtime_error("compare_models: the models have different vocabularies (" +
                             std::to_string(v) + " vs " +
                             std::to_string(quant.config().vocab_size) + ")");
  QualityResult r;
  std::vector<double> kls, lp, lq;
  double nll_ref = 0, nll_q = 0;
  int64_t agree = 0;
  for (const auto& ids : seqs) {
    if (ids.size() < 2) continue;
    ++r.sequences;
    const std::vector<float> zr = ref.logits(ids), zq = quant.logits(ids);
    for (size_t t = 0; t + 1 < ids.size(); ++t) {
      log_softmax(zr.data() + t * v, v, lp);
      log_softmax(zq.data() + t * v, v, lq);
      double kl = 0;
      for (int i = 0; i < v; ++i) kl += std::exp(lp[i]) * (lp[i] - lq[i]);
      kls.push_back(std::max(0.0, kl));
      nll_ref -= lp[ids[t + 1]];
      nll_q -= lq[ids[t + 1]];
      agree += std::max_element(lp.begin(), lp.end()) - lp.begin() ==
               std::max_element(lq.begin(), lq.end()) - lq.begin();
    }
  }
  r.positions = int64_t(kls.size());
  if (r.positions == 0) throw std::runtime_error("compare_models: no sequence of >= 2 tokens");
  double sum = 0;
  for (double k : kls) sum += k;
  r.mean_kl = sum / double(r.positions);
  std::sort(kls.begin(), kls.end());
  r.max_kl = kls.back();
  r.p99_kl = kls[std::min(kls.size() - 1, size_t(0.99 * double(kls.size())))];
  r.ppl_ref = std::exp(nll_ref / double(r.positions));
  r.ppl_quant = std::exp(nll_q / double(r.positions));
  r.top1_agree = double(agree) / double(r.positions);
  return r;
}

}  // namespace qsweep::quant
