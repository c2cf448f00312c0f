#include "quant/quantize_model.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "model/dtype.h"
#include "model/util/text_file.h"

namespace qsweep::quant {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

model::TensorData copy_tensor(const model::TensorView& v) {
  return {v.dtype, v.shape, std::vector<uint8_t>(v.data, v.data + v.n_bytes)};
}

model::TensorData float_tensor(const std::vector<float>& x, model::DType dtype,
                               std::vector<int64_t> shape) {
  return model::make_float_tensor(dtype, std::move(shape), x.data(), x.size());
}

std::string shard_name(int i, int n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05d-of-%05d.safetensors", i, n);
  return buf;
}

// Calibration hidden states on disk: "QSACT1\0\0", int32 d, int32 n_seq,
// int32 len[n_seq], float x[rows * d].
void save_activations(const Activations& a, const fs::path& p) {
  const fs::path tmp = p.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    const char magic[8] = {'Q', 'S', 'A', 'C', 'T', '1', 0, 0};
    const int32_t d = a.d, n = int32_t(a.len.size());
    f.write(magic, 8);
    f.write(reinterpret_cast<const char*>(&d), 4);
    f.write(reinterpret_cast<const char*>(&n), 4);
    f.write(reinterpret_cast<const char*>(a.len.data()), std::streamsize(4 * a.len.size()));
    f.write(reinterpret_cast<const char*>(a.x.data()), std::streamsize(4 * a.x.size()));
    if (!f.flush()) throw std::runtime_error("cannot write " + tmp.string() + " (disk full?)");
  }
  fs::rename(tmp, p);
}

bool load_activations(const fs::path& p, const Activations& like, Activations* out) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return false;
  char magic[8];
  int32_t d = 0, n = 0;
  f.read(magic, 8);
  f.read(reinterpret_cast<char*>(&d), 4);
  f.read(reinterpret_cast<char*>(&n), 4);
  if (!f || std::memcmp(magic, "QSACT1", 6) != 0 || d != like.d || n != int32_t(like.len.size()))
    return false;
  Activations a;
  a.d = d;
  a.len.resize(n);
  f.read(reinterpret_cast<char*>(a.len.data()), std::streamsize(4) * n);
  if (!f || a.len != like.len) return false;
  a.row0 = like.row0;
  a.x.resize(like.x.size());
  f.read(reinterpret_cast<char*>(a.x.data()), std::streamsize(4 * a.x.size()));
  if (!f || f.peek() != EOF) return false;
  *out = std::move(a);
  return true;
}

const char* const k_side_files[] = {
    "generation_config.json", "tokenizer.json",      "tokenizer_config.json",
    "tokenizer.model",        "special_tokens_map.json", "added_tokens.json",
    "vocab.json",             "merges.txt",          "chat_template.jinja",
    "chat_template.json",
};

}  // namespace

void copy_model_side_files(const fs::path& src, const fs::path& dst) {
  for (const char* f : k_side_files) {
    const fs::path p = src / f;
    if (fs::is_regular_file(p)) fs::copy_file(p, dst / f, fs::copy_options::overwrite_existing);
  }
  for (const auto& e : fs::directory_iterator(src)) {  // llama2.c tokenizers (tok512.bin)
    const std::string f = e.path().filename().string();
    if (e.is_regular_file() && f.rfind("tok", 0) == 0 && e.path().extension() == ".bin")
      fs::copy_file(e.path(), dst / f, fs::copy_options::overwrite_existing);
  }
}

