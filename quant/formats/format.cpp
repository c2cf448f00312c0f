#include "quant/formats/format.h"

#include <cmath>
#include <cstring>
#include <regex>
#include <stdexcept>

#include "quant/awq.h"
#include "quant/fp8.h"
#include "quant/gptq_checkpoint.h"
#include "quant/pack_gptq.h"

namespace qsweep::quant {

using nlohmann::json;

namespace {

// ---- small helpers -------------------------------------------------------


bool is_float_dtype(model::DType t) {
  return t == model::DType::kF32 || t == model::DType::kF16 || t == model::DType::kBF16;
}

/// `x` rounded to `t` (F32, F16 or BF16) and back.
float round_to(model::DType t, float x) {
  switch (t) {
    case model::DType::kF16: return model::f16_to_f32(model::f32_to_f16(x));
    case model::DType::kBF16: return model::bf16_to_f32(model::f32_to_bf16(x));
    default: return x;
  }
}

model::TensorData float_tensor(model::DType t, std::vector<int64_t> shape,
                               const std::vector<float>& v) {
  return model::make_float_tensor(t, std::move(shape), v.data(), v.size());
}

template <class T>
model::TensorData raw_tensor(model::DType t, std::vector<int64_t> shape, const std::vector<T>& v) {
  model::TensorData d{t, std::move(shape), std::vector<uint8_t>(v.size() * sizeof(T))};
  if (!v.empty()) std::memcpy(d.bytes.data(), v.data(), d.bytes.size());
  return d;
}

int mid_zero(int bits) { return 1 << (bits - 1); }

float dequant_int(float scale, int code, float zero) { return scale * (float(code) - zero); }

/// Recomputes q from codes/scale/zero (int) or codes/scale (fp8).
void recompute_q(QuantizedLinear* ql) {
  QuantizedWeight& w = ql->weight;
  const int n = int(w.codes.rows()), k = int(w.codes.cols());
  w.q.resize(n, k);
  for (int j = 0; j < k; ++j) {
    const int g = w.g_idx[j];
    for (int r = 0; r < n; ++r)
      w.q(r, j) = ql->type == WeightType::kFloat8
                      ? w.scale(r, g) * e4m3fn_to_f32(uint8_t(w.codes(r, j)))
                      : dequant_int(w.scale(r, g), w.codes(r, j), w.zero(r, g));
  }
}

// ---- support checks --------------------------------------------------------

/// Shape/range consistency every format needs; "" or the reason.
std::string check_consistent(const QuantizedLinear& ql) {
  const QuantizedWeight& w = ql.weight;
  const int n = int(w.codes.rows()), k = int(w.codes.cols());
  const std::string L = "layer " + ql.prefix + ": ";
  if (n <= 0 || k <= 0) return L + "empty weight";
  if (w.q.rows() != n || w.q.cols() != k || w.scale.rows() != n || int(w.g_idx.size()) != k ||
      w.scale.cols() < 1 || (ql.type == WeightType::kInt && w.zero.rows() != n) ||
      (ql.type == WeightType::kInt && w.zero.cols() != w.scale.cols()))
    return L + "inconsistent QuantizedWeight sizes (codes, q, scale, zero, g_idx)";
  const int n_groups = int(w.scale.cols());
  for (int32_t g : w.g_idx)
    if (g < 0 || g >= n_groups) return L + "g_idx holds a group outside [0, n_groups)";
  if (!w.scale.allFinite()) return L + "a weight scale is not finite";
  if (ql.type == WeightType::kInt) {
    if (ql.bits != 4 && ql.bits != 8) return L + "int weights must have 4 or 8 bits";
    const int maxq = (1 << ql.bits) - 1;
    if (w.codes.minCoeff() < 0 || w.codes.maxCoeff() > maxq)
      return L + "an integer code is outside [0, " + std::to_string(maxq) + "]";
    for (Eigen::Index i = 0; i < w.zero.size(); ++i) {
      const float z = w.zero.data()[i];
      if (!(z >= 0 && z <= float(maxq)) || z != std::nearbyint(z))
        return L + "a zero point is not an integer in [0, " + std::to_string(maxq) + "]";
      if (ql.sym && z != float(mid_zero(ql.bits)))
        return L + "sym is set but a zero point is not " + std::to_string(mid_zero(ql.bits));
    }
  } else {
    if (ql.bits != 8) return L + "fp8 weights must have 8 bits";
    for (Eigen::Index i = 0; i < w.codes.size(); ++i) {
      const int c = w.codes.data()[i];
      if (c < 0 || c > 255 || (c & 0x7F) == 0x7F)
        return L + "an fp8 code is not a finite E4M3FN bit pattern";
    }
  }
  switch (ql.strategy) {
    case WeightStrategy::kGroup:
      if (w.group_size <= 0) return L + "group strategy needs group_size > 0";
      if (k % w.group_size != 0)
        return L + "in_features " + std::to_string(k) + " is not a multiple of group_size " +
               std::to_string(w.group_size) + " (vLLM needs whole groups)";
      if (n_groups != k / w.group_size) return L + "scale has the wrong number of groups";
      break;
    case WeightStrategy::kChannel:
    case WeightStrategy::kTensor:
      if (n_groups != 1 || w.group_size != -1)
        return L + "channel/tensor strategy needs group_size -1 and one scale column";
      if (ql.strategy == WeightStrategy::kTensor && (w.scale.array() != w.scale(0, 0)).any())
        return L + "tensor strategy but the rows have different scales";
      break;
  }
  if (ql.act == ActQuant::kFp8TensorStatic && !(std::isfinite(ql.input_scale) && ql.input_scale > 0))
    return L + "fp8 tensor-static activations need a finite input_scale > 0";
  if (!ql.bias.empty() && int(ql.bias.size()) != n) return L + "bias size is not out_features";
  return {};
}

enum class CtFormat { kPack, kInt, kFloat, kNaive };

const char* ct_format_name(CtFormat f) {
  switch (f) {
    case CtFormat::kPack: return "pack-quantized";
    case CtFormat::kInt: return "int-quantized";
    case CtFormat::kFloat: return "float-quantized";
    case CtFormat::kNaive: return "naive-quantized";
  }
  return "?";
}

/// llm-compressor's format inference (quantization_format.py): weight-only
/// int4/int8 -> pack-quantized, other weight-only -> naive-quantized; with
/// activations: fp8 weights -> float-quantized, int weights -> int-quantized.
CtFormat infer_ct_format(const QuantizedLinear& ql) {
  if (ql.act == ActQuant::kNone)
    return ql.type == WeightType::kInt ? CtFormat::kPack : CtFormat::kNaive;
  return ql.type == WeightType::kFloat8 ? CtFormat::kFloat : CtFormat::kInt;
}

std::string check_ct(const QuantizedLinear& ql) {
  const std::string L = "layer " + ql.prefix + ": compressed-tensors: ";
  const bool natural = natural_g_idx(ql.weight);
  if (ql.act == ActQuant::kNone) {
    if (ql.type == WeightType::kInt) {
      if (ql.strategy == WeightStrategy::kTensor)
        return L + "weight-only int weights need channel or group strategy (vLLM's WNA16 "
                   "kernels have no per-tensor scale)";
      return {};
    }
    if (ql.strategy == WeightStrategy::kGroup)
      return L + "fp8 weights need tensor or channel strategy";
    return {};
  }
  if (!natural) return L + "act-order (g_idx) is only stored for weight-only group quantization";
  if (ql.act == ActQuant::kInt8TokenDynamic) {
    if (ql.type != WeightType::kInt || ql.bits != 8)
      return L + "int8 activations need int8 weights (W8A8)";
    if (!ql.sym) return L + "W8A8 int8 needs symmetric weights (vLLM's int8 GEMM has no weight zero point)";
    if (ql.strategy == WeightStrategy::kGroup)
      return L + "W8A8 int8 needs channel or tensor weight scales, not groups";
    return {};
  }
  // fp8 activations
  if (ql.type != WeightType::kFloat8)
    return L + "fp8 activations need fp8 weights (float-quantized W8A8-FP8)";
  if (ql.strategy == WeightStrategy::kGroup) return L + "fp8 weights need tensor or channel strategy";
  return {};
}

std::string check_gptq_awq(CheckpointFormat f, const QuantizedLinear& ql) {
  const bool awq = f == CheckpointFormat::kAwq;
  const std::string L = "layer " + ql.prefix + (awq ? ": awq: " : ": gptq: ");
  const int n = ql.out_features(), k = ql.in_features();
  if (ql.type != WeightType::kInt) return L + "needs integer weights (fp8: use compressed-tensors)";
  if (ql.act != ActQuant::kNone)
    return L + "cannot store activation quantization (" + act_quant_name(ql.act) +
           "; use compressed-tensors)";
  if (awq) {
    if (ql.bits != 4) return L + "AutoAWQ GEMM stores 4-bit weights only";
    if (ql.strategy != WeightStrategy::kGroup)
      return L + "needs group strategy (vLLM's awq kernel has no group_size -1)";
    if (!natural_g_idx(ql.weight))
      return L + "cannot store act-order g_idx (use gptq or compressed-tensors)";
    if (n % 8 != 0)
      return L + "out_features " + std::to_string(n) + " is not a multiple of 8 (pack factor)";
    return {};
  }
  if (ql.strategy == WeightStrategy::kTensor) return L + "needs group or channel strategy";
  const int per = 32 / ql.bits;
  if (n % per != 0 || k % per != 0)
    return L + "in and out features [" + std::to_string(n) + ", " + std::to_string(k) +
           "] must be multiples of " + std::to_string(per) + " at " + std::to_string(ql.bits) +
           " bits";
  if ((ql.weight.zero.array() == 0.0f).any())
    return L + "an asymmetric group has zero point 0, which the gptq v1 format cannot represent "
               "(decoders add 1; SPECS.md A1.5); use sym: true or compressed-tensors";
  return {};
}

// ---- decode helpers --------------------------------------------------------

[[noreturn]] void fail(const model::Checkpoint& ck, const std::string& tensor,
                       const std::string& what) {
  throw std::runtime_error("model folder " + ck.dir().string() + ": tensor '" + tensor + "' " +
                           what);
}


/// A float tensor (F32/F16/BF16) of `shape` (or, when `any_numel1`, any shape
/// with one element), finite values; row-major.
std::vector<float> read_floats(const model::Checkpoint& ck, const std::string& name,
                               const std::vector<int64_t>& shape, bool any_numel1 = false) {
  if (!ck.has(name)) fail(ck, name, "is missing");
  const model::TensorView& v = ck.view(name);
  const bool shape_ok = any_numel1 ? v.numel() == 1 : v.shape == shape;
  if (!is_float_dtype(v.dtype) || !shape_ok)
    fail(ck, name,
         std::string("is ") + model::dtype_name(v.dtype) + " " + model::shape_string(v.shape) +
             ", expected F32/F16/BF16 " + model::shape_string(shape));
  std::vector<float> out(size_t(v.numel()));
  ck.read_f32(name, out.data(), out.size());
  for (float x : out)
    if (!std::isfinite(x)) fail(ck, name, "holds a non-finite value");
  return out;
}

std::vector<int32_t> read_i32(const model::Checkpoint& ck, const std::string& name,
                              const std::vector<int64_t>& shape) {
  const model::TensorView& v = ck.expect(name, model::DType::kI32, shape);
  std::vector<int32_t> out(size_t(v.numel()));
  std::memcpy(out.data(), v.data, v.n_bytes);
  return out;
}

int json_int(const json& j, const char* key, int dflt) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return dflt;
  if (!j[key].is_number_integer())
    throw std::runtime_error(std::string("quantization_config: '") + key + "' is not an integer");
  return j[key].get<int>();
}

bool json_bool(const json& j, const char* key, bool dflt) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return dflt;
  if (!j[key].is_boolean())
    throw std::runtime_error(std::string("quantization_config: '") + key + "' is not a boolean");
  return j[key].get<bool>();
}

