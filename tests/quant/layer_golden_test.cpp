// An independent golden case (issue #4): qsweep's layer-streaming GPTQ and
// AWQ (quant/quantize_model.h) against a PyTorch implementation of
// ../shared/docs/SPECS.md part A written separately
// (scripts/fixtures/make_layer_golden.py, run on the GPU machine; fixture in
// tests/fixtures/quant_layer_golden/, see tests/fixtures/README.md).
//
// The two synthetic Llama models (2 layers, hidden 128, GQA 8/2 heads and MHA
// 8/8) are regenerated here bit for bit from the script's counter-based
// generator and checked against its checksums; the calibration ids come from
// golden.json. Each configuration runs quantize_model as the quantize stage
// does (compressed-tensors, fp32 scales) and compares every Linear.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "model/checkpoint/checkpoint.h"
#include "model/checkpoint/safetensors.h"
#include "quant/quantize_model.h"
#include "tests/testutil.h"

namespace qsweep::quant {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path fixture_dir() {
  return fs::path(QSWEEP_QUANT_TEST_SOURCE_DIR) / "tests/fixtures/quant_layer_golden";
}

// ---- the script's generator (make_layer_golden.py: gen, make_weights) ------

uint64_t mix64(uint64_t x) {
  uint64_t z = x + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::vector<float> gen(uint64_t seed, size_t n, double mean, double std) {
  std::vector<float> out(n);
  const double c = std * std::sqrt(3.0);
  for (size_t i = 0; i < n; ++i) {
    uint64_t s = 0;
    for (uint64_t j = 0; j < 4; ++j) s += mix64((seed << 40) + 4 * i + j) >> 40;
    const double v = (double(s) - 33554432.0) / 16777216.0;
    volatile double p = v * c;  // no fused multiply-add: numpy rounds the product
    out[i] = float(mean + p);
  }
  return out;
}

struct Dims {
  int hidden = 128, inter = 256, heads = 8, head_dim = 16, vocab = 512, layers = 2;
};

std::map<std::string, model::TensorData> make_weights(int n_kv) {
  const Dims d;
  const int kvd = n_kv * d.head_dim;
  const char* names[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                          "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                          "mlp.down_proj"};
  const int rows[7] = {d.heads * d.head_dim, kvd, kvd, d.hidden, d.inter, d.inter, d.hidden};
  const int cols[7] = {d.hidden, d.hidden, d.hidden, d.heads * d.head_dim,
                       d.hidden, d.hidden, d.inter};
  const double stds[7] = {0.06, 0.06, 0.02, 0.02, 0.02, 0.02, 0.02};
  std::map<std::string, model::TensorData> t;
  auto put = [&](const std::string& name, std::vector<int64_t> shape, const std::vector<float>& v) {
    t[name] = model::make_f32_tensor(std::move(shape), v.data());
  };
  put("model.embed_tokens.weight", {d.vocab, d.hidden},
      gen(1, size_t(d.vocab) * d.hidden, 0.0, 0.02));
  put("lm_head.weight", {d.vocab, d.hidden}, gen(2, size_t(d.vocab) * d.hidden, 0.0, 0.02));
  put("model.norm.weight", {d.hidden}, gen(3, d.hidden, 1.0, 0.1));
  for (int l = 0; l < d.layers; ++l) {
    const uint64_t base = 100 + 16 * l;
    const std::string P = "model.layers." + std::to_string(l) + ".";
    for (int i = 0; i < 7; ++i) {
      std::vector<float> a = gen(base + i, size_t(rows[i]) * cols[i], 0.0, stds[i]);
      for (int r = 0; r < rows[i]; ++r)
        for (int c = 0; c < cols[i]; ++c) {
          float& x = a[size_t(r) * cols[i] + c];
          if (c % 37 == 5) x *= 4.0f;
          if (i == 5 && r % 41 == 7) x *= 4.0f;  // up_proj outlier rows
        }
      put(P + names[i] + ".weight", {rows[i], cols[i]}, a);
    }
    for (int i = 7; i < 9; ++i) {
      std::vector<float> a = gen(base + i, d.hidden, 1.0, 0.1);
      for (int c = 0; c < d.hidden; ++c)
        if (c % 29 == 3) a[c] *= 8.0f;
      put(P + (i == 7 ? "input_layernorm.weight" : "post_attention_layernorm.weight"), {d.hidden},
          a);
    }
  }
  return t;
}

uint64_t bitsum(const model::TensorData& t) {
  uint64_t s = 0;
  for (size_t i = 0; i < t.bytes.size() / 4; ++i) {
    uint32_t b;
    std::memcpy(&b, t.bytes.data() + 4 * i, 4);
    s += uint64_t(b) * uint64_t(i + 1);
  }
  return s;
}

// ---- the fixture -----------------------------------------------------------

const json& golden() {
  static const json j = json::parse(qsweep::testing::read_file(fixture_dir() / "golden.json"));
  return j;
}

std::vector<std::vector<int>> calibration_ids() {
  return golden()["calibration"]["ids"].get<std::vector<std::vector<int>>>();
}

// The model folder `variant` ("gqa" or "mha") written into `dir`, checked
// against the script's checksums.
void write_model(const std::string& variant, const fs::path& dir) {
  fs::create_directories(dir);
  fs::copy_file(fixture_dir() / variant / "config.json", dir / "config.json");
  const auto t = make_weights(variant == "gqa" ? 2 : 8);
  const json& want = golden()["models"][variant];
  ASSERT_EQ(t.size(), want.size());
  for (const auto& [name, td] : t) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(bitsum(td)));
    ASSERT_EQ(std::string(hex), want.at(name)["bitsum"].get<std::string>())
        << name << ": the C++ port of the generator differs from make_layer_golden.py";
  }
  model::write_safetensors(dir / "model.safetensors", t, {{"format", "pt"}});
}

const model::SafetensorsFile& golden_tensors() {
  static const model::SafetensorsFile f(fixture_dir() / "golden.safetensors");
  return f;
}

Eigen::MatrixXi ref_codes(const std::string& key, int n, int k) {
  const model::TensorView* v = golden_tensors().find(key + ".codes");
  EXPECT_TRUE(v) << key;
  Eigen::MatrixXi c(n, k);
  for (int r = 0; r < n; ++r)
    for (int j = 0; j < k; j += 2) {
      const uint8_t b = v->data[size_t(r) * (k / 2) + j / 2];
      c(r, j) = b & 15;
      c(r, j + 1) = b >> 4;
    }
  return c;
}

Eigen::MatrixXf ref_float(const std::string& key, int n, int m) {
  const model::TensorView* v = golden_tensors().find(key);
  EXPECT_TRUE(v && v->dtype == model::DType::kF32 && v->n_bytes == size_t(n) * m * 4) << key;
  Eigen::MatrixXf x(n, m);
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < m; ++c) std::memcpy(&x(r, c), v->data + (size_t(r) * m + c) * 4, 4);
  return x;
}

