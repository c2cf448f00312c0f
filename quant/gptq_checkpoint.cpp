#include "quant/gptq_checkpoint.h"

#include <cstring>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>

#include "model/dtype.h"
#include "model/engine/workspace.h"
#include "quant/formats/quantized_loader.h"

namespace qsweep::quant {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::vector<uint8_t> bytes_of(const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  return std::vector<uint8_t>(b, b + n);
}

model::TensorData i32_tensor(std::vector<int64_t> shape, const void* data, size_t n) {
  return {model::DType::kI32, std::move(shape), bytes_of(data, n * 4)};
}

model::TensorData f16_tensor(std::vector<int64_t> shape, const std::vector<uint16_t>& h) {
  return {model::DType::kF16, std::move(shape), bytes_of(h.data(), h.size() * 2)};
}

std::string read_text(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + p.string());
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

void write_text(const fs::path& p, const std::string& text) {
  const fs::path tmp = p.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw std::runtime_error("cannot write " + tmp.string());
    f << text;
    if (!f.flush()) throw std::runtime_error("cannot write " + tmp.string());
  }
  fs::rename(tmp, p);
}

// Files besides the weights and config that a model folder carries.
const char* const k_copied_files[] = {
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "chat_template.json",
};

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

const model::TensorView& expect(const model::Checkpoint& ck, const std::string& name,
                                model::DType dtype, const std::vector<int64_t>& shape) {
  const model::TensorView& v = ck.view(name);
  if (v.dtype != dtype || v.shape != shape)
    throw std::runtime_error("model folder " + ck.dir().string() + ": tensor '" + name + "' is " +
                             model::dtype_name(v.dtype) + " " + shape_str(v.shape) + ", expected " +
                             model::dtype_name(dtype) + " " + shape_str(shape));
  return v;
}

}  // namespace

std::string check_rtn_config(const RtnConfig& c) {
  if (c.bits != 4 && c.bits != 8) return "bits must be 4 or 8 (got " + std::to_string(c.bits) + ")";
  if (c.group_size != -1 && c.group_size != 32 && c.group_size != 64 && c.group_size != 128)
    return "group_size must be -1, 32, 64 or 128 (got " + std::to_string(c.group_size) + ")";
  return {};
}

json gptq_quantization_config(const RtnConfig& c) {
  return {{"quant_method", "gptq"},
          {"bits", c.bits},
          {"group_size", c.group_size},
          {"desc_act", false},
          {"sym", c.sym},
          {"damp_percent", 0.01},
          {"static_groups", false},
          {"true_sequential", true},
          {"checkpoint_format", "gptq"}};
}

bool is_quantized_linear_weight(const std::string& name, std::string* prefix) {
  static const std::regex re(
      R"((model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj))\.weight)");
  std::smatch m;
  if (!std::regex_match(name, m, re)) return false;
  if (prefix) *prefix = m[1].str();
  return true;
}

