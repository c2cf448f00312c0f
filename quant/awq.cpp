#include "quant/awq.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "model/dtype.h"

namespace qsweep::quant {

QuantizedWeight awq_pseudo_quantize(const Eigen::MatrixXf& w, int bits, int group_size) {
  const int n = int(w.rows()), k = int(w.cols());
  const float maxq = float((1 << bits) - 1);
  QuantizedWeight out = QuantizedWeight::sized(n, k, bits, group_size);
  const int g = out.group_width();
  const int n_groups = int(out.scale.cols());
  // Groups in parallel (each writes its own columns); inside a group the
  // columns outermost, so that the column-major matrices are walked in
  // order. Per element the same fp32 operations as a row-by-row loop.
  tbb::parallel_for(0, n_groups, [&](int gi) {
    const int g0 = gi * g, width = std::min(g, k - g0);
    std::vector<float> mx(w.col(g0).data(), w.col(g0).data() + n), mn = mx;
    for (int j = g0 + 1; j < g0 + width; ++j)
      for (int r = 0; r < n; ++r) {
        mx[r] = std::max(mx[r], w(r, j));
        mn[r] = std::min(mn[r], w(r, j));
      }
    for (int r = 0; r < n; ++r) {
      const float scale = std::max(mx[r] - mn[r], 1e-5f) / maxq;
      out.scale(r, gi) = scale;
      out.zero(r, gi) = std::clamp(-rne(mn[r] / scale), 0.0f, maxq);
    }
    for (int j = g0; j < g0 + width; ++j)
      for (int r = 0; r < n; ++r) {
        const float scale = out.scale(r, gi), zero = out.zero(r, gi);
        const float c = std::clamp(rne(w(r, j) / scale) + zero, 0.0f, maxq);
        out.codes(r, j) = int(c);
        out.q(r, j) = (c - zero) * scale;
      }
  });
  return out;
}

bool pack_awq_gemm(const QuantizedWeight& qw, AwqPacked* out, std::string* err) {
  const int n = int(qw.codes.rows()), k = int(qw.codes.cols());
  if (qw.bits != 4 || n % 8 != 0) {
    if (err) *err = "pack_awq_gemm: needs bits 4 and N a multiple of 8";
    return false;
  }
  const int n_groups = int(qw.scale.cols());
  out->k = k;
  out->n = n;
  out->n_groups = n_groups;
  auto pack8 = [&](auto value_of_n) {
    std::vector<uint32_t> words(size_t(n / 8));
    for (int c = 0; c < n / 8; ++c) {
      uint32_t word = 0;
      for (int i = 0; i < 8; ++i)
        word |= (uint32_t(value_of_n(8 * c + kAwqOrder[i])) & 0xF) << (4 * i);
      words[c] = word;
    }
    return words;
  };
  out->qweight.clear();
  out->qweight.reserve(size_t(k) * (n / 8));
  for (int kk = 0; kk < k; ++kk) {
    const auto words = pack8([&](int c) { return std::clamp(qw.codes(c, kk), 0, 15); });
    out->qweight.insert(out->qweight.end(), words.begin(), words.end());
  }
  out->qzeros.clear();
  out->scales.assign(size_t(n_groups) * n, 0);
  for (int g = 0; g < n_groups; ++g) {
    const auto words = pack8([&](int c) { return int(std::lrint(qw.zero(c, g))); });
    out->qzeros.insert(out->qzeros.end(), words.begin(), words.end());
    for (int c = 0; c < n; ++c) out->scales[size_t(g) * n + c] = model::f32_to_f16(qw.scale(c, g));
  }
  return true;
}

}  // namespace qsweep::quant