Eigen::MatrixXi ref_u8(const std::string& key, int n, int m) {
  const model::TensorView* v = golden_tensors().find(key);
  EXPECT_TRUE(v && v->n_bytes == size_t(n) * m) << key;
  Eigen::MatrixXi x(n, m);
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < m; ++c) x(r, c) = v->data[size_t(r) * m + c];
  return x;
}

struct Agreement {
  long same = 0, total = 0;
  double rate() const { return total ? double(same) / double(total) : 1.0; }
};

class LayerGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(LayerGolden, QsweepMatchesTheIndependentImplementation) {
  const std::string name = GetParam();
  const json& cj = golden()["configs"][name];
  const std::string method = cj["method"];
  const int G = cj["group_size"];
  qsweep::testing::TempDir tmp;
  write_model(cj["model"], tmp / "src");
  if (HasFatalFailure()) return;
  const model::Checkpoint src(tmp / "src");

  QuantizeModelJob job;
  job.recipe.method = method == "gptq" ? LayerRecipe::Method::kGptq : LayerRecipe::Method::kAwq;
  job.recipe.bits = 4;
  job.recipe.group_size = G;
  job.recipe.sym = cj["sym"];
  job.recipe.gptq.act_order = cj["act_order"];
  job.recipe.gptq_record_error = true;
  job.calibration = calibration_ids();
  if (const char* b = std::getenv("QSWEEP_GOLDEN_BATCH_ROWS")) job.max_batch_rows = std::atoi(b);
  prepare_format(job, src, CheckpointFormat::kCompressedTensors, false, json::object());
  std::map<std::string, QuantizedLinear> seen;
  auto enc = job.encode;
  job.encode = [enc, &seen](const QuantizedLinear& q) {
    seen[q.prefix] = q;
    return enc(q);
  };
  const QuantizeModelResult res = quantize_model(src, job, tmp / "q");
  ASSERT_EQ(seen.size(), cj["linears"].size());

