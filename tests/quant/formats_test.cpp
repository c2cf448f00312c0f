// On-disk formats of quantized Linears (quant/formats/format.h, SPECS.md A5):
// golden packing, encode -> safetensors -> decode round trips (bit for bit),
// refusals, hostile tensors, and run-time activation quantization numerics.
#include "quant/formats/format.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "model/checkpoint/checkpoint.h"
#include "quant/formats/activation_quant.h"
#include "quant/fp8.h"
#include "tests/quant/formats_testutil.h"
#include "tests/quant/golden.h"
#include "tests/testutil.h"

namespace qsweep::quant {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace qsweep::quant::formats_testing;

// ---- golden packing --------------------------------------------------------

TEST(CtPack, GoldenExampleWords) {
  const json& g = testing::golden();
  if (g.is_null()) GTEST_SKIP() << "quant_golden.json not found";
  const json& ex = g["ct_pack_example"];
  const std::vector<int> in = ex["input_int4"].get<std::vector<int>>();
  QuantizedLinear ql;
  ql.prefix = "p";
  ql.bits = 4;
  ql.strategy = WeightStrategy::kChannel;
  ql.sym = true;
  ql.weight = QuantizedWeight::sized(1, int(in.size()), 4, -1);
  for (size_t j = 0; j < in.size(); ++j) ql.weight.codes(0, j) = in[j] + 8;
  ql.weight.scale.setConstant(1.0f);
  ql.weight.zero.setConstant(8.0f);
  ql.weight.q = ql.weight.codes.cast<float>().array() - 8.0f;
  const auto t = encode_linear(CheckpointFormat::kCompressedTensors, model::DType::kF32, ql);
  const model::TensorData& p = t.at("p.weight_packed");
  ASSERT_EQ(p.shape, (std::vector<int64_t>{1, 2}));
  uint32_t w[2];
  std::memcpy(w, p.bytes.data(), 8);
  const auto hex = ex["packed_hex"].get<std::vector<std::string>>();
  EXPECT_EQ(testing::hex32(w[0]), hex[0]);
  EXPECT_EQ(testing::hex32(w[1]), hex[1]);
  EXPECT_EQ(int32_t(w[0]), ex["as_int32"][0].get<int32_t>());
  EXPECT_EQ(t.count("p.weight_zero_point"), 0u);  // symmetric: no zero points
  EXPECT_EQ(t.count("p.weight_g_idx"), 0u);
}

TEST(CtPack, AsymZeroPointsPackedAlongN) {
  // 10 rows, 2 groups of 32: zero points [ceil(10/8), 2], row r at nibble r % 8.
  QuantizedLinear ql = make_int(10, 64, 4, false, 32, 5);
  const auto t = encode_linear(CheckpointFormat::kCompressedTensors, model::DType::kBF16, ql);
  const model::TensorData& z = t.at(ql.prefix + ".weight_zero_point");
  ASSERT_EQ(z.shape, (std::vector<int64_t>{2, 2}));
  std::vector<uint32_t> words(4);
  std::memcpy(words.data(), z.bytes.data(), 16);
  for (int r = 0; r < 10; ++r)
    for (int g = 0; g < 2; ++g)
      EXPECT_EQ(int((words[(r / 8) * 2 + g] >> (4 * (r % 8))) & 15), int(ql.weight.zero(r, g)));
  EXPECT_EQ(t.at(ql.prefix + ".weight_scale").dtype, model::DType::kBF16);
  EXPECT_EQ(t.at(ql.prefix + ".weight_packed").shape, (std::vector<int64_t>{10, 8}));
}

// ---- round trips -----------------------------------------------------------

struct Case {
  std::string name;
  CheckpointFormat format;
  model::DType dtype;
  QuantizedLinear ql;
};

std::vector<Case> round_trip_cases() {
  std::vector<Case> cs;
  const auto CT = CheckpointFormat::kCompressedTensors;
  const auto GPTQ = CheckpointFormat::kGptq;
  const auto AWQ = CheckpointFormat::kAwq;
  uint32_t seed = 100;
  for (int bits : {4, 8})
    for (bool sym : {true, false})
      for (int group : {32, 64, 128, -1}) {
        const std::string n = "int" + std::to_string(bits) + (sym ? "_sym_g" : "_asym_g") +
                              std::to_string(group);
        cs.push_back({"gptq_" + n, GPTQ, model::DType::kF16, make_int(64, 256, bits, sym, group, ++seed)});
        cs.push_back({"ct_" + n, CT, model::DType::kBF16, make_int(64, 256, bits, sym, group, ++seed)});
        if (bits == 4 && group != -1)
          cs.push_back({"awq_" + n, AWQ, model::DType::kF16, make_int(64, 256, 4, sym, group, ++seed)});
      }
  // act-order
  cs.push_back({"gptq_actorder_sym_g32", GPTQ, model::DType::kF16, make_int(64, 256, 4, true, 32, ++seed, true)});
  cs.push_back({"gptq_actorder_asym_g64", GPTQ, model::DType::kF16, make_int(64, 256, 4, false, 64, ++seed, true)});
  cs.push_back({"ct_actorder_sym_g32", CT, model::DType::kF16, make_int(64, 256, 4, true, 32, ++seed, true)});
  cs.push_back({"ct_actorder_asym_g128_8bit", CT, model::DType::kF32, make_int(64, 256, 8, false, 128, ++seed, true)});
  // odd shapes compressed-tensors can store (K not a multiple of 8, N not of 8)
  cs.push_back({"ct_int4_asym_channel_odd", CT, model::DType::kBF16, make_int(13, 100, 4, false, -1, ++seed)});
  // W8A8 int8
  cs.push_back({"ct_w8a8_channel", CT, model::DType::kBF16, make_w8a8(64, 256, false, ++seed)});
  cs.push_back({"ct_w8a8_tensor", CT, model::DType::kF16, make_w8a8(64, 256, true, ++seed)});
  // fp8
  for (bool tensor : {true, false})
    for (ActQuant a : {ActQuant::kNone, ActQuant::kFp8TokenDynamic, ActQuant::kFp8TensorStatic})
      cs.push_back({std::string("ct_fp8_") + (tensor ? "tensor_" : "channel_") + act_quant_name(a), CT,
                    model::DType::kBF16, make_fp8(64, 256, tensor, a, ++seed)});
  // bias on a few
  for (size_t i = 0; i < cs.size(); i += 3) {
    std::mt19937 rng{uint32_t(i)};
    std::normal_distribution<float> d(0.0f, 0.3f);
    cs[i].ql.bias.resize(cs[i].ql.out_features());
    for (float& b : cs[i].ql.bias) b = d(rng);
  }
  return cs;
}

void expect_same(const QuantizedLinear& a, const QuantizedLinear& b, const std::string& name) {
  SCOPED_TRACE(name);
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.bits, b.bits);
  EXPECT_EQ(a.strategy, b.strategy);
  EXPECT_EQ(a.sym, b.sym);
  EXPECT_EQ(a.act_order, b.act_order);
  EXPECT_EQ(a.act, b.act);
  EXPECT_EQ(a.weight.group_size, b.weight.group_size);
  ASSERT_EQ(a.weight.codes.rows(), b.weight.codes.rows());
  ASSERT_EQ(a.weight.codes.cols(), b.weight.codes.cols());
  EXPECT_EQ((a.weight.codes.array() != b.weight.codes.array()).count(), 0) << "codes";
  EXPECT_EQ(a.weight.g_idx, b.weight.g_idx);
  ASSERT_EQ(a.weight.scale.cols(), b.weight.scale.cols());
  EXPECT_EQ((a.weight.scale.array() != b.weight.scale.array()).count(), 0) << "scales";
  if (a.type == WeightType::kInt) {
    EXPECT_EQ((a.weight.zero.array() != b.weight.zero.array()).count(), 0) << "zeros";
  }
  ASSERT_EQ(a.weight.q.size(), b.weight.q.size());
  EXPECT_EQ(std::memcmp(a.weight.q.data(), b.weight.q.data(), sizeof(float) * a.weight.q.size()), 0)
      << "q not bit-identical";
  EXPECT_EQ(a.input_scale, b.input_scale);
  EXPECT_EQ(a.bias, b.bias);
}