std::string json_str(const json& j, const char* key, const std::string& dflt) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return dflt;
  if (!j[key].is_string())
    throw std::runtime_error(std::string("quantization_config: '") + key + "' is not a string");
  return j[key].get<std::string>();
}

QuantizedWeight sized_weight(int n, int k, int bits, int group_size) {
  return QuantizedWeight::sized(n, k, bits, group_size);
}

void read_bias(const model::Checkpoint& ck, const std::string& prefix, int out,
               QuantizedLinear* ql) {
  const std::string name = prefix + ".bias";
  if (!ck.has(name)) return;
  ql->bias = read_floats(ck, name, {out});
}

/// g_idx read from `name`; checks the range [0, n_groups).
std::vector<int32_t> read_g_idx(const model::Checkpoint& ck, const std::string& name, int k,
                                int n_groups) {
  std::vector<int32_t> g = read_i32(ck, name, {k});
  for (int32_t x : g)
    if (x < 0 || x >= n_groups)
      fail(ck, name,
           "holds group " + std::to_string(x) + " outside [0, " + std::to_string(n_groups) + ")");
  return g;
}

// ---- gptq / awq decode -----------------------------------------------------

QuantizedLinear decode_gptq(const model::Checkpoint& ck, const std::string& prefix, int out,
                            int in, const json& qc) {
  const GptqPacked pk = read_gptq_tensors(ck, prefix, out, in);  // validates shapes and g_idx
  const int bits_cfg = json_int(qc, "bits", pk.bits);
  if (bits_cfg != pk.bits)
    fail(ck, prefix + ".qweight",
         "holds " + std::to_string(pk.bits) + "-bit codes but quantization_config.bits is " +
             std::to_string(bits_cfg));
  const int gs = json_int(qc, "group_size", -1);
  const int want_groups = gs == -1 ? 1 : (gs > 0 ? (in + gs - 1) / gs : -1);
  if (want_groups != pk.n_groups)
    fail(ck, prefix + ".scales",
         "has " + std::to_string(pk.n_groups) + " groups; quantization_config.group_size " +
             std::to_string(gs) + " gives " + std::to_string(want_groups));
  QuantizedLinear ql;
  ql.prefix = prefix;
  ql.type = WeightType::kInt;
  ql.bits = pk.bits;
  ql.strategy = gs == -1 ? WeightStrategy::kChannel : WeightStrategy::kGroup;
  ql.sym = json_bool(qc, "sym", true);
  QuantizedWeight w = sized_weight(out, in, pk.bits, gs);
  const int b = pk.bits, per = 32 / b;
  const uint32_t mask = (1u << b) - 1;
  for (int j = 0; j < in; ++j)
    for (int c = 0; c < out; ++c)
      w.codes(c, j) = int((pk.qweight[size_t(j / per) * out + c] >> (b * (j % per))) & mask);
  for (int g = 0; g < pk.n_groups; ++g)
    for (int c = 0; c < out; ++c) {
      const uint32_t zf = (pk.qzeros[size_t(g) * (out / per) + c / per] >> (b * (c % per))) & mask;
      w.zero(c, g) = float(zf + 1);
      const float s = model::f16_to_f32(pk.scales[size_t(g) * out + c]);
      if (!std::isfinite(s)) fail(ck, prefix + ".scales", "holds a non-finite value");
      w.scale(c, g) = s;
    }
  w.g_idx = pk.g_idx;
  w.q = dequantize_gptq(pk);
  ql.weight = std::move(w);
  ql.act_order = !natural_g_idx(ql.weight);
  return ql;
}