  std::printf("%s (%s, group %d%s)\n", name.c_str(), method.c_str(), G,
              cj["act_order"].get<bool>() ? ", act-order" : "");
  std::printf("  %-20s %9s %9s %10s %10s %9s\n", "linear", "codes", "q-zero", "scales ok",
              "max scale", "error");
  Agreement codes[2], signed_codes, scales_ok[2];
  double worst_scale_gptq0 = 0.0, worst_scale_unclipped = 0.0, worst_err0 = 0.0;
  long rows_differing0 = 0, groups_zero_tie = 0, groups_clip = 0, groups_other = 0;
  std::map<int, std::pair<double, double>> layer_err;  // layer -> (qsweep, reference)
  for (const auto& [prefix, lj] : cj["linears"].items()) {
    ASSERT_TRUE(seen.count(prefix)) << prefix;
    const QuantizedWeight& w = seen.at(prefix).weight;
    const int n = int(w.codes.rows()), k = int(w.codes.cols()), ng = int(w.scale.cols());
    ASSERT_EQ(n, lj["shape"][0].get<int>()) << prefix;
    ASSERT_EQ(k, lj["shape"][1].get<int>()) << prefix;
    const std::string key = name + "/" + prefix;
    const Eigen::MatrixXi rc = ref_codes(key, n, k);
    const Eigen::MatrixXf rs = ref_float(key + ".scale", n, ng);
    const int layer = prefix.rfind("model.layers.1.", 0) == 0 ? 1 : 0;
    if (std::getenv("QSWEEP_GOLDEN_DEBUG"))
      for (int r = 0; r < n; ++r)
        for (int j = 0; j < k; ++j)
          if (rc(r, j) != w.codes(r, j)) {
            std::printf(
                "    first diff row %d col %d: ref %d qsweep %d, scale ref %.9g qsweep %.9g\n", r,
                j, rc(r, j), w.codes(r, j), rs(r, j / G), w.scale(r, j / G));
            r = n;
            break;
          }
    Agreement a, sc;
    a.same = (rc.array() == w.codes.array()).count();
    a.total = long(rc.size());
    const Eigen::MatrixXf rel = (rs - w.scale).array().abs() / rs.array().abs();
    sc.same = (rel.array() <= 1e-5f).count();
    sc.total = long(rel.size());
    // Codes minus zero point: the integer the dequantized weight holds.
    Agreement sg = a;
    if (method == "awq") {
      const Eigen::MatrixXi rz = ref_u8(key + ".zero", n, ng);
      sg.same = 0;
      for (int r = 0; r < n; ++r)
        for (int gi = 0; gi < ng; ++gi) {
          bool differ = false;
          for (int j = gi * G; j < (gi + 1) * G; ++j) {
            differ |= rc(r, j) != w.codes(r, j);
            sg.same += (rc(r, j) - rz(r, gi)) == (w.codes(r, j) - int(w.zero(r, gi)));
          }
          if (!differ) continue;
          if (rel(r, gi) > 1e-5f)
            ++groups_clip;  // another clip bound: another scale
          else if (rz(r, gi) != int(w.zero(r, gi)))
            ++groups_zero_tie;  // same scale, zero 7 vs 8: -min/scale = 7.5 up to rounding
          else
            ++groups_other;
        }
      if (prefix.find("q_proj") != std::string::npos || prefix.find("k_proj") != std::string::npos)
        worst_scale_unclipped = std::max(worst_scale_unclipped, double(rel.maxCoeff()));
    } else if (layer == 0) {
      worst_scale_gptq0 = std::max(worst_scale_gptq0, double(rel.maxCoeff()));
      for (int r = 0; r < n; ++r)
        rows_differing0 += (rc.row(r).array() != w.codes.row(r).array()).any();
    }
    codes[layer].same += a.same, codes[layer].total += a.total;
    scales_ok[layer].same += sc.same, scales_ok[layer].total += sc.total;
    signed_codes.same += sg.same, signed_codes.total += sg.total;
    char err[32] = "";
    if (method == "gptq") {
      const double e_ref = lj["error"], e_q = res.gptq_errors.at(prefix);
      std::snprintf(err, sizeof err, "%+.3f%%", 100.0 * (e_q - e_ref) / e_ref);
      layer_err[layer].first += e_q;
      layer_err[layer].second += e_ref;
      if (layer == 0) worst_err0 = std::max(worst_err0, std::fabs(e_q - e_ref) / e_ref);
      if (cj["act_order"].get<bool>()) {  // g_idx: permuted groups from the same order
        const model::TensorView* gv = golden_tensors().find(key + ".g_idx");
        ASSERT_TRUE(gv) << key;
        long gsame = 0;
        for (int j = 0; j < k; ++j) {
          int32_t g;
          std::memcpy(&g, gv->data + 4 * j, 4);
          gsame += g == w.g_idx[j];
        }
        EXPECT_EQ(gsame, k) << prefix << ": act-order permutation differs";
      }
    }
    std::printf("  %-20s %8.4f%% %8.4f%% %9.3f%% %10.3g %9s\n", prefix.c_str() + 13,
                100.0 * a.rate(), 100.0 * sg.rate(), 100.0 * sc.rate(), double(rel.maxCoeff()),
                err);
  }
  Agreement all = codes[0];
  all.same += codes[1].same, all.total += codes[1].total;
  std::printf(
      "  codes identical: layer 0 %.4f%%, layer 1 %.4f%%, all %.4f%% (%ld of %ld differ); "
      "code - zero %.4f%%\n  scales within 1e-5: layer 0 %.3f%%, layer 1 %.3f%%\n",
      100.0 * codes[0].rate(), 100.0 * codes[1].rate(), 100.0 * all.rate(), all.total - all.same,
      all.total, 100.0 * signed_codes.rate(), 100.0 * scales_ok[0].rate(),
      100.0 * scales_ok[1].rate());
  for (const auto& [l, e] : layer_err)
    std::printf(
        "  layer %d GPTQ output error (sum over its Linears): qsweep %.6g, reference %.6g "
        "(%+.3f%%)\n",
        l, e.first, e.second, 100.0 * (e.first - e.second) / e.second);
  if (method == "gptq")
    std::printf("  layer 0: %ld row(s) with a differing code\n", rows_differing0);
  else
    std::printf(
        "  groups with a differing code: %ld another clip bound, %ld zero-point tie, %ld other\n",
        groups_clip, groups_zero_tie, groups_other);
  if (method == "awq") {
    for (const auto& [key, m] : cj["mappings"].items()) {
      if (m.value("skipped", false)) {
        EXPECT_EQ(res.awq_ratios.count(key), 0u) << key << ": the v->o mapping must be skipped";
        continue;
      }
      ASSERT_TRUE(res.awq_ratios.count(key)) << key;
      std::printf("  %-26s ratio qsweep %.2f reference %.2f\n", key.c_str(), res.awq_ratios.at(key),
                  m["ratio"].get<double>());
      EXPECT_FLOAT_EQ(res.awq_ratios.at(key), m["ratio"].get<float>()) << key;
    }
  }
  std::fflush(stdout);