GptqWriteResult write_gptq_checkpoint(const model::Checkpoint& src, const RtnConfig& cfg,
                                      const fs::path& out_dir, const GptqProgress& progress,
                                      const std::function<bool()>& cancelled) {
  if (std::string e = check_rtn_config(cfg); !e.empty())
    throw std::runtime_error("write_gptq_checkpoint: " + e);
  const std::vector<std::string> names = src.tensor_names();
  std::vector<std::string> layers;
  for (const auto& n : names) {
    std::string p;
    if (is_quantized_linear_weight(n, &p)) layers.push_back(p);
  }
  if (layers.empty())
    throw std::runtime_error("model folder " + src.dir().string() +
                             ": no decoder-layer Linear weights (model.layers.N.*_proj.weight)");

  std::map<std::string, model::TensorData> out;
  std::set<std::string> consumed;  // source tensors replaced by quantized ones
  GptqWriteResult result;
  const int per = 32 / cfg.bits;
  int done = 0;
  for (const std::string& prefix : layers) {
    if (cancelled && cancelled()) throw std::runtime_error("quantization cancelled");
    const model::TensorView& wv = src.view(prefix + ".weight");
    if (wv.shape.size() != 2)
      throw std::runtime_error("model folder " + src.dir().string() + ": tensor '" + prefix +
                               ".weight' is not 2-D");
    const int n = int(wv.shape[0]), k = int(wv.shape[1]);
    if (n % per != 0 || k % per != 0) {
      if (!cfg.skip_unpackable)
        throw std::runtime_error("layer " + prefix + " [" + std::to_string(n) + ", " +
                                 std::to_string(k) + "]: the gptq format at " +
                                 std::to_string(cfg.bits) + " bits needs in and out features " +
                                 "that are multiples of " + std::to_string(per));
      result.skipped.push_back(prefix);
      if (progress) progress(++done, int(layers.size()), prefix);
      continue;
    }
    const Eigen::MatrixXf w = src.matrix_f32(prefix + ".weight");  // row-major -> col-major copy
    const QuantizedWeight qw = rtn_quantize(w, cfg.bits, cfg.sym, cfg.group_size);
    if (!cfg.sym && (qw.zero.array() == 0.0f).any())
      throw std::runtime_error(
          "layer " + prefix +
          ": an asymmetric group has zero point 0 (an all-non-negative group), which the gptq "
          "v1 format cannot represent (SPECS.md A1.5); use sym: true");
    GptqPacked pk;
    std::string err;
    if (!pack_gptq(qw, &pk, &err)) throw std::runtime_error("layer " + prefix + ": " + err);
    out[prefix + ".qweight"] = i32_tensor({k / per, n}, pk.qweight.data(), pk.qweight.size());
    out[prefix + ".qzeros"] =
        i32_tensor({pk.n_groups, n / per}, pk.qzeros.data(), pk.qzeros.size());
    out[prefix + ".scales"] = f16_tensor({pk.n_groups, n}, pk.scales);
    out[prefix + ".g_idx"] = i32_tensor({k}, pk.g_idx.data(), pk.g_idx.size());
    consumed.insert(prefix + ".weight");
    if (src.has(prefix + ".bias")) {
      const model::TensorF32 b = src.tensor_f32(prefix + ".bias");
      std::vector<uint16_t> h(b.data.size());
      for (size_t i = 0; i < h.size(); ++i) h[i] = model::f32_to_f16(b.data[i]);
      out[prefix + ".bias"] = f16_tensor({int64_t(h.size())}, h);
      consumed.insert(prefix + ".bias");
    }
    result.quantized.push_back(prefix);
    if (progress) progress(++done, int(layers.size()), prefix);
  }
  for (const auto& name : names) {
    if (consumed.count(name)) continue;
    const model::TensorView& v = src.view(name);
    out[name] = {v.dtype, v.shape, bytes_of(v.data, v.n_bytes)};
  }
  if (cancelled && cancelled()) throw std::runtime_error("quantization cancelled");

  fs::create_directories(out_dir);
  model::write_safetensors(out_dir / "model.safetensors", out, {{"format", "pt"}});
  const json qc = gptq_quantization_config(cfg);
  json config = json::parse(read_text(src.dir() / "config.json"));
  config["quantization_config"] = qc;
  write_text(out_dir / "config.json", config.dump(2) + "\n");
  write_text(out_dir / "quantize_config.json", qc.dump(2) + "\n");
  for (const char* f : k_copied_files) {
    const fs::path p = src.dir() / f;
    if (fs::is_regular_file(p)) fs::copy_file(p, out_dir / f, fs::copy_options::overwrite_existing);
  }
  for (const auto& e : fs::directory_iterator(src.dir())) {  // llama2.c tokenizers (tok512.bin)
    const std::string f = e.path().filename().string();
    if (e.is_regular_file() && f.rfind("tok", 0) == 0 && e.path().extension() == ".bin")
      fs::copy_file(e.path(), out_dir / f, fs::copy_options::overwrite_existing);
  }
  return result;
}