QuantizedLinear decode_awq(const model::Checkpoint& ck, const std::string& prefix, int out,
                           int in, const json& qc) {
  const int bits = json_int(qc, "bits", json_int(qc, "w_bit", 4));
  if (bits != 4)
    throw std::runtime_error("model folder " + ck.dir().string() +
                             ": quantization_config.bits is " + std::to_string(bits) +
                             "; only 4-bit AWQ GEMM checkpoints are supported");
  const int gs = json_int(qc, "group_size", json_int(qc, "q_group_size", 128));
  if (gs <= 0 || in % gs != 0 || out % 8 != 0)
    throw std::runtime_error("model folder " + ck.dir().string() + ": layer " + prefix + " [" +
                             std::to_string(out) + ", " + std::to_string(in) +
                             "] does not fit AWQ group_size " + std::to_string(gs) +
                             " (needs in % group_size == 0 and out % 8 == 0)");
  const int ng = in / gs, nw = out / 8;
  const std::vector<int32_t> qw = read_i32(ck, prefix + ".qweight", {in, nw});
  const std::vector<int32_t> qz = read_i32(ck, prefix + ".qzeros", {ng, nw});
  const std::vector<float> sc = read_floats(ck, prefix + ".scales", {ng, out});
  if (ck.view(prefix + ".scales").dtype != model::DType::kF16)
    fail(ck, prefix + ".scales", "is not F16");
  QuantizedLinear ql;
  ql.prefix = prefix;
  ql.bits = 4;
  ql.strategy = WeightStrategy::kGroup;
  ql.sym = false;
  QuantizedWeight w = sized_weight(out, in, 4, gs);
  for (int k = 0; k < in; ++k)
    for (int c = 0; c < nw; ++c) {
      const uint32_t word = uint32_t(qw[size_t(k) * nw + c]);
      for (int i = 0; i < 8; ++i) w.codes(8 * c + kAwqOrder[i], k) = int((word >> (4 * i)) & 15);
    }
  for (int g = 0; g < ng; ++g)
    for (int c = 0; c < nw; ++c) {
      const uint32_t word = uint32_t(qz[size_t(g) * nw + c]);
      for (int i = 0; i < 8; ++i) w.zero(8 * c + kAwqOrder[i], g) = float((word >> (4 * i)) & 15);
    }
  for (int g = 0; g < ng; ++g)
    for (int c = 0; c < out; ++c) w.scale(c, g) = sc[size_t(g) * out + c];
  ql.sym = (w.zero.array() == 8.0f).all();  // AWQ stores zeros always; 8 everywhere = symmetric
  ql.weight = std::move(w);
  recompute_q(&ql);
  return ql;
}

