// Quantized Linear kernels (quant/formats/quantized_linear_kernel.h): the
// reference kernel vs a DenseLinear over the dequantized weight and vs hand
// arithmetic, the fast kernel vs the reference (exact for W8A8 integer
// GEMMs), and the quantized loader on a whole model in every format.
#include "quant/formats/quantized_linear_kernel.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "model/checkpoint/checkpoint.h"
#include "model/engine/engine.h"
#include "quant/formats/activation_quant.h"
#include "quant/formats/format.h"
#include "quant/formats/quantized_loader.h"
#include "quant/gptq_checkpoint.h"
#include "tests/quant/formats_testutil.h"
#include "tests/testutil.h"

namespace qsweep::quant {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace qsweep::quant::formats_testing;

std::vector<float> random_x(int n, int k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> x(size_t(n) * k);
  for (float& v : x) v = d(rng);
  return x;
}

std::vector<float> run(const model::Linear& l, const std::vector<float>& x, int n) {
  std::vector<float> y(size_t(n) * l.out_features(), -1.0f);
  l.forward(x.data(), y.data(), n);
  return y;
}

std::unique_ptr<model::DenseLinear> dense_of(const QuantizedLinear& ql) {
  const int n = ql.out_features(), k = ql.in_features();
  auto w = std::make_shared<model::AlignedVec>(size_t(n) * k);
  Eigen::Map<model::MatrixRM>(w->data(), n, k) = ql.weight.q;
  return std::make_unique<model::DenseLinear>(w, n, k, ql.bias);
}

/// |a - b| <= tol * (sum_k |x_k w_k| + 1e-6) per output (a float-sum reorder bound).
void expect_close(const std::vector<float>& a, const std::vector<float>& b,
                  const std::vector<float>& x, const Eigen::MatrixXf& w, int n, float tol,
                  const std::string& what) {
  const int N = int(w.rows()), K = int(w.cols());
  int bad = 0;
  for (int t = 0; t < n; ++t)
    for (int r = 0; r < N; ++r) {
      float mag = 1e-6f;
      for (int k = 0; k < K; ++k) mag += std::fabs(x[size_t(t) * K + k] * w(r, k));
      const float d = std::fabs(a[size_t(t) * N + r] - b[size_t(t) * N + r]);
      if (!(d <= tol * mag) && bad++ < 5)
        ADD_FAILURE() << what << ": token " << t << " row " << r << ": " << a[size_t(t) * N + r]
                      << " vs " << b[size_t(t) * N + r] << " (bound " << tol * mag << ")";
    }
  EXPECT_EQ(bad, 0) << what;
}

struct WoCase {
  int n, k, bits, group;
  bool sym, act_order;
};

TEST(QuantKernel, WeightOnlyIntFastVsReferenceVsDense) {
  const WoCase cases[] = {{64, 256, 4, 32, true, false},  {64, 256, 4, 128, false, false},
                          {48, 256, 4, -1, true, false},  {64, 256, 8, 64, false, false},
                          {40, 256, 8, -1, true, false},  {64, 256, 4, 32, false, true},
                          {64, 256, 8, 64, true, true},   {24, 100, 4, -1, false, false},
                          {33, 96, 4, 32, true, false},
                          // AVX-512 int4 lut layout: g128 with act-order, 3 chunks per row
                          {64, 512, 4, 128, true, true},  {40, 384, 4, 128, false, false}};
  uint32_t seed = 1;
  for (const WoCase& c : cases) {
    QuantizedLinear ql = make_int(c.n, c.k, c.bits, c.sym, c.group, ++seed, c.act_order);
    ql.bias.assign(c.n, 0.25f);
    const std::string what = "int" + std::to_string(c.bits) + " g" + std::to_string(c.group) +
                             (c.sym ? " sym" : " asym") + (c.act_order ? " act-order" : "") +
                             " [" + std::to_string(c.n) + "x" + std::to_string(c.k) + "]";
    const QuantizedLinearKernel ref(ql, KernelKind::kReference), fast(ql, KernelKind::kFast);
    EXPECT_LT(fast.weight_bytes(), sizeof(float) * size_t(c.n) * c.k / 3) << what;
    const auto dense = dense_of(ql);
    for (int n : {1, 3, 5, 16, 17}) {
      const std::vector<float> x = random_x(n, c.k, seed * 31 + n);
      const auto yr = run(ref, x, n), yf = run(fast, x, n), yd = run(*dense, x, n);
      expect_close(yr, yd, x, ql.weight.q, n, 2e-6f, what + " reference vs dense n=" + std::to_string(n));
      expect_close(yf, yr, x, ql.weight.q, n, 2e-6f, what + " fast vs reference n=" + std::to_string(n));
    }
  }
}

TEST(QuantKernel, ReferenceWeightOnlyIsSequentialSumOfQ) {
  // Single output, sequential fp32 sum of x * q: the reference is exactly that.
  QuantizedLinear ql = make_int(3, 64, 4, false, 32, 7, true);
  const QuantizedLinearKernel ref(ql, KernelKind::kReference);
  const std::vector<float> x = random_x(2, 64, 9);
  const auto y = run(ref, x, 2);
  for (int t = 0; t < 2; ++t)
    for (int r = 0; r < 3; ++r) {
      float acc = 0;
      for (int k = 0; k < 64; ++k) {
        volatile float p = x[size_t(t) * 64 + k] * ql.weight.q(r, k);  // no fma
        acc += p;
      }
      EXPECT_EQ(y[size_t(t) * 3 + r], acc);
    }
}

TEST(QuantKernel, W8A8ReferenceArithmeticAndFastIsExact) {
  for (bool tensor : {false, true}) {
    QuantizedLinear ql = make_w8a8(72, 300, tensor, 11 + tensor);
    ql.bias.assign(72, -0.5f);
    const QuantizedLinearKernel ref(ql, KernelKind::kReference), fast(ql, KernelKind::kFast);
    for (int n : {1, 4, 9}) {
      std::vector<float> x = random_x(n, 300, 100 + n);
      if (n == 4)
        for (int k = 0; k < 300; ++k) x[size_t(2) * 300 + k] = 0.0f;  // an all-zero token
      const auto yr = run(ref, x, n), yf = run(fast, x, n);
      for (size_t i = 0; i < yr.size(); ++i) ASSERT_EQ(yr[i], yf[i]) << "tensor " << tensor << " i " << i;
      // reference = sx * (sw * float(sum xq * (code - 128))) + bias
      std::vector<int8_t> xq(300);
      for (int t = 0; t < n; ++t) {
        const float sx = quantize_row_int8(x.data() + size_t(t) * 300, 300, xq.data());
        for (int r = 0; r < 72; r += 7) {
          int32_t acc = 0;
          for (int k = 0; k < 300; ++k) acc += int32_t(xq[k]) * (ql.weight.codes(r, k) - 128);
          volatile float prod = sx * (ql.weight.scale(r, 0) * float(acc));  // no fma with the bias
          EXPECT_EQ(yr[size_t(t) * 72 + r], prod - 0.5f);
        }
        if (n == 4 && t == 2) {
          for (int r = 0; r < 72; ++r) EXPECT_EQ(yr[size_t(t) * 72 + r], -0.5f);
        }
      }
      // close to the unquantized-activation product (int8 per-token error)
      const auto dense = dense_of(ql);
      expect_close(yr, run(*dense, x, n), x, ql.weight.q, n, 2e-2f, "w8a8 vs dense");
    }
  }
}

TEST(QuantKernel, Fp8FastVsReference) {
  for (bool tensor : {true, false})
    for (ActQuant a : {ActQuant::kNone, ActQuant::kFp8TokenDynamic, ActQuant::kFp8TensorStatic}) {
      QuantizedLinear ql = make_fp8(40, 200, tensor, a, 21 + int(a));
      ql.input_scale = 3.0f / 448.0f;
      const std::string what = std::string(tensor ? "tensor " : "channel ") + act_quant_name(a);
      const QuantizedLinearKernel ref(ql, KernelKind::kReference), fast(ql, KernelKind::kFast);
      for (int n : {1, 6}) {
        const std::vector<float> x = random_x(n, 200, 5 + n);
        const auto yr = run(ref, x, n), yf = run(fast, x, n);
        expect_close(yf, yr, x, ql.weight.q, n, 2e-6f, what + " fast vs reference");
        // the activation quantization error of fp8 (3 mantissa bits) stays small
        const auto yd = run(*dense_of(ql), x, n);
        expect_close(yr, yd, x, ql.weight.q, n, a == ActQuant::kNone ? 2e-6f : 0.07f,
                     what + " reference vs dense");
      }
    }
}

TEST(QuantKernel, Fp8StaticClampsLargeActivations) {
  // One weight 1.0 (code 0x38, scale 1); input 1000 with input_scale 1 saturates to 448.
  QuantizedLinear ql = make_fp8(1, 4, true, ActQuant::kFp8TensorStatic, 3);
  ql.weight.scale.setConstant(1.0f);
  ql.weight.codes.setZero();
  ql.weight.codes(0, 0) = 0x38;
  ql.input_scale = 1.0f;
  const std::vector<float> x = {1000.0f, 5.0f, 6.0f, 7.0f};
  for (KernelKind kk : {KernelKind::kReference, KernelKind::kFast})
    EXPECT_EQ(run(QuantizedLinearKernel(ql, kk), x, 1)[0], 448.0f);
}

// ---- the loader on a whole model ---------------------------------------------

fs::path fixture(const std::string& name) {
  return fs::path(QSWEEP_QUANT_TEST_SOURCE_DIR) / "tests/fixtures/models" / name;
}

struct ModelCase {
  std::string name;
  CheckpointFormat format;
  std::function<QuantizedWeight(const Eigen::MatrixXf&)> quantize;
};

TEST(QuantizedLoader, WholeModelMatchesFakeQuantizedFp32) {
  const model::Checkpoint src(fixture("llama2"));
  const std::vector<ModelCase> cases = {
      {"gptq_int4_g32_asym", CheckpointFormat::kGptq,
       [](const Eigen::MatrixXf& w) { return rtn_quantize(w, 4, false, 32); }},
      {"awq_int4_g32", CheckpointFormat::kAwq,
       [](const Eigen::MatrixXf& w) { return rtn_quantize(w, 4, false, 32); }},
      {"ct_int8_channel", CheckpointFormat::kCompressedTensors,
       [](const Eigen::MatrixXf& w) { return rtn_quantize(w, 8, true, -1); }},
  };
  qsweep::testing::TempDir tmp;
  for (const ModelCase& c : cases) {
    SCOPED_TRACE(c.name);
    std::map<std::string, model::TensorData> out, fake;
    QuantizedLinear rep;
    for (const std::string& name : src.tensor_names()) {
      std::string prefix;
      const model::TensorView& v = src.view(name);
      if (!is_quantized_linear_weight(name, &prefix)) {
        out[name] = {v.dtype, v.shape, std::vector<uint8_t>(v.data, v.data + v.n_bytes)};
        fake[name] = out[name];
        continue;
      }
      const Eigen::MatrixXf w = src.matrix_f32(name);
      QuantizedLinear ql;
      ql.prefix = prefix;
      ql.weight = c.quantize(w);
      ql.bits = ql.weight.bits;
      ql.sym = c.name.find("asym") == std::string::npos && c.format != CheckpointFormat::kAwq;
      ql.strategy = ql.weight.group_size == -1 ? WeightStrategy::kChannel : WeightStrategy::kGroup;
      ASSERT_EQ(check_format_supports(c.format, ql), "");
      finalize_for_format(c.format, model::DType::kF32, &ql);
      for (auto& [n, t] : encode_linear(c.format, model::DType::kF32, ql)) out[n] = std::move(t);
      const model::MatrixRM q = ql.weight.q;
      fake[name] = model::make_f32_tensor(v.shape, q.data());
      rep = ql;
    }
    write_folder(tmp / c.name, out, quantization_config(c.format, rep, {}));
    write_folder(tmp / (c.name + "_fake"), fake, json::object());
    json cfg = json::parse(qsweep::testing::read_file(tmp / (c.name + "_fake") / "config.json"));
    cfg.erase("quantization_config");
    qsweep::testing::write_file(tmp / (c.name + "_fake") / "config.json", cfg.dump());

    auto eng = model::Engine::load(tmp / c.name, {.threads = 1, .linear_loader = quantized_linear_loader()});
    auto ref_eng = model::Engine::load(
        tmp / c.name, {.threads = 1, .linear_loader = quantized_linear_loader(KernelKind::kReference)});
    auto fake_eng = model::Engine::load(tmp / (c.name + "_fake"), {.threads = 1});
    std::vector<int> ids;
    for (int i = 0; i < 16; ++i) ids.push_back((i * 37 + 5) % src.config().vocab_size);
    const auto a = fake_eng->logits(ids), b = eng->logits(ids), r = ref_eng->logits(ids);
    ASSERT_EQ(a.size(), b.size());
    float d = 0, dr = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      d = std::max(d, std::fabs(a[i] - b[i]));
      dr = std::max(dr, std::fabs(a[i] - r[i]));
    }
    EXPECT_LE(d, 1e-4f) << "fast kernel engine vs fake-quantized fp32";
    EXPECT_LE(dr, 1e-4f) << "reference kernel engine vs fake-quantized fp32";
    // The GPU engine's loader: every quantized layer as WeightOnlyLinear data
    // whose weights are exactly the dequantized ones, forward() the CPU reference kernel.
    const model::Checkpoint ck(tmp / c.name);
    const model::Checkpoint fk(tmp / (c.name + "_fake"));
    int n_layers = 0;
    for (const std::string& name : src.tensor_names()) {
      std::string prefix;
      if (!is_quantized_linear_weight(name, &prefix)) continue;
      SCOPED_TRACE(prefix);
      const model::TensorView& v = src.view(name);
      const int out_f = int(v.shape[0]), in_f = int(v.shape[1]);
      const std::unique_ptr<model::Linear> l = gpu_engine_linear_loader()(ck, prefix, out_f, in_f, false);
      const auto* w = dynamic_cast<const model::WeightOnlyLinear*>(l.get());
      ASSERT_NE(w, nullptr);
      EXPECT_EQ(w->data().bits, c.format == CheckpointFormat::kCompressedTensors ? 8 : 4);
      std::vector<float> deq(size_t(out_f) * in_f);
      w->dequantize(deq.data());
      const Eigen::MatrixXf want = fk.matrix_f32(name);
      for (int r = 0; r < out_f; ++r)
        for (int k = 0; k < in_f; ++k) ASSERT_EQ(deq[size_t(r) * in_f + k], want(r, k)) << r << ", " << k;
      std::vector<float> x(2 * in_f), y(2 * out_f), y_cpu(2 * out_f);
      for (size_t i = 0; i < x.size(); ++i) x[i] = std::cos(0.11f * float(i));
      l->forward(x.data(), y.data(), 2);
      quantized_linear_loader(KernelKind::kReference)(ck, prefix, out_f, in_f, false)
          ->forward(x.data(), y_cpu.data(), 2);
      EXPECT_EQ(y, y_cpu);
      ++n_layers;
    }
    EXPECT_EQ(n_layers, 7 * src.config().n_layer);
  }
}

