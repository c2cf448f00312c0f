#pragma once
// Builders of QuantizedLinear test layers and a one-Linear model folder for
// the format and kernel tests (tests/quant/formats_test.cpp,
// quantized_linear_kernel_test.cpp).

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <string>

#include "model/checkpoint/safetensors.h"
#include "quant/fp8.h"
#include "quant/quantized_linear.h"
#include "quant/quantizer.h"

namespace qsweep::quant::formats_testing {

inline Eigen::MatrixXf random_w(int n, int k, uint32_t seed, float sd = 0.05f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sd);
  Eigen::MatrixXf w(n, k);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < k; ++j) w(i, j) = d(rng);
  return w;
}

inline const char* kPrefix = "model.layers.0.mlp.up_proj";

/// RTN int layer; with act_order, groups are contiguous in a random column
/// permutation (GPTQ act-order without static groups), so g_idx is not k / G.
inline QuantizedLinear make_int(int n, int k, int bits, bool sym, int group, uint32_t seed,
                                bool act_order = false) {
  const Eigen::MatrixXf w = random_w(n, k, seed);
  QuantizedLinear ql;
  ql.prefix = kPrefix;
  ql.type = WeightType::kInt;
  ql.bits = bits;
  ql.strategy = group == -1 ? WeightStrategy::kChannel : WeightStrategy::kGroup;
  ql.sym = sym;
  ql.act_order = act_order;
  if (!act_order) {
    ql.weight = rtn_quantize(w, bits, sym, group);
    return ql;
  }
  std::vector<int> perm(k);
  std::iota(perm.begin(), perm.end(), 0);
  std::mt19937 rng(seed + 1);
  std::shuffle(perm.begin(), perm.end(), rng);
  Eigen::MatrixXf wp(n, k);
  for (int i = 0; i < k; ++i) wp.col(i) = w.col(perm[i]);
  const QuantizedWeight qp = rtn_quantize(wp, bits, sym, group);
  QuantizedWeight qw = QuantizedWeight::sized(n, k, bits, group);
  qw.scale = qp.scale;
  qw.zero = qp.zero;
  for (int i = 0; i < k; ++i) {
    qw.codes.col(perm[i]) = qp.codes.col(i);
    qw.q.col(perm[i]) = qp.q.col(i);
    qw.g_idx[perm[i]] = qp.g_idx[i];
  }
  ql.weight = std::move(qw);
  return ql;
}

/// W8A8 int8 (SmoothQuant/llm-compressor W8A8 scheme): symmetric int8 weights
/// per channel (or one scale for the tensor), int8 per-token dynamic inputs.
inline QuantizedLinear make_w8a8(int n, int k, bool tensor, uint32_t seed) {
  QuantizedLinear ql = make_int(n, k, 8, true, -1, seed);
  ql.act = ActQuant::kInt8TokenDynamic;
  if (!tensor) return ql;
  const Eigen::MatrixXf w = random_w(n, k, seed);
  const float scale = w.cwiseAbs().maxCoeff() / 127.5f;
  ql.strategy = WeightStrategy::kTensor;
  ql.weight.scale.setConstant(scale);
  ql.weight.zero.setConstant(128.0f);
  for (int r = 0; r < n; ++r)
    for (int j = 0; j < k; ++j) {
      const int c = int(std::clamp(rne(w(r, j) / scale) + 128.0f, 0.0f, 255.0f));
      ql.weight.codes(r, j) = c;
      ql.weight.q(r, j) = scale * (float(c) - 128.0f);
    }
  return ql;
}

/// FP8 E4M3 weights, scale amax/448 per tensor or per channel.
inline QuantizedLinear make_fp8(int n, int k, bool tensor, ActQuant act, uint32_t seed) {
  const Eigen::MatrixXf w = random_w(n, k, seed);
  QuantizedLinear ql;
  ql.prefix = kPrefix;
  ql.type = WeightType::kFloat8;
  ql.bits = 8;
  ql.strategy = tensor ? WeightStrategy::kTensor : WeightStrategy::kChannel;
  ql.sym = true;
  ql.act = act;
  ql.input_scale = act == ActQuant::kFp8TensorStatic ? 0.75f / 448.0f : 0.0f;
  ql.weight = QuantizedWeight::sized(n, k, 8, -1);
  ql.weight.zero.setZero();
  const float amax_t = w.cwiseAbs().maxCoeff();
  for (int r = 0; r < n; ++r) {
    const float s = (tensor ? amax_t : w.row(r).cwiseAbs().maxCoeff()) / 448.0f;
    ql.weight.scale(r, 0) = s;
    for (int j = 0; j < k; ++j) {
      const uint8_t c = f32_to_e4m3fn(w(r, j) / s);
      ql.weight.codes(r, j) = c;
      ql.weight.q(r, j) = s * e4m3fn_to_f32(c);
    }
  }
  return ql;
}

inline QuantizedLinear weight_only(QuantizedLinear ql) {
  ql.act = ActQuant::kNone;
  return ql;
}

/// A model folder: the llama2 fixture's config.json plus `quantization_config`,
/// and `tensors` in model.safetensors.
inline void write_folder(const std::filesystem::path& dir,
                         const std::map<std::string, model::TensorData>& tensors,
                         const nlohmann::json& qc) {
  std::filesystem::create_directories(dir);
  model::write_safetensors(dir / "model.safetensors", tensors);
  std::ifstream f(std::filesystem::path(QSWEEP_QUANT_TEST_SOURCE_DIR) /
                  "tests/fixtures/models/llama2/config.json");
  nlohmann::json cfg = nlohmann::json::parse(f);
  cfg["quantization_config"] = qc;
  std::ofstream(dir / "config.json") << cfg.dump(2);
}

}  // namespace qsweep::quant::formats_testing
