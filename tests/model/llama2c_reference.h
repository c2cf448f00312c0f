#pragma once
// A plain llama2.c forward pass (karpathy/llama2.c run.c semantics:
// interleaved RoPE pairs, rmsnorm eps 1e-5, SwiGLU, GQA), one token at a
// time with a KV cache. The reference the import is checked against,
// independent of Hugging Face.

#include <cmath>
#include <vector>

#include "model/checkpoint/llama2c.h"

namespace qsweep::model::test {

class Llama2cReference {
 public:
  explicit Llama2cReference(const Llama2cModel& m)
      : m_(m),
        kc_(size_t(m.n_layers) * m.seq_len * m.kv_dim()),
        vc_(size_t(m.n_layers) * m.seq_len * m.kv_dim()) {}

  /// Logits [vocab] after feeding `token` at position `pos` (positions in order from 0).
  std::vector<float> step(int token, int pos) {
    const int d = m_.dim, hd = m_.hidden_dim, hs = m_.head_size(), kvd = m_.kv_dim();
    const int kv_mul = m_.n_heads / m_.n_kv_heads;
    std::vector<float> x(m_.token_embedding.begin() + size_t(token) * d,
                         m_.token_embedding.begin() + size_t(token + 1) * d);
    std::vector<float> xb(d), q(d), k(kvd), v(kvd), att(pos + 1), hb(hd), hb2(hd), out(d);
    for (int l = 0; l < m_.n_layers; ++l) {
      rmsnorm(xb.data(), x.data(), &m_.rms_att[size_t(l) * d], d);
      matmul(q.data(), xb.data(), &m_.wq[size_t(l) * d * d], d, d);
      matmul(k.data(), xb.data(), &m_.wk[size_t(l) * kvd * d], d, kvd);
      matmul(v.data(), xb.data(), &m_.wv[size_t(l) * kvd * d], d, kvd);
      for (int i = 0; i < d; i += 2) {  // rotate interleaved pairs
        const int head_dim = i % hs;
        const float freq = 1.0f / std::pow(10000.0f, head_dim / float(hs));
        const float val = pos * freq, fcr = std::cos(val), fci = std::sin(val);
        for (int which = 0; which < (i < kvd ? 2 : 1); ++which) {
          float* vec = which == 0 ? q.data() : k.data();
          const float v0 = vec[i], v1 = vec[i + 1];
          vec[i] = v0 * fcr - v1 * fci;
          vec[i + 1] = v0 * fci + v1 * fcr;
        }
      }
      float* kl = &kc_[(size_t(l) * m_.seq_len) * kvd];
      float* vl = &vc_[(size_t(l) * m_.seq_len) * kvd];
      std::copy(k.begin(), k.end(), kl + size_t(pos) * kvd);
      std::copy(v.begin(), v.end(), vl + size_t(pos) * kvd);
      for (int h = 0; h < m_.n_heads; ++h) {
        const float* qh = &q[h * hs];
        const int kvh = (h / kv_mul) * hs;
        float mx = -1e30f;
        for (int t = 0; t <= pos; ++t) {
          float s = 0;
          for (int i = 0; i < hs; ++i) s += qh[i] * kl[size_t(t) * kvd + kvh + i];
          att[t] = s / std::sqrt(float(hs));
          mx = std::max(mx, att[t]);
        }
        float sum = 0;
        for (int t = 0; t <= pos; ++t) sum += att[t] = std::exp(att[t] - mx);
        for (int i = 0; i < hs; ++i) {
          float acc = 0;
          for (int t = 0; t <= pos; ++t) acc += att[t] / sum * vl[size_t(t) * kvd + kvh + i];
          xb[h * hs + i] = acc;
        }
      }
      matmul(out.data(), xb.data(), &m_.wo[size_t(l) * d * d], d, d);
      for (int i = 0; i < d; ++i) x[i] += out[i];
      rmsnorm(xb.data(), x.data(), &m_.rms_ffn[size_t(l) * d], d);
      matmul(hb.data(), xb.data(), &m_.w1[size_t(l) * hd * d], d, hd);
      matmul(hb2.data(), xb.data(), &m_.w3[size_t(l) * hd * d], d, hd);
      for (int i = 0; i < hd; ++i) hb[i] = hb[i] / (1.0f + std::exp(-hb[i])) * hb2[i];
      matmul(out.data(), hb.data(), &m_.w2[size_t(l) * d * hd], hd, d);
      for (int i = 0; i < d; ++i) x[i] += out[i];
    }
    rmsnorm(x.data(), x.data(), m_.rms_final.data(), d);
    std::vector<float> logits(m_.vocab_size);
    const float* cls = m_.shared_classifier ? m_.token_embedding.data() : m_.wcls.data();
    matmul(logits.data(), x.data(), cls, d, m_.vocab_size);
    return logits;
  }

 private:
  static void rmsnorm(float* o, const float* x, const float* w, int n) {
    float ss = 0;
    for (int i = 0; i < n; ++i) ss += x[i] * x[i];
    ss = 1.0f / std::sqrt(ss / n + 1e-5f);
    for (int i = 0; i < n; ++i) o[i] = w[i] * (ss * x[i]);
  }
  /// W (d, n) @ x (n,) -> xout (d,)
  static void matmul(float* xout, const float* x, const float* w, int n, int d) {
    for (int i = 0; i < d; ++i) {
      float v = 0;
      for (int j = 0; j < n; ++j) v += w[size_t(i) * n + j] * x[j];
      xout[i] = v;
    }
  }
  const Llama2cModel& m_;
  std::vector<float> kc_, vc_;
};

}  // namespace qsweep::model::test