TEST(GpuEngineLoader, GivesActivationQuantizedLayersAsData) {
  // W8A8 int8 (channel and tensor scales) and FP8 (dynamic and static
  // activations): the loader hands the GPU engine the stored codes, one
  // weight scale per row, the activation scheme and the bias; forward() is
  // the CPU kernel.
  struct Case {
    const char* name;
    QuantizedLinear ql;
    model::ActQuantizedLinear::Act act;
  };
  const std::vector<Case> cases = {
      {"w8a8 channel", formats_testing::make_w8a8(24, 32, false, 3), model::ActQuantizedLinear::Act::kInt8Token},
      {"w8a8 tensor", formats_testing::make_w8a8(24, 32, true, 4), model::ActQuantizedLinear::Act::kInt8Token},
      {"fp8 dynamic", formats_testing::make_fp8(24, 32, false, ActQuant::kFp8TokenDynamic, 5),
       model::ActQuantizedLinear::Act::kFp8Token},
      {"fp8 static", formats_testing::make_fp8(24, 32, true, ActQuant::kFp8TensorStatic, 6),
       model::ActQuantizedLinear::Act::kFp8Static},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    qsweep::testing::TempDir tmp;
    QuantizedLinear ql = c.ql;
    ql.prefix = "model.layers.0.self_attn.q_proj";
    ql.bias.resize(24);
    for (int r = 0; r < 24; ++r) ql.bias[r] = 0.01f * float(r - 12);
    std::map<std::string, model::TensorData> t;
    for (auto& [n, v] : encode_linear(CheckpointFormat::kCompressedTensors, model::DType::kF32, ql))
      t[n] = std::move(v);
    formats_testing::write_folder(tmp / "q", t, quantization_config(CheckpointFormat::kCompressedTensors, ql, {}));
    const model::Checkpoint ck(tmp / "q");
    const json qc = json::parse(qsweep::testing::read_file(tmp / "q/config.json"))["quantization_config"];
    const QuantizedLinear dec = decode_linear(ck, ql.prefix, 24, 32, qc);
    const std::unique_ptr<model::Linear> l = gpu_engine_linear_loader()(ck, ql.prefix, 24, 32, true);
    const auto* a = dynamic_cast<const model::ActQuantizedLinear*>(l.get());
    ASSERT_NE(a, nullptr);
    const model::ActQuantizedLinear::Data& d = a->data();
    EXPECT_EQ(d.act, c.act);
    ASSERT_EQ(d.out, 24);
    ASSERT_EQ(d.in, 32);
    for (int r = 0; r < 24; ++r) {
      EXPECT_EQ(d.w_scale[r], dec.weight.scale(r, 0));
      for (int k = 0; k < 32; ++k) {
        const int code = int(dec.weight.codes(r, k));
        const uint8_t want = dec.type == WeightType::kInt ? uint8_t(int8_t(code - 128)) : uint8_t(code);
        ASSERT_EQ(d.codes[size_t(r) * 32 + k], want) << r << ", " << k;
      }
    }
    EXPECT_EQ(d.input_scale, dec.input_scale);
    EXPECT_EQ(d.bias, dec.bias);
    // forward() is the CPU kernel of the decoded layer.
    std::vector<float> x(3 * 32), y(3 * 24), want(3 * 24);
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * float(i)) * 2.0f;
    l->forward(x.data(), y.data(), 3);
    QuantizedLinearKernel(dec).forward(x.data(), want.data(), 3);
    EXPECT_EQ(y, want);
  }
}

}  // namespace
}  // namespace qsweep::quant