QuantizedLinear recipe_shape(const LayerRecipe& r, const std::string& prefix, int out, int in) {
  QuantizedLinear q;
  q.prefix = prefix;
  const bool fp8 = r.method == LayerRecipe::Method::kFp8;
  q.type = fp8 ? WeightType::kFloat8 : WeightType::kInt;
  q.bits = fp8 ? 8 : r.bits;
  q.strategy = fp8 ? r.fp8_weights
                   : (r.group_size == -1 ? WeightStrategy::kChannel : WeightStrategy::kGroup);
  q.sym = fp8 || r.sym;
  q.act_order = r.method == LayerRecipe::Method::kGptq && r.gptq.act_order &&
                !r.gptq.static_groups && r.group_size != -1;
  q.weight = QuantizedWeight::sized(out, in, q.bits, fp8 ? -1 : r.group_size);
  q.weight.scale.setOnes();
  q.weight.zero.setConstant(fp8 ? 0.0f : float(1 << (q.bits - 1)));
  q.weight.codes.setZero();
  q.weight.q.setZero();
  q.act = r.act;
  q.input_scale = 1.0f;  // calibrated later; any valid value for the checks
  return q;
}

std::vector<std::string> prepare_format(QuantizeModelJob& job, const model::Checkpoint& src,
                                        CheckpointFormat fmt, bool skip_incompatible,
                                        const json& tool_fields) {
  const model::ModelConfig& c = src.config();
  const model::DType mdtype = source_weight_dtype(src);
  std::set<std::string> skip;
  std::vector<std::string> kept;
  for (int l = 0; l < c.n_layer; ++l)
    for (LinearId id : kAllLinears) {
      const std::string p = linear_prefix(l, id);
      const model::TensorView& v = src.view(p + ".weight");
      if (v.shape.size() != 2)
        throw std::runtime_error("model folder " + src.dir().string() + ": tensor '" + p +
                                 ".weight' is not 2-D");
      const int out = int(v.shape[0]), in = int(v.shape[1]);
      std::string why = check_format_supports(fmt, recipe_shape(job.recipe, p, out, in));
      const int g = job.recipe.group_size;
      if (why.empty() && job.recipe.method != LayerRecipe::Method::kFp8 && g != -1 && in % g != 0)
        why = "layer " + p + ": group_size " + std::to_string(g) + " does not divide its " +
              std::to_string(in) + " input features";
      if (why.empty()) continue;
      if (!skip_incompatible)
        throw std::runtime_error(why + "; use a group size / bits / format that fits, or set "
                                       "skip_incompatible: true to keep such Linears in full "
                                       "precision");
      skip.insert(p);
      kept.push_back(p);
    }
  job.recipe.skip = [skip](int l, LinearId id) { return skip.count(linear_prefix(l, id)) > 0; };
  job.finalize = [fmt, mdtype](QuantizedLinear* q) {
    if (std::string e = check_format_supports(fmt, *q); !e.empty()) throw std::runtime_error(e);
    finalize_for_format(fmt, mdtype, q);
  };
  job.encode = [fmt, mdtype](const QuantizedLinear& q) { return encode_linear(fmt, mdtype, q); };
  const std::string p0 = linear_prefix(0, LinearId::kQ);
  const model::TensorView& v = src.view(p0 + ".weight");
  job.quantization_config = quantization_config(
      fmt, recipe_shape(job.recipe, p0, int(v.shape[0]), int(v.shape[1])), kept,
      fmt == CheckpointFormat::kGptq ? tool_fields : json::object());
  return kept;
}

model::DType source_weight_dtype(const model::Checkpoint& src) {
  const model::TensorView& v = src.view("model.layers.0.self_attn.q_proj.weight");
  if (v.dtype == model::DType::kF32 || v.dtype == model::DType::kF16 ||
      v.dtype == model::DType::kBF16)
    return v.dtype;
  throw std::runtime_error("model folder " + src.dir().string() +
                           ": tensor 'model.layers.0.self_attn.q_proj.weight' is " +
                           model::dtype_name(v.dtype) +
                           "; quantization needs an F32, F16 or BF16 source checkpoint");
}