// ---- compressed-tensors decode ---------------------------------------------

/// The config group whose targets match Linear `prefix` ("Linear", the exact
/// name, or "re:<pattern>" matched from the start as Python's re.match).
const json& ct_scheme(const json& qc, const std::string& prefix) {
  if (!qc.contains("config_groups") || !qc["config_groups"].is_object())
    throw std::runtime_error("quantization_config: compressed-tensors config has no config_groups");
  for (const auto& [name, grp] : qc["config_groups"].items()) {
    if (!grp.is_object() || !grp.contains("targets") || !grp["targets"].is_array()) continue;
    for (const json& t : grp["targets"]) {
      if (!t.is_string()) continue;
      const std::string s = t.get<std::string>();
      if (s == "Linear" || s == prefix) return grp;
      if (s.rfind("re:", 0) == 0) {
        try {
          if (std::regex_search(prefix, std::regex(s.substr(3)),
                                std::regex_constants::match_continuous))
            return grp;
        } catch (const std::regex_error&) {
          throw std::runtime_error("quantization_config: config group '" + name +
                                   "' has an invalid target pattern '" + s + "'");
        }
      }
    }
  }
  throw std::runtime_error("quantization_config: no config group targets layer " + prefix);
}

QuantizedLinear decode_ct(const model::Checkpoint& ck, const std::string& prefix, int out, int in,
                          const json& qc) {
  const json& grp = ct_scheme(qc, prefix);
  const json& wa = grp.contains("weights") ? grp["weights"] : json();
  if (!wa.is_object())
    throw std::runtime_error("quantization_config: the config group of layer " + prefix +
                             " has no weights arguments");
  const std::string fmt = json_str(qc, "format", "");
  const int bits = json_int(wa, "num_bits", 8);
  const std::string type = json_str(wa, "type", "int");
  const bool sym = json_bool(wa, "symmetric", true);
  const int gs_cfg = json_int(wa, "group_size", -1);
  std::string strategy = json_str(wa, "strategy", "");
  if (strategy.empty()) {  // QuantizationArgs: group_size None -> tensor, > 0 -> group, -1 -> channel
    const bool has_gs = wa.contains("group_size") && !wa["group_size"].is_null();
    strategy = !has_gs ? "tensor" : (gs_cfg > 0 ? "group" : "channel");
  }
  const std::string where = "quantization_config (layer " + prefix + "): ";
  QuantizedLinear ql;
  ql.prefix = prefix;
  ql.bits = bits;
  ql.sym = sym;
  if (strategy == "group") {
    ql.strategy = WeightStrategy::kGroup;
    if (gs_cfg <= 0 || in % gs_cfg != 0)
      throw std::runtime_error(where + "group_size " + std::to_string(gs_cfg) +
                               " does not divide in_features " + std::to_string(in));
  } else if (strategy == "channel") {
    ql.strategy = WeightStrategy::kChannel;
  } else if (strategy == "tensor") {
    ql.strategy = WeightStrategy::kTensor;
  } else {
    throw std::runtime_error(where + "weight strategy '" + strategy + "' is not supported");
  }
  const int gs = ql.strategy == WeightStrategy::kGroup ? gs_cfg : -1;
  const int ng = gs > 0 ? in / gs : 1;

  // activations
  const json ia = grp.contains("input_activations") ? grp["input_activations"] : json();
  if (ia.is_object()) {
    const std::string at = json_str(ia, "type", "int"), as = json_str(ia, "strategy", "tensor");
    const bool dyn = json_bool(ia, "dynamic", false);
    if (json_int(ia, "num_bits", 8) != 8)
      throw std::runtime_error(where + "input activations must have 8 bits");
    if (at == "int" && as == "token" && dyn) ql.act = ActQuant::kInt8TokenDynamic;
    else if (at == "float" && as == "token" && dyn) ql.act = ActQuant::kFp8TokenDynamic;
    else if (at == "float" && as == "tensor" && !dyn) ql.act = ActQuant::kFp8TensorStatic;
    else
      throw std::runtime_error(where + "input activations " + at + "/" + as +
                               (dyn ? "/dynamic" : "/static") + " are not supported");
  } else if (!ia.is_null()) {
    throw std::runtime_error(where + "input_activations is neither an object nor null");
  }

  QuantizedWeight w = sized_weight(out, in, bits, gs);
  const auto scale_shape = [&]() -> std::vector<int64_t> {
    if (ql.strategy == WeightStrategy::kTensor) return {1};
    return {out, ng};
  };
  auto fill_scales = [&](const std::vector<float>& s) {
    for (int r = 0; r < out; ++r)
      for (int g = 0; g < ng; ++g)
        w.scale(r, g) = ql.strategy == WeightStrategy::kTensor ? s[0] : s[size_t(r) * ng + g];
  };

  if (type == "int" && fmt == "pack-quantized") {
    if (bits != 4 && bits != 8)
      throw std::runtime_error(where + "pack-quantized needs 4 or 8 bits, not " +
                               std::to_string(bits));
    if (ql.strategy == WeightStrategy::kTensor)
      throw std::runtime_error(where + "pack-quantized tensor strategy is not supported");
    ql.type = WeightType::kInt;
    const int per = 32 / bits;
    const uint32_t mask = (1u << bits) - 1;
    const int words = (in + per - 1) / per;
    const std::vector<int32_t> shp = read_i32(ck, prefix + ".weight_shape", {2});
    if (shp[0] != out || shp[1] != in)
      fail(ck, prefix + ".weight_shape",
           "is [" + std::to_string(shp[0]) + ", " + std::to_string(shp[1]) + "], expected [" +
               std::to_string(out) + ", " + std::to_string(in) + "]");
    const std::vector<int32_t> pk = read_i32(ck, prefix + ".weight_packed", {out, words});
    for_each_tiled(out, in, [&](int r, int j) {
      w.codes(r, j) = int((uint32_t(pk[size_t(r) * words + j / per]) >> (bits * (j % per))) & mask);
    });
    fill_scales(read_floats(ck, prefix + ".weight_scale", {out, ng}));
    if (sym) {
      w.zero.setConstant(float(mid_zero(bits)));
    } else {
      const int zr = (out + per - 1) / per;
      const std::vector<int32_t> zp = read_i32(ck, prefix + ".weight_zero_point", {zr, ng});
      for (int r = 0; r < out; ++r)
        for (int g = 0; g < ng; ++g)
          w.zero(r, g) = float((uint32_t(zp[size_t(r / per) * ng + g]) >> (bits * (r % per))) & mask);
    }
    if (ck.has(prefix + ".weight_g_idx")) {
      const std::vector<int32_t> raw = read_i32(ck, prefix + ".weight_g_idx", {in});
      bool all_unset = true;
      for (int32_t x : raw) all_unset = all_unset && x == -1;
      if (!all_unset) w.g_idx = read_g_idx(ck, prefix + ".weight_g_idx", in, ng);
    }
  } else if (type == "int" && (fmt == "int-quantized" || fmt == "naive-quantized")) {
    if (bits != 8 && !(bits == 4 && fmt == "naive-quantized"))
      throw std::runtime_error(where + fmt + " int weights must have 8 bits");
    if (!sym)
      throw std::runtime_error(where + "asymmetric int8 weights (weight_zero_point) are not supported");
    if (ql.strategy == WeightStrategy::kGroup)
      throw std::runtime_error(where + fmt + " with group strategy is not supported");
    ql.type = WeightType::kInt;
    const model::TensorView& v = ck.expect(prefix + ".weight", model::DType::kI8, {out, in});
    const auto* p = reinterpret_cast<const int8_t*>(v.data);
    const int mid = mid_zero(bits);
    for_each_tiled(out, in, [&](int r, int j) {
      const int c = int(p[size_t(r) * in + j]) + mid;
      if (c < 0 || c > 2 * mid - 1)
        fail(ck, prefix + ".weight", "holds a code outside the " + std::to_string(bits) + "-bit range");
      w.codes(r, j) = c;
    });
    w.zero.setConstant(float(mid));
    fill_scales(read_floats(ck, prefix + ".weight_scale", scale_shape(),
                            ql.strategy == WeightStrategy::kTensor));
  } else if (type == "float" && (fmt == "float-quantized" || fmt == "naive-quantized")) {
    if (bits != 8) throw std::runtime_error(where + "float weights must have 8 bits (fp8 E4M3)");
    if (ql.strategy == WeightStrategy::kGroup)
      throw std::runtime_error(where + "fp8 weights with group strategy are not supported");
    ql.type = WeightType::kFloat8;
    ql.sym = true;
    const model::TensorView& v = ck.expect(prefix + ".weight", model::DType::kF8E4M3, {out, in});
    for_each_tiled(out, in, [&](int r, int j) {
      const uint8_t c = v.data[size_t(r) * in + j];
      if ((c & 0x7F) == 0x7F) fail(ck, prefix + ".weight", "holds an fp8 NaN");
      w.codes(r, j) = c;
    });
    w.zero.setZero();
    fill_scales(read_floats(ck, prefix + ".weight_scale", scale_shape(),
                            ql.strategy == WeightStrategy::kTensor));
  } else {
    throw std::runtime_error(where + "format '" + fmt + "' with " + type +
                             " weights is not supported (pack-quantized, int-quantized, "
                             "float-quantized, naive-quantized)");
  }
  if (ql.act == ActQuant::kFp8TensorStatic) {
    const std::vector<float> s = read_floats(ck, prefix + ".input_scale", {1}, true);
    if (!(s[0] > 0)) fail(ck, prefix + ".input_scale", "is not > 0");
    ql.input_scale = s[0];
  }
  ql.weight = std::move(w);
  ql.act_order = !natural_g_idx(ql.weight);
  recompute_q(&ql);
  return ql;
}

}  // namespace

