#include "model/checkpoint/llama2c.h"

#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>

#include "model/checkpoint/config.h"
#include "model/checkpoint/safetensors.h"

namespace qsweep::model {
namespace {

[[noreturn]] void fail(const std::filesystem::path& p, const std::string& what) {
  throw std::runtime_error("llama2.c checkpoint " + p.string() + ": " + what);
}

}  // namespace

Llama2cModel read_llama2c(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, "cannot open");
  f.seekg(0, std::ios::end);
  const uint64_t file_size = static_cast<uint64_t>(f.tellg());
  f.seekg(0);
  if (file_size < 28)
    fail(path, "truncated: " + std::to_string(file_size) + " bytes, the header needs 28");
  int32_t h[7];
  f.read(reinterpret_cast<char*>(h), sizeof h);
  Llama2cModel m;
  m.dim = h[0], m.hidden_dim = h[1], m.n_layers = h[2], m.n_heads = h[3], m.n_kv_heads = h[4];
  m.shared_classifier = h[5] > 0;
  m.vocab_size = h[5] == INT32_MIN ? 0 : (h[5] < 0 ? -h[5] : h[5]);
  m.seq_len = h[6];
  const int limit = 1 << 20;
  auto bad = [&](int v) { return v <= 0 || v > limit; };
  if (bad(m.dim) || bad(m.hidden_dim) || bad(m.n_layers) || bad(m.n_heads) || bad(m.n_kv_heads) ||
      bad(m.vocab_size) || bad(m.seq_len))
    fail(path, "implausible header (dim " + std::to_string(h[0]) + ", hidden_dim " +
                   std::to_string(h[1]) + ", n_layers " + std::to_string(h[2]) + ", n_heads " +
                   std::to_string(h[3]) + ", n_kv_heads " + std::to_string(h[4]) + ", vocab_size " +
                   std::to_string(h[5]) + ", seq_len " + std::to_string(h[6]) +
                   "); is this a llama2.c checkpoint?");
  if (m.dim % m.n_heads != 0 || m.n_heads % m.n_kv_heads != 0 || m.head_size() % 2 != 0)
    fail(path,
         "inconsistent header: dim must be a multiple of n_heads, n_heads of n_kv_heads, head size "
         "even");
  const uint64_t d = m.dim, hd = m.hidden_dim, L = m.n_layers, V = m.vocab_size, kv = m.kv_dim();
  const uint64_t rope =
      static_cast<uint64_t>(m.seq_len) * m.head_size();  // two tables of seq_len*hs/2
  const uint64_t n_floats = V * d + L * d + L * d * d + 2 * L * kv * d + L * d * d + L * d +
                            3 * L * hd * d + d + (m.shared_classifier ? 0 : rope + V * d);
  if (28 + 4 * n_floats > file_size)
    fail(path, "truncated: the header implies " + std::to_string(28 + 4 * n_floats) +
                   " bytes, the file has " + std::to_string(file_size));
  auto take = [&](std::vector<float>& v, uint64_t n) {
    v.resize(n);
    f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(4 * n));
    if (!f) fail(path, "read error");
  };
  take(m.token_embedding, V * d);
  take(m.rms_att, L * d);
  take(m.wq, L * d * d);
  take(m.wk, L * kv * d);
  take(m.wv, L * kv * d);
  take(m.wo, L * d * d);
  take(m.rms_ffn, L * d);
  take(m.w1, L * hd * d);
  take(m.w2, L * d * hd);
  take(m.w3, L * hd * d);
  take(m.rms_final, d);
  if (!m.shared_classifier) {
    f.seekg(static_cast<std::streamoff>(4 * rope), std::ios::cur);
    take(m.wcls, V * d);
  }
  return m;
}

std::vector<float> permute_rope_rows(const std::vector<float>& w, int n_heads, int rows, int cols) {
  // Row (h, i, j) of the source, j in {0,1} the pair member, goes to (h, j, i):
  // w.view(n_heads, rows/n_heads/2, 2, cols).transpose(1, 2).reshape(rows, cols).
  std::vector<float> out(w.size());
  const int hd = rows / n_heads, half = hd / 2;
  for (int h = 0; h < n_heads; ++h)
    for (int i = 0; i < half; ++i)
      for (int j = 0; j < 2; ++j) {
        const size_t src = static_cast<size_t>(h * hd + 2 * i + j) * cols;
        const size_t dst = static_cast<size_t>(h * hd + j * half + i) * cols;
        std::memcpy(&out[dst], &w[src], sizeof(float) * cols);
      }
  return out;
}