QuantizeModelResult quantize_model(const model::Checkpoint& src, const QuantizeModelJob& job,
                                   const fs::path& out_dir) {
  const model::ModelConfig& c = src.config();
  const LayerRecipe& r = job.recipe;
  const int n_layer = c.n_layer, n_shards = n_layer + 1;
  const model::DType mdtype = source_weight_dtype(src);
  auto log = [&](const std::string& s) {
    if (job.log) job.log(s);
  };
  if (r.needs_activations() && job.calibration.empty())
    throw std::runtime_error("this method needs calibration sequences (a `calibration` input)");
  if (r.needs_stats() && !job.stats)
    throw std::runtime_error("this recipe needs activation statistics (a `calibration` input)");

  fs::create_directories(out_dir);
  const bool resumable = !job.scratch.empty();
  const fs::path layer_dir = resumable ? job.scratch : out_dir;
  auto layer_file = [&](int l) {
    return layer_dir / (resumable ? "layer-" + std::to_string(l) + ".safetensors"
                                  : shard_name(l + 2, n_shards));
  };

  LayerStream stream(src, job.max_batch_rows);
  if (job.device) stream.set_device(job.device(c));
  Activations act;
  if (r.needs_activations()) act = stream.embed(job.calibration);

  QuantizeModelResult res;
  int start = 0;
  if (resumable) {
    fs::create_directories(job.scratch);
    const fs::path state = job.scratch / "state.json";
    json st;
    if (fs::is_regular_file(state)) {
      try {
        st = json::parse(model::read_text_file(state));
      } catch (const std::exception&) {
        st = json();
      }
    }
    if (st.is_object() && st.value("fingerprint", std::string()) == job.fingerprint &&
        st.value("layers_done", 0) > 0) {
      int n = std::min(st.value("layers_done", 0), n_layer);
      bool ok = true;
      for (int l = 0; l < n && ok; ++l) ok = fs::is_regular_file(layer_file(l));
      if (ok && r.needs_activations())
        ok = load_activations(job.scratch / "acts.bin", act, &act);
      if (ok) {
        start = n;
        res.layers_resumed = n;
        log("resuming after " + std::to_string(n) + " finished decoder layer(s) in " +
            job.scratch.string());
      }
    }
    if (start == 0) {  // stale or foreign scratch content
      for (const auto& e : fs::directory_iterator(job.scratch)) fs::remove_all(e.path());
      model::write_text_file(state, json{{"fingerprint", job.fingerprint}, {"layers_done", 0}}.dump() + "\n");
    }
  }

  json weight_map = json::object();
  uint64_t total_size = 0;
  const std::vector<std::string> names = src.tensor_names();
  // Shard 1: everything outside the decoder layers, unchanged.
  {
    std::map<std::string, const model::TensorView*> t;
    for (const std::string& n : names)
      if (n.rfind("model.layers.", 0) != 0) t[n] = &src.view(n);
    const std::string f = shard_name(1, n_shards);
    for (auto& [n, v] : t) {
      weight_map[n] = f;
      total_size += v->n_bytes;
    }
    // Streamed from the mapping, its pages released as written: the
    // embedding and lm_head (2 x 262 MB at 1B scale) are never held in memory.
    model::write_safetensors_views(out_dir / f, t, {{"format", "pt"}}, size_t(32) << 20,
                                   [](const uint8_t* data, size_t n) {
                                     model::TensorView part;
                                     part.data = data;
                                     part.n_bytes = n;
                                     release_pages(part);
                                   });
  }

  for (int l = 0; l < n_layer; ++l) {
    const std::string lp = "model.layers." + std::to_string(l) + ".";
    if (l >= start) {
      if (job.cancelled && job.cancelled())
        throw std::runtime_error("quantization cancelled after " + std::to_string(l) +
                                 " decoder layer(s)" + (resumable ? " (kept for resume)" : ""));
      model::TransformerLayer L = stream.load_layer(l);
      // Each quantized Linear is encoded as soon as it is done (its fp32 q
      // and int32 codes are then dropped).
      std::map<std::string, model::TensorData> t;
      LayerResult lr = quantize_decoder_layer(
          stream, l, L, r.needs_activations() ? &act : nullptr, r, job.stats, job.finalize,
          [&](const QuantizedLinear& ql) {
            for (auto& [n, v] : job.encode(ql)) t[n] = std::move(v);
          });
      for (const std::string& n : lr.notes) {
        log(n);
        res.notes.push_back(n);
      }
      res.awq_ratios.insert(lr.awq_ratios.begin(), lr.awq_ratios.end());
      res.gptq_errors.insert(lr.gptq_errors.begin(), lr.gptq_errors.end());
      std::set<std::string> replaced;
      for (const QuantizedLinear& ql : lr.linears) {
        replaced.insert(ql.prefix + ".weight");
        replaced.insert(ql.prefix + ".bias");
      }
      for (const KeptLinear& k : lr.kept) {
        const model::MatrixRM w = k.w;  // row-major [out, in]
        t[k.prefix + ".weight"] = float_tensor(std::vector<float>(w.data(), w.data() + w.size()),
                                               mdtype, {w.rows(), w.cols()});
        if (!k.bias.empty())
          t[k.prefix + ".bias"] = float_tensor(k.bias, mdtype, {int64_t(k.bias.size())});
        replaced.insert(k.prefix + ".weight");
        replaced.insert(k.prefix + ".bias");
      }
      if (lr.norms_changed) {
        t[lp + "input_layernorm.weight"] = float_tensor(L.attn_norm, mdtype, {c.n_embd});
        t[lp + "post_attention_layernorm.weight"] = float_tensor(L.ffn_norm, mdtype, {c.n_embd});
      }
      for (const std::string& n : names)
        if (n.rfind(lp, 0) == 0 && !replaced.count(n) && !t.count(n)) t[n] = copy_tensor(src.view(n));
      model::write_safetensors(layer_file(l), t, {{"format", "pt"}});
      for (const std::string& n : names)
        if (n.rfind(lp, 0) == 0) release_pages(src.view(n));
      if (resumable) {
        if (r.needs_activations() && l + 1 < n_layer) save_activations(act, job.scratch / "acts.bin");
        model::write_text_file(job.scratch / "state.json",
                   json{{"fingerprint", job.fingerprint}, {"layers_done", l + 1}}.dump() + "\n");
      }
    }
    // Index entries of this layer (read back: resumed layers were written earlier).
    const model::SafetensorsFile sf(layer_file(l));
    const std::string f = shard_name(l + 2, n_shards);
    for (const auto& [n, v] : sf.tensors()) {
      weight_map[n] = f;
      total_size += v.n_bytes;
    }
    for (LinearId id : kAllLinears) {
      const std::string p = linear_prefix(l, id);
      if (!sf.find(p + ".weight") || sf.find(p + ".weight_scale"))
        res.quantized.push_back(p);
      else
        res.kept.push_back(p);
    }
    if (job.progress) job.progress(l + 1, n_layer);
  }
  if (resumable)
    for (int l = 0; l < n_layer; ++l) {
      std::error_code ec;
      fs::rename(layer_file(l), out_dir / shard_name(l + 2, n_shards), ec);
      if (ec) fs::copy_file(layer_file(l), out_dir / shard_name(l + 2, n_shards),
                            fs::copy_options::overwrite_existing);
    }
  model::write_text_file(out_dir / "model.safetensors.index.json",
             json{{"metadata", {{"total_size", total_size}}}, {"weight_map", weight_map}}.dump(2) +
                 "\n");
  json config = model::read_json_file(src.dir() / "config.json");
  config["quantization_config"] = job.quantization_config;
  model::write_text_file(out_dir / "config.json", config.dump(2) + "\n");
  if (job.quantization_config.value("quant_method", std::string()) == "gptq")  // AutoGPTQ reads it
    model::write_text_file(out_dir / "quantize_config.json", job.quantization_config.dump(2) + "\n");
  copy_model_side_files(src.dir(), out_dir);
  return res;
}

}  // namespace qsweep::quant