// ---- public API ------------------------------------------------------------

CheckpointFormat parse_checkpoint_format(const std::string& s) {
  if (s == "compressed-tensors") return CheckpointFormat::kCompressedTensors;
  if (s == "gptq") return CheckpointFormat::kGptq;
  if (s == "awq") return CheckpointFormat::kAwq;
  throw std::runtime_error("checkpoint format '" + s +
                           "' is not one of compressed-tensors, gptq, awq");
}

const char* checkpoint_format_name(CheckpointFormat f) {
  switch (f) {
    case CheckpointFormat::kCompressedTensors: return "compressed-tensors";
    case CheckpointFormat::kGptq: return "gptq";
    case CheckpointFormat::kAwq: return "awq";
  }
  return "?";
}

std::optional<CheckpointFormat> detect_format(const json& config) {
  const json* qc = &config;
  if (config.is_object() && config.contains("quantization_config"))
    qc = &config["quantization_config"];
  if (!qc->is_object() || !qc->contains("quant_method") || !(*qc)["quant_method"].is_string())
    return std::nullopt;
  const std::string m = (*qc)["quant_method"].get<std::string>();
  if (m == "compressed-tensors") return CheckpointFormat::kCompressedTensors;
  if (m == "gptq") return CheckpointFormat::kGptq;
  if (m == "awq") return CheckpointFormat::kAwq;
  return std::nullopt;
}