  // What holds everywhere: layer 0 (identical inputs on both sides).
  EXPECT_GE(codes[0].rate(), 0.995) << "layer-0 codes";
  if (method == "gptq") {
    EXPECT_LE(worst_scale_gptq0, 1e-5) << "layer-0 scales";
    EXPECT_LE(worst_err0, 0.001) << "layer-0 GPTQ error of a Linear";
    EXPECT_LE(rows_differing0, 2) << "layer-0 rows with a differing code";
    // Layer 1 sees the quantized layer 0 (A1.1). One code flipped by a float
    // near-tie in layer 0 (gqa_gptq_g128: down_proj row 17 column 169; it
    // flips back with 2 sequences per forward instead of 1 or 64) shifts the
    // layer-1 Hessians, and GPTQ's error feedback turns that into 10-16% other
    // codes there. The output error is the stable quantity.
    for (const auto& [l, e] : layer_err)
      EXPECT_LE(std::fabs(e.first - e.second) / e.second, 0.01) << "layer " << l << " GPTQ error";
    EXPECT_GE(all.rate(), 0.9) << "codes overall";
  } else {
    // AWQ propagates fp activations, so layer 1 is as comparable as layer 0.
    // Differences come from two kinds of exact ties that the last bit of
    // W*s (torch.pow vs powf in s) decides: the clip bound clamps a group on
    // both sides, so -min/scale is 7.5 and the zero point 7 or 8; and the
    // clip search's candidates contain such ties, which can move its choice.
    EXPECT_GE(all.rate(), 0.99) << "codes overall";
    EXPECT_GE(signed_codes.rate(), 0.995) << "code - zero overall";
    EXPECT_LE(worst_scale_unclipped, 1e-5) << "q/k (not clipped) scales";
    EXPECT_GE(scales_ok[0].rate(), 0.98) << "layer-0 scales";
    EXPECT_LE(groups_other, 2) << "groups differing with the same scale and zero point";
  }
}

INSTANTIATE_TEST_SUITE_P(All, LayerGolden,
                         ::testing::Values("gqa_gptq_g128", "gqa_gptq_g64_actorder", "gqa_awq_g128",
                                           "mha_awq_g128"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
}  // namespace qsweep::quant