TEST(Formats, RoundTripBitExact) {
  qsweep::testing::TempDir tmp;
  for (Case& c : round_trip_cases()) {
    SCOPED_TRACE(c.name);
    ASSERT_EQ(check_format_supports(c.format, c.ql), "");
    finalize_for_format(c.format, c.dtype, &c.ql);
    const fs::path dir = tmp / c.name;
    const json qc = quantization_config(c.format, c.ql, {"model.layers.1.mlp.down_proj"},
                                        {{"damp_percent", 0.1}});
    write_folder(dir, encode_linear(c.format, c.dtype, c.ql), qc);
    const model::Checkpoint ck(dir);
    EXPECT_TRUE(has_quantized_linear(c.format, ck, c.ql.prefix));
    const json reread = json::parse(qc.dump());
    EXPECT_EQ(detect_format(reread), c.format);
    const QuantizedLinear d = decode_linear(ck, c.ql.prefix, c.ql.out_features(),
                                            c.ql.in_features(), reread);
    expect_same(c.ql, d, c.name);
  }
}

TEST(Formats, QuantizationConfigFields) {
  const QuantizedLinear g = make_int(64, 256, 4, true, 128, 1, true);
  json qc = quantization_config(CheckpointFormat::kGptq, g, {"lm_head", "model.layers.1.mlp.down_proj"},
                                {{"damp_percent", 0.1}});
  EXPECT_EQ(qc["quant_method"], "gptq");
  EXPECT_EQ(qc["bits"], 4);
  EXPECT_EQ(qc["group_size"], 128);
  EXPECT_EQ(qc["desc_act"], true);
  EXPECT_EQ(qc["sym"], true);
  EXPECT_EQ(qc["static_groups"], false);
  EXPECT_EQ(qc["true_sequential"], true);
  EXPECT_EQ(qc["checkpoint_format"], "gptq");
  EXPECT_DOUBLE_EQ(qc["damp_percent"].get<double>(), 0.1);
  EXPECT_TRUE(qc["dynamic"].contains("-:model\\.layers\\.1\\.mlp\\.down_proj$"));

  qc = quantization_config(CheckpointFormat::kAwq, make_int(64, 256, 4, false, 128, 2), {});
  EXPECT_EQ(qc, json::parse(R"({"quant_method": "awq", "zero_point": true, "group_size": 128,
      "bits": 4, "version": "gemm", "modules_to_not_convert": null})"));

  qc = quantization_config(CheckpointFormat::kCompressedTensors, make_int(64, 256, 4, true, 128, 3),
                           {"model.layers.0.self_attn.q_proj"});
  EXPECT_EQ(qc["format"], "pack-quantized");
  EXPECT_EQ(qc["quantization_status"], "compressed");
  EXPECT_EQ(qc["ignore"], json::array({"lm_head", "model.layers.0.self_attn.q_proj"}));
  EXPECT_TRUE(qc["kv_cache_scheme"].is_null());
  const json& w = qc["config_groups"]["group_0"]["weights"];
  EXPECT_EQ(w["num_bits"], 4);
  EXPECT_EQ(w["type"], "int");
  EXPECT_EQ(w["strategy"], "group");
  EXPECT_EQ(w["group_size"], 128);
  EXPECT_TRUE(w["actorder"].is_null());
  EXPECT_EQ(w["observer"], "minmax");
  EXPECT_TRUE(qc["config_groups"]["group_0"]["input_activations"].is_null());

  qc = quantization_config(CheckpointFormat::kCompressedTensors, make_w8a8(64, 256, false, 4), {});
  EXPECT_EQ(qc["format"], "int-quantized");
  const json& ia = qc["config_groups"]["group_0"]["input_activations"];
  EXPECT_EQ(ia["type"], "int");
  EXPECT_EQ(ia["strategy"], "token");
  EXPECT_EQ(ia["dynamic"], true);
  EXPECT_EQ(qc["config_groups"]["group_0"]["weights"]["strategy"], "channel");
  EXPECT_TRUE(qc["config_groups"]["group_0"]["weights"]["group_size"].is_null());

  qc = quantization_config(CheckpointFormat::kCompressedTensors,
                           make_fp8(64, 256, true, ActQuant::kFp8TensorStatic, 5), {});
  EXPECT_EQ(qc["format"], "float-quantized");
  EXPECT_EQ(qc["config_groups"]["group_0"]["input_activations"]["strategy"], "tensor");
  EXPECT_EQ(qc["config_groups"]["group_0"]["input_activations"]["dynamic"], false);
  qc = quantization_config(CheckpointFormat::kCompressedTensors,
                           make_fp8(64, 256, false, ActQuant::kNone, 6), {});
  EXPECT_EQ(qc["format"], "naive-quantized");  // llm-compressor: fp8 weight-only

  EXPECT_EQ(parse_checkpoint_format("awq"), CheckpointFormat::kAwq);
  EXPECT_THROW(parse_checkpoint_format("exl2"), std::runtime_error);
  EXPECT_FALSE(detect_format(json::parse(R"({"quantization_config": {"quant_method": "fp8"}})")));
  EXPECT_EQ(detect_format(json::parse(R"({"quantization_config": {"quant_method": "gptq"}})")),
            CheckpointFormat::kGptq);
}