bool natural_g_idx(const QuantizedWeight& w) {
  const int gw = w.group_width();
  for (size_t j = 0; j < w.g_idx.size(); ++j)
    if (gw <= 0 || w.g_idx[j] != int32_t(j) / gw) return false;
  return true;
}

std::string check_format_supports(CheckpointFormat f, const QuantizedLinear& ql) {
  if (std::string e = check_consistent(ql); !e.empty()) return e;
  if (f == CheckpointFormat::kCompressedTensors) return check_ct(ql);
  return check_gptq_awq(f, ql);
}

void finalize_for_format(CheckpointFormat f, model::DType model_dtype, QuantizedLinear* ql) {
  if (!is_float_dtype(model_dtype))
    throw std::runtime_error(std::string("finalize_for_format: model dtype ") +
                             model::dtype_name(model_dtype) + " is not F32, F16 or BF16");
  const model::DType t = f == CheckpointFormat::kCompressedTensors ? model_dtype : model::DType::kF16;
  QuantizedWeight& w = ql->weight;
  for (Eigen::Index i = 0; i < w.scale.size(); ++i) {
    const float s = round_to(t, w.scale.data()[i]);
    if (!std::isfinite(s))
      throw std::runtime_error("layer " + ql->prefix + ": weight scale " +
                               std::to_string(w.scale.data()[i]) + " is not finite in " +
                               model::dtype_name(t));
    w.scale.data()[i] = s;
  }
  if (ql->act == ActQuant::kFp8TensorStatic) {
    const float s = round_to(t, ql->input_scale);
    if (!std::isfinite(s) || !(s > 0))
      throw std::runtime_error("layer " + ql->prefix + ": input_scale is not a finite positive " +
                               model::dtype_name(t));
    ql->input_scale = s;
  }
  for (float& b : ql->bias) b = round_to(t, b);
  if (w.codes.size() != w.q.size() || int(w.g_idx.size()) != w.codes.cols())
    throw std::runtime_error("layer " + ql->prefix + ": inconsistent QuantizedWeight sizes");
  for (int32_t g : w.g_idx)
    if (g < 0 || g >= w.scale.cols())
      throw std::runtime_error("layer " + ql->prefix + ": g_idx outside the scale columns");
  recompute_q(ql);
}