void import_llama2c(const std::filesystem::path& bin, const std::filesystem::path& tokenizer_bin,
                    const std::filesystem::path& out_dir) {
  if (!tokenizer_bin.empty() && !std::filesystem::exists(tokenizer_bin))
    throw std::runtime_error("llama2.c tokenizer " + tokenizer_bin.string() + " does not exist");
  const Llama2cModel m = read_llama2c(bin);
  const int64_t d = m.dim, hd = m.hidden_dim, kv = m.kv_dim();
  std::map<std::string, TensorData> t;
  auto slice = [](const std::vector<float>& v, int layer, int64_t n) {
    return std::vector<float>(v.begin() + layer * n, v.begin() + (layer + 1) * n);
  };
  t["model.embed_tokens.weight"] = make_f32_tensor({m.vocab_size, d}, m.token_embedding.data());
  for (int l = 0; l < m.n_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const auto wq = permute_rope_rows(slice(m.wq, l, d * d), m.n_heads, static_cast<int>(d),
                                      static_cast<int>(d));
    const auto wk = permute_rope_rows(slice(m.wk, l, kv * d), m.n_kv_heads, static_cast<int>(kv),
                                      static_cast<int>(d));
    t[p + "self_attn.q_proj.weight"] = make_f32_tensor({d, d}, wq.data());
    t[p + "self_attn.k_proj.weight"] = make_f32_tensor({kv, d}, wk.data());
    t[p + "self_attn.v_proj.weight"] = make_f32_tensor({kv, d}, m.wv.data() + l * kv * d);
    t[p + "self_attn.o_proj.weight"] = make_f32_tensor({d, d}, m.wo.data() + l * d * d);
    t[p + "mlp.gate_proj.weight"] = make_f32_tensor({hd, d}, m.w1.data() + l * hd * d);
    t[p + "mlp.down_proj.weight"] = make_f32_tensor({d, hd}, m.w2.data() + l * d * hd);
    t[p + "mlp.up_proj.weight"] = make_f32_tensor({hd, d}, m.w3.data() + l * hd * d);
    t[p + "input_layernorm.weight"] = make_f32_tensor({d}, m.rms_att.data() + l * d);
    t[p + "post_attention_layernorm.weight"] = make_f32_tensor({d}, m.rms_ffn.data() + l * d);
  }
  t["model.norm.weight"] = make_f32_tensor({d}, m.rms_final.data());
  if (!m.shared_classifier) t["lm_head.weight"] = make_f32_tensor({m.vocab_size, d}, m.wcls.data());

  ModelConfig c;
  c.arch = Arch::kLlama;
  c.architecture = "LlamaForCausalLM";
  c.vocab_size = m.vocab_size;
  c.n_embd = m.dim;
  c.n_ff = m.hidden_dim;
  c.n_layer = m.n_layers;
  c.n_head = m.n_heads;
  c.n_head_kv = m.n_kv_heads;
  c.head_dim = m.head_size();
  c.rms_norm_eps = 1e-5;  // llama2.c's rmsnorm
  c.rope.theta = 10000.0;
  c.tie_word_embeddings = m.shared_classifier;
  c.max_position_embeddings = m.seq_len;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  c.torch_dtype = "float32";

  std::filesystem::create_directories(out_dir);
  write_safetensors(out_dir / "model.safetensors", t, {{"format", "pt"}});
  auto write_text = [&](const char* name, const std::string& s) {
    const auto p = out_dir / name;
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f << s;
    if (!f) throw std::runtime_error("import_llama2c: cannot write " + p.string());
  };
  write_text("config.json", model_config_to_json(c));
  write_text("generation_config.json",
             "{\n  \"bos_token_id\": 1,\n  \"eos_token_id\": 2,\n  \"do_sample\": false\n}\n");
}

}  // namespace qsweep::model