Eigen::MatrixXf dequantize_gptq(const GptqPacked& p) {
  const int b = p.bits, per = 32 / b, n = p.n, k = p.k;
  const uint32_t mask = (1u << b) - 1;
  Eigen::MatrixXf w(n, k);
  for (int j = 0; j < k; ++j) {
    const int g = p.g_idx[j];
    for (int c = 0; c < n; ++c) {
      const uint32_t q = (p.qweight[size_t(j / per) * n + c] >> (b * (j % per))) & mask;
      const uint32_t zf = (p.qzeros[size_t(g) * (n / per) + c / per] >> (b * (c % per))) & mask;
      const float scale = model::f16_to_f32(p.scales[size_t(g) * n + c]);
      w(c, j) = scale * (float(q) - float(zf + 1));
    }
  }
  return w;
}

GptqPacked read_gptq_tensors(const model::Checkpoint& ck, const std::string& prefix, int out,
                             int in) {
  const model::TensorView& qv = ck.view(prefix + ".qweight");
  if (qv.dtype != model::DType::kI32 || qv.shape.size() != 2 || qv.shape[1] != out ||
      qv.shape[0] <= 0 || (int64_t(in) * 4) % qv.shape[0] != 0)
    throw std::runtime_error("model folder " + ck.dir().string() + ": tensor '" + prefix +
                             ".qweight' is " + model::dtype_name(qv.dtype) + " " +
                             shape_str(qv.shape) + ", expected I32 [in*bits/32, " +
                             std::to_string(out) + "]");
  GptqPacked p;
  p.bits = int(qv.shape[0] * 32 / in);
  if ((p.bits != 4 && p.bits != 8) || int64_t(in) * p.bits / 32 != qv.shape[0])
    throw std::runtime_error("model folder " + ck.dir().string() + ": tensor '" + prefix +
                             ".qweight' " + shape_str(qv.shape) +
                             " does not give 4 or 8 bits for " + std::to_string(in) +
                             " input features");
  const int per = 32 / p.bits;
  p.k = in;
  p.n = out;
  const model::TensorView& sv = ck.view(prefix + ".scales");
  if (sv.shape.size() != 2)
    throw std::runtime_error("model folder " + ck.dir().string() + ": tensor '" + prefix +
                             ".scales' is not 2-D");
  p.n_groups = int(sv.shape[0]);
  expect(ck, prefix + ".scales", model::DType::kF16, {p.n_groups, out});
  const auto& zv = expect(ck, prefix + ".qzeros", model::DType::kI32, {p.n_groups, out / per});
  const auto& gv = expect(ck, prefix + ".g_idx", model::DType::kI32, {in});
  p.qweight.resize(qv.numel());
  std::memcpy(p.qweight.data(), qv.data, qv.n_bytes);
  p.qzeros.resize(zv.numel());
  std::memcpy(p.qzeros.data(), zv.data, zv.n_bytes);
  p.scales.resize(sv.numel());
  std::memcpy(p.scales.data(), sv.data, sv.n_bytes);
  p.g_idx.resize(gv.numel());
  std::memcpy(p.g_idx.data(), gv.data, gv.n_bytes);
  for (int32_t g : p.g_idx)
    if (g < 0 || g >= p.n_groups)
      throw std::runtime_error("model folder " + ck.dir().string() + ": tensor '" + prefix +
                               ".g_idx' holds group " + std::to_string(g) + " outside [0, " +
                               std::to_string(p.n_groups) + ")");
  return p;
}

model::LinearLoader gptq_linear_loader() {
  // Forwards to the loader of every format (quant/formats/quantized_loader.h),
  // which reads config.json's quantization_config and runs gptq layers with the
  // quantized Linear kernel.
  return quantized_linear_loader();
}

}  // namespace qsweep::quant