std::map<std::string, model::TensorData> encode_linear(CheckpointFormat f, model::DType model_dtype,
                                                       const QuantizedLinear& ql) {
  if (std::string e = check_format_supports(f, ql); !e.empty()) throw std::runtime_error(e);
  const QuantizedWeight& w = ql.weight;
  const int n = ql.out_features(), k = ql.in_features(), ng = int(w.scale.cols());
  const std::string& P = ql.prefix;
  std::map<std::string, model::TensorData> out;
  const model::DType bias_t =
      f == CheckpointFormat::kCompressedTensors ? model_dtype : model::DType::kF16;
  if (!is_float_dtype(model_dtype))
    throw std::runtime_error(std::string("encode_linear: model dtype ") +
                             model::dtype_name(model_dtype) + " is not F32, F16 or BF16");

  if (f == CheckpointFormat::kGptq) {
    GptqPacked pk;
    std::string err;
    if (!pack_gptq(w, &pk, &err)) throw std::runtime_error("layer " + P + ": " + err);
    const int per = 32 / ql.bits;
    out[P + ".qweight"] = raw_tensor(model::DType::kI32, {k / per, n}, pk.qweight);
    out[P + ".qzeros"] = raw_tensor(model::DType::kI32, {pk.n_groups, n / per}, pk.qzeros);
    out[P + ".scales"] = raw_tensor(model::DType::kF16, {pk.n_groups, n}, pk.scales);
    out[P + ".g_idx"] = raw_tensor(model::DType::kI32, {k}, pk.g_idx);
  } else if (f == CheckpointFormat::kAwq) {
    AwqPacked pk;
    std::string err;
    if (!pack_awq_gemm(w, &pk, &err)) throw std::runtime_error("layer " + P + ": " + err);
    out[P + ".qweight"] = raw_tensor(model::DType::kI32, {k, n / 8}, pk.qweight);
    out[P + ".qzeros"] = raw_tensor(model::DType::kI32, {pk.n_groups, n / 8}, pk.qzeros);
    out[P + ".scales"] = raw_tensor(model::DType::kF16, {pk.n_groups, n}, pk.scales);
  } else {
    const CtFormat cf = infer_ct_format(ql);
    std::vector<float> scale;
    std::vector<int64_t> scale_shape;
    if (ql.strategy == WeightStrategy::kTensor) {
      scale = {w.scale(0, 0)};
      scale_shape = {1};
    } else {
      scale.resize(size_t(n) * ng);
      for (int r = 0; r < n; ++r)
        for (int g = 0; g < ng; ++g) scale[size_t(r) * ng + g] = w.scale(r, g);
      scale_shape = {n, ng};
    }
    out[P + ".weight_scale"] = float_tensor(model_dtype, scale_shape, scale);
    if (cf == CtFormat::kPack) {
      const int per = 32 / ql.bits, words = (k + per - 1) / per;
      std::vector<uint32_t> pk(size_t(n) * words, 0u);
      for (int r = 0; r < n; ++r)
        for (int j = 0; j < k; ++j)
          pk[size_t(r) * words + j / per] |= uint32_t(w.codes(r, j)) << (ql.bits * (j % per));
      out[P + ".weight_packed"] = raw_tensor(model::DType::kI32, {n, words}, pk);
      out[P + ".weight_shape"] =
          raw_tensor(model::DType::kI32, {2}, std::vector<int32_t>{n, k});
      if (!ql.sym) {
        const int zr = (n + per - 1) / per;
        std::vector<uint32_t> zp(size_t(zr) * ng, 0u);
        for (int r = 0; r < n; ++r)
          for (int g = 0; g < ng; ++g)
            zp[size_t(r / per) * ng + g] |= uint32_t(w.zero(r, g)) << (ql.bits * (r % per));
        out[P + ".weight_zero_point"] = raw_tensor(model::DType::kI32, {zr, ng}, zp);
      }
      if (!natural_g_idx(w)) out[P + ".weight_g_idx"] = raw_tensor(model::DType::kI32, {k}, w.g_idx);
    } else if (cf == CtFormat::kInt) {
      std::vector<int8_t> q(size_t(n) * k);
      for (int r = 0; r < n; ++r)
        for (int j = 0; j < k; ++j) q[size_t(r) * k + j] = int8_t(w.codes(r, j) - 128);
      out[P + ".weight"] = raw_tensor(model::DType::kI8, {n, k}, q);
    } else {  // float-quantized / naive-quantized fp8
      std::vector<uint8_t> q(size_t(n) * k);
      for (int r = 0; r < n; ++r)
        for (int j = 0; j < k; ++j) q[size_t(r) * k + j] = uint8_t(w.codes(r, j));
      out[P + ".weight"] = raw_tensor(model::DType::kF8E4M3, {n, k}, q);
      if (ql.act == ActQuant::kFp8TensorStatic)
        out[P + ".input_scale"] = float_tensor(model_dtype, {1}, {ql.input_scale});
    }
  }
  if (!ql.bias.empty()) out[P + ".bias"] = float_tensor(bias_t, {n}, ql.bias);
  return out;
}