// ---- refusals ----------------------------------------------------------------

void expect_refused(CheckpointFormat f, const QuantizedLinear& ql, const std::string& needle) {
  const std::string r = check_format_supports(f, ql);
  EXPECT_NE(r.find(needle), std::string::npos) << "reason: '" << r << "', wanted '" << needle << "'";
  EXPECT_NE(r.find(ql.prefix), std::string::npos) << r;
  try {
    encode_linear(f, model::DType::kF16, ql);
    ADD_FAILURE() << "encode_linear accepted: " << needle;
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), r);
  }
}

TEST(Formats, Refusals) {
  const auto CT = CheckpointFormat::kCompressedTensors;
  const auto GPTQ = CheckpointFormat::kGptq;
  const auto AWQ = CheckpointFormat::kAwq;
  const QuantizedLinear fp8 = make_fp8(64, 256, false, ActQuant::kFp8TokenDynamic, 1);
  const QuantizedLinear w8a8 = make_w8a8(64, 256, false, 2);
  expect_refused(GPTQ, fp8, "integer weights");
  expect_refused(AWQ, fp8, "integer weights");
  expect_refused(GPTQ, w8a8, "activation quantization");
  expect_refused(AWQ, w8a8, "activation quantization");
  expect_refused(GPTQ, weight_only(make_w8a8(64, 256, true, 3)), "group or channel");
  expect_refused(GPTQ, make_int(20, 256, 4, true, 32, 4), "multiples of 8");
  expect_refused(GPTQ, make_int(64, 102, 8, true, -1, 4), "multiples of 4");
  {
    QuantizedLinear z = make_int(64, 256, 4, false, 32, 5);
    z.weight.zero(3, 1) = 0;
    expect_refused(GPTQ, z, "zero point 0");
  }
  expect_refused(AWQ, make_int(64, 256, 8, false, 128, 6), "4-bit");
  expect_refused(AWQ, make_int(64, 256, 4, false, -1, 7), "group strategy");
  expect_refused(AWQ, make_int(64, 256, 4, false, 32, 8, true), "act-order");
  expect_refused(AWQ, make_int(12, 256, 4, false, 32, 9), "multiple of 8");
  expect_refused(CT, weight_only(make_w8a8(64, 256, true, 10)), "channel or group");
  {
    QuantizedLinear g = make_fp8(64, 256, false, ActQuant::kNone, 11);
    g.strategy = WeightStrategy::kGroup;
    g.weight = make_int(64, 256, 8, true, 32, 11).weight;
    g.weight.codes.setConstant(0x38);
    expect_refused(CT, g, "tensor or channel");
  }
  {
    QuantizedLinear a = make_int(64, 256, 4, true, -1, 12);
    a.act = ActQuant::kInt8TokenDynamic;
    expect_refused(CT, a, "int8 weights");
    QuantizedLinear b = make_int(64, 256, 8, false, -1, 13);
    b.act = ActQuant::kInt8TokenDynamic;
    expect_refused(CT, b, "symmetric");
    QuantizedLinear c = make_int(64, 256, 8, true, 64, 14);
    c.act = ActQuant::kInt8TokenDynamic;
    expect_refused(CT, c, "not groups");
    QuantizedLinear d = make_int(64, 256, 8, true, -1, 15);
    d.act = ActQuant::kFp8TokenDynamic;
    expect_refused(CT, d, "fp8 weights");
    QuantizedLinear e = make_int(64, 256, 4, true, 32, 16, true);
    e.act = ActQuant::kInt8TokenDynamic;
    expect_refused(CT, e, "act-order");
    QuantizedLinear s = make_int(64, 256, 4, true, 32, 17);
    s.weight.zero(0, 0) = 7;
    expect_refused(CT, s, "sym is set");
    expect_refused(CT, make_int(64, 96, 4, true, 64, 18), "multiple of group_size");
    QuantizedLinear st = make_fp8(64, 256, true, ActQuant::kFp8TensorStatic, 19);
    st.input_scale = 0;
    expect_refused(CT, st, "input_scale");
    QuantizedLinear gi = make_int(64, 256, 4, true, 32, 20);
    gi.weight.g_idx[5] = 8;
    expect_refused(GPTQ, gi, "g_idx");
  }
  // finalize: a scale beyond fp16
  QuantizedLinear big = make_int(64, 256, 4, true, 32, 21);
  big.weight.scale(0, 0) = 1e6f;
  EXPECT_THROW(finalize_for_format(GPTQ, model::DType::kBF16, &big), std::runtime_error);
  EXPECT_NO_THROW(finalize_for_format(CT, model::DType::kBF16, &big));
}

// ---- hostile tensors -----------------------------------------------------------

void expect_decode_error(const fs::path& dir, const QuantizedLinear& ql, const json& qc,
                         const std::string& needle) {
  try {
    const model::Checkpoint ck(dir);
    decode_linear(ck, ql.prefix, ql.out_features(), ql.in_features(), qc);
    ADD_FAILURE() << "decode accepted a hostile " << needle;
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Formats, HostileTensors) {
  qsweep::testing::TempDir tmp;
  using T = std::map<std::string, model::TensorData>;
  auto run = [&](CheckpointFormat f, QuantizedLinear ql, const std::string& tensor,
                 const std::function<void(T&)>& mutate, const std::string& tag) {
    SCOPED_TRACE(tag);
    finalize_for_format(f, model::DType::kF16, &ql);
    T t = encode_linear(f, model::DType::kF16, ql);
    mutate(t);
    const json qc = quantization_config(f, ql, {});
    const fs::path dir = tmp / tag;
    write_folder(dir, t, qc);
    expect_decode_error(dir, ql, qc, ql.prefix + "." + tensor);
  };
  const auto CT = CheckpointFormat::kCompressedTensors;
  const auto GPTQ = CheckpointFormat::kGptq;
  const auto AWQ = CheckpointFormat::kAwq;
  const QuantizedLinear i4 = make_int(64, 256, 4, false, 32, 1, true);
  const std::string P = i4.prefix;
  run(CT, i4, "weight_scale", [&](T& t) { t[P + ".weight_scale"].dtype = model::DType::kI16; }, "ct_scale_dtype");
  run(CT, i4, "weight_packed", [&](T& t) {
    auto& p = t[P + ".weight_packed"];
    p.shape = {32, 64};
  }, "ct_packed_shape");
  run(CT, i4, "weight_g_idx", [&](T& t) {
    int32_t bad = 99;
    std::memcpy(t[P + ".weight_g_idx"].bytes.data() + 8, &bad, 4);
  }, "ct_gidx_range");
  run(CT, i4, "weight_zero_point", [&](T& t) { t.erase(P + ".weight_zero_point"); }, "ct_zp_missing");
  run(CT, i4, "weight_shape", [&](T& t) {
    int32_t bad = 65;
    std::memcpy(t[P + ".weight_shape"].bytes.data(), &bad, 4);
  }, "ct_weight_shape");
  run(CT, i4, "weight_scale", [&](T& t) {
    const uint16_t nan = 0x7e00;
    std::memcpy(t[P + ".weight_scale"].bytes.data() + 6, &nan, 2);
  }, "ct_scale_nan");
  run(GPTQ, i4, "g_idx", [&](T& t) {
    int32_t bad = -1;
    std::memcpy(t[P + ".g_idx"].bytes.data() + 40, &bad, 4);
  }, "gptq_gidx_range");
  run(GPTQ, i4, "qzeros", [&](T& t) { t[P + ".qzeros"].dtype = model::DType::kF32; }, "gptq_qzeros_dtype");
  const QuantizedLinear a4 = make_int(64, 256, 4, false, 64, 2);
  run(AWQ, a4, "qweight", [&](T& t) {
    auto& q = t[P + ".qweight"];
    q.shape = {128, 16};
  }, "awq_qweight_shape");
  run(AWQ, a4, "scales", [&](T& t) {
    const uint16_t inf = 0x7c00;
    std::memcpy(t[P + ".scales"].bytes.data(), &inf, 2);
  }, "awq_scale_inf");
  const QuantizedLinear f8 = make_fp8(64, 256, false, ActQuant::kFp8TensorStatic, 3);
  run(CT, f8, "weight", [&](T& t) { t[P + ".weight"].bytes[17] = 0x7F; }, "fp8_nan_code");
  run(CT, f8, "input_scale", [&](T& t) { t.erase(P + ".input_scale"); }, "fp8_input_scale_missing");
  run(CT, f8, "weight", [&](T& t) { t[P + ".weight"].dtype = model::DType::kU8; }, "fp8_weight_dtype");
  const QuantizedLinear w8 = make_w8a8(64, 256, false, 4);
  run(CT, w8, "weight_scale", [&](T& t) { t[P + ".weight_scale"].shape = {1, 64}; }, "w8a8_scale_shape");
  run(CT, w8, "bias", [&](T& t) {
    std::vector<float> b(3, 0.0f);
    t[P + ".bias"] = model::make_f32_tensor({3}, b.data());
  }, "bias_shape");
}

// ---- activation quantization numerics ------------------------------------------

TEST(ActivationQuant, Int8RoundHalfEvenAndSaturation) {
  EXPECT_EQ(float_to_int8_rn(2.5f), 2);
  EXPECT_EQ(float_to_int8_rn(3.5f), 4);
  EXPECT_EQ(float_to_int8_rn(-2.5f), -2);
  EXPECT_EQ(float_to_int8_rn(-0.5f), 0);
  EXPECT_EQ(float_to_int8_rn(127.4f), 127);
  EXPECT_EQ(float_to_int8_rn(127.6f), 127);
  EXPECT_EQ(float_to_int8_rn(1000.0f), 127);
  EXPECT_EQ(float_to_int8_rn(-128.4f), -128);
  EXPECT_EQ(float_to_int8_rn(-128.6f), -128);
  EXPECT_EQ(float_to_int8_rn(-1e9f), -128);
  EXPECT_EQ(float_to_int8_rn(std::nanf("")), 0);

  // absmax 127 -> multiplier 1: ties of x itself round to even
  const float x[] = {2.5f, -3.5f, 127.0f, -127.0f, 0.5f, 1.5f};
  int8_t q[6];
  const float s = quantize_row_int8(x, 6, q);
  EXPECT_EQ(s, 1.0f);
  EXPECT_EQ(std::vector<int>(q, q + 6), (std::vector<int>{2, -4, 127, -127, 0, 2}));
  // multiplier 127/absmax then round: 0.5 * 127 = 63.5 -> 64 (even)
  const float y[] = {1.0f, 0.5f, -1.0f, 0.25f};
  const float s2 = quantize_row_int8(y, 4, q);
  EXPECT_EQ(s2, 1.0f / 127.0f);
  EXPECT_EQ(std::vector<int>(q, q + 4), (std::vector<int>{127, 64, -127, 32}));
  // all-zero row: scale 0, codes 0
  const float z[] = {0.0f, -0.0f, 0.0f};
  q[0] = q[1] = q[2] = 9;
  EXPECT_EQ(quantize_row_int8(z, 3, q), 0.0f);
  EXPECT_EQ(std::vector<int>(q, q + 3), (std::vector<int>{0, 0, 0}));
}

TEST(ActivationQuant, Fp8DynamicMinScaleAndStaticClamp) {
  uint8_t q[4];
  const float zero[] = {0.0f, 0.0f, 0.0f, 0.0f};
  EXPECT_EQ(quantize_row_fp8_dynamic(zero, 4, q), 1.0f / (448.0f * 512.0f));
  EXPECT_EQ(quantize_row_fp8_dynamic(zero, 4, q), kFp8MinScale);
  for (uint8_t c : q) EXPECT_EQ(c, 0);
  const float tiny[] = {1e-9f, -1e-9f, 0.0f, 0.0f};
  EXPECT_EQ(quantize_row_fp8_dynamic(tiny, 4, q), kFp8MinScale);
  // absmax 896 -> scale 2; the absmax element maps to 448 (0x7E)
  const float big[] = {896.0f, -896.0f, 1.0f, 3.0f};
  EXPECT_EQ(quantize_row_fp8_dynamic(big, 4, q), 2.0f);
  EXPECT_EQ(q[0], 0x7E);
  EXPECT_EQ(q[1], 0xFE);
  EXPECT_EQ(q[2], f32_to_e4m3fn(0.5f));
  EXPECT_EQ(q[3], f32_to_e4m3fn(1.5f));
  // static: clamped to +-448 before the cast (never NaN)
  const float st[] = {1000.0f, -470.0f, 464.5f, 0.3f};
  quantize_row_fp8_static(st, 4, 1.0f, q);
  EXPECT_EQ(q[0], 0x7E);
  EXPECT_EQ(q[1], 0xFE);
  EXPECT_EQ(q[2], 0x7E);
  EXPECT_EQ(q[3], 42);  // 0.3 -> 0.3125 (SPECS A4.1 golden)
}

}  // namespace
}  // namespace qsweep::quant