json quantization_config(CheckpointFormat f, const QuantizedLinear& rep,
                         const std::vector<std::string>& ignore, const json& tool_fields) {
  json qc;
  const int gs = rep.strategy == WeightStrategy::kGroup ? rep.weight.group_size : -1;
  if (f == CheckpointFormat::kGptq) {
    // AutoGPTQ's quantize_config.json keys (SPECS.md A1.5); tool_fields
    // overwrite the defaults below with the recipe's.
    qc = {{"quant_method", "gptq"},   {"bits", rep.bits},
          {"group_size", gs},         {"desc_act", rep.act_order},
          {"sym", rep.sym},           {"damp_percent", 0.01},
          {"static_groups", false},   {"true_sequential", true},
          {"checkpoint_format", "gptq"}};
    json dyn = json::object();
    for (const std::string& m : ignore) {
      if (m == "lm_head") continue;
      std::string esc;
      for (char c : m) {
        if (std::strchr(".^$*+?()[]{}|\\", c)) esc += '\\';
        esc += c;
      }
      dyn["-:" + esc + "$"] = json::object();
    }
    if (!dyn.empty()) qc["dynamic"] = dyn;
  } else if (f == CheckpointFormat::kAwq) {
    json mods = json::array();
    for (const std::string& m : ignore)
      if (m != "lm_head") mods.push_back(m);
    qc = {{"quant_method", "awq"},
          {"zero_point", true},
          {"group_size", gs},
          {"bits", rep.bits},
          {"version", "gemm"},
          {"modules_to_not_convert", mods.empty() ? json(nullptr) : mods}};
  } else {
    json weights = {{"num_bits", rep.bits},
                    {"type", rep.type == WeightType::kInt ? "int" : "float"},
                    {"symmetric", rep.sym},
                    {"strategy", weight_strategy_name(rep.strategy)},
                    {"group_size", gs > 0 ? json(gs) : json(nullptr)},
                    {"dynamic", false},
                    {"actorder", rep.act_order ? json("group") : json(nullptr)},
                    {"block_structure", nullptr},
                    {"observer", "minmax"},
                    {"observer_kwargs", json::object()}};
    json acts = nullptr;
    if (rep.act != ActQuant::kNone) {
      const bool dyn = rep.act != ActQuant::kFp8TensorStatic;
      acts = {{"num_bits", 8},
              {"type", rep.act == ActQuant::kInt8TokenDynamic ? "int" : "float"},
              {"symmetric", true},
              {"strategy", dyn ? "token" : "tensor"},
              {"group_size", nullptr},
              {"dynamic", dyn},
              {"actorder", nullptr},
              {"block_structure", nullptr},
              {"observer", dyn ? "memoryless" : "minmax"},
              {"observer_kwargs", json::object()}};
    }
    json ign = json::array({"lm_head"});
    for (const std::string& m : ignore)
      if (m != "lm_head") ign.push_back(m);
    qc = {{"quant_method", "compressed-tensors"},
          {"format", ct_format_name(infer_ct_format(rep))},
          {"quantization_status", "compressed"},
          {"global_compression_ratio", nullptr},
          {"ignore", ign},
          {"kv_cache_scheme", nullptr},
          {"config_groups",
           {{"group_0",
             {{"targets", json::array({"Linear"})},
              {"weights", weights},
              {"input_activations", acts},
              {"output_activations", nullptr}}}}}};
  }
  if (tool_fields.is_object())
    for (const auto& [key, v] : tool_fields.items()) qc[key] = v;
  return qc;
}

bool has_quantized_linear(CheckpointFormat f, const model::Checkpoint& ck,
                          const std::string& prefix) {
  if (f != CheckpointFormat::kCompressedTensors) return ck.has(prefix + ".qweight");
  return ck.has(prefix + ".weight_packed") || ck.has(prefix + ".weight_scale");
}

QuantizedLinear decode_linear(const model::Checkpoint& ck, const std::string& prefix, int out,
                              int in, const json& qc_in) {
  const json& qc = qc_in.is_object() && qc_in.contains("quantization_config")
                       ? qc_in["quantization_config"]
                       : qc_in;
  const std::optional<CheckpointFormat> f = detect_format(qc);
  if (!f)
    throw std::runtime_error("model folder " + ck.dir().string() +
                             ": quantization_config.quant_method is not compressed-tensors, gptq "
                             "or awq");
  if (out <= 0 || in <= 0)
    throw std::runtime_error("layer " + prefix + ": empty shape");
  QuantizedLinear ql;
  try {
    switch (*f) {
      case CheckpointFormat::kGptq: ql = decode_gptq(ck, prefix, out, in, qc); break;
      case CheckpointFormat::kAwq: ql = decode_awq(ck, prefix, out, in, qc); break;
      case CheckpointFormat::kCompressedTensors: ql = decode_ct(ck, prefix, out, in, qc); break;
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("model folder " + ck.dir().string() +
                             ": malformed quantization_config: " + e.what());
  }
  read_bias(ck, prefix, out, &ql);
  return ql;
}

}  // namespace qsweep::quant
