// Quantizing a synthetic 1B-class Llama end to end with GPTQ (issue #4
// "Performance", target 2): peak RSS and time per layer.
//
//   quantize_model_bench --make-model DIR [--layers 22] [--d 2048] [--ff 5632]
//                        [--vocab 32000] [--heads 32] [--kv-heads 4]
//       writes DIR/config.json + DIR/model.safetensors (random fp32 weights,
//       TinyLlama-1.1B shape by default; untied lm_head), streaming tensor by
//       tensor (never the whole model in memory). Run it separately: the
//       RSS of --quantize is the number that matters.
//   quantize_model_bench --quantize DIR OUT [--seqs 8] [--len 512] [--threads all]
//                        [--batch-rows N]  (rows per forward call, job.max_batch_rows; default 4096)
//       quantize_model() with GPTQ w4 g128 sym (act-order off) to
//       compressed-tensors; prints the time of every layer, the peak RSS
//       (VmHWM of /proc/self/status) and the target: 3 x one decoder
//       layer's fp32 bytes + the calibration activations ([tokens, d] fp32).
//   Run under /usr/bin/time -v for an outside view of the same peak.

#include <tbb/global_control.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "model/checkpoint/checkpoint.h"
#include "model/checkpoint/config.h"
#include "quant/quantize_model.h"

namespace fs = std::filesystem;
using namespace qsweep;
using Clock = std::chrono::steady_clock;

namespace {

double secs(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

long status_kb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const size_t n = std::strlen(key);
  while (std::getline(f, line))
    if (line.compare(0, n, key) == 0) return std::atol(line.c_str() + n + 1);
  return -1;
}

struct Spec {
  int layers = 22, d = 2048, ff = 5632, vocab = 32000, heads = 32, kv_heads = 4;
};

/// Random fp32 weights, streamed into one safetensors file (sorted names,
/// header padded to 8 bytes, as write_safetensors does).
void make_model(const fs::path& dir, const Spec& s) {
  const int64_t d = s.d, ff = s.ff, hd = d / s.heads, kv = hd * s.kv_heads;
  struct T {
    std::string name;
    std::vector<int64_t> shape;
    float std;  // 0: norm weight (ones)
  };
  std::vector<T> ts;
  ts.push_back({"model.embed_tokens.weight", {s.vocab, d}, 0.02f});
  ts.push_back({"lm_head.weight", {s.vocab, d}, 0.02f});
  ts.push_back({"model.norm.weight", {d}, 0});
  for (int l = 0; l < s.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    ts.push_back({p + "self_attn.q_proj.weight", {d, d}, 0.02f});
    ts.push_back({p + "self_attn.k_proj.weight", {kv, d}, 0.02f});
    ts.push_back({p + "self_attn.v_proj.weight", {kv, d}, 0.02f});
    ts.push_back({p + "self_attn.o_proj.weight", {d, d}, 0.02f});
    ts.push_back({p + "mlp.gate_proj.weight", {ff, d}, 0.02f});
    ts.push_back({p + "mlp.up_proj.weight", {ff, d}, 0.02f});
    ts.push_back({p + "mlp.down_proj.weight", {d, ff}, 0.02f});
    ts.push_back({p + "input_layernorm.weight", {d}, 0});
    ts.push_back({p + "post_attention_layernorm.weight", {d}, 0});
  }
  std::sort(ts.begin(), ts.end(), [](const T& a, const T& b) { return a.name < b.name; });
  nlohmann::ordered_json h;
  h["__metadata__"] = {{"format", "pt"}};
  size_t off = 0;
  std::vector<size_t> count(ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    size_t n = 1;
    for (int64_t v : ts[i].shape) n *= size_t(v);
    count[i] = n;
    h[ts[i].name] = {{"dtype", "F32"}, {"shape", ts[i].shape}, {"data_offsets", {off, off + 4 * n}}};
    off += 4 * n;
  }
  std::string hs = h.dump();
  while (hs.size() % 8) hs.push_back(' ');
  fs::create_directories(dir);
  {
    std::ofstream f(dir / "model.safetensors", std::ios::binary | std::ios::trunc);
    const uint64_t hl = hs.size();
    f.write(reinterpret_cast<const char*>(&hl), 8);
    f.write(hs.data(), std::streamsize(hs.size()));
    std::mt19937_64 rng(42);
    std::vector<float> buf;
    for (size_t i = 0; i < ts.size(); ++i) {
      buf.resize(count[i]);
      if (ts[i].std == 0) {
        std::fill(buf.begin(), buf.end(), 1.0f);
      } else {
        // uniform with the given standard deviation (fast; GPTQ does not care)
        const float a = ts[i].std * 1.7320508f;
        for (float& v : buf) v = (float(rng() >> 40) * (2.0f / 16777216.0f) - 1.0f) * a;
      }
      f.write(reinterpret_cast<const char*>(buf.data()), std::streamsize(4 * buf.size()));
    }
    if (!f) throw std::runtime_error("write failed");
  }
  model::ModelConfig c;
  c.arch = model::Arch::kLlama;
  c.architecture = "LlamaForCausalLM";
  c.vocab_size = s.vocab;
  c.n_embd = s.d;
  c.n_ff = s.ff;
  c.n_layer = s.layers;
  c.n_head = s.heads;
  c.n_head_kv = s.kv_heads;
  c.head_dim = int(hd);
  c.rms_norm_eps = 1e-5;
  c.rope.theta = 10000.0;
  c.tie_word_embeddings = false;
  c.max_position_embeddings = 2048;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  c.torch_dtype = "float32";
  std::ofstream(dir / "config.json") << model::model_config_to_json(c);
  std::printf("wrote %s (%.2f GB of fp32 weights)\n", dir.c_str(), double(off) / 1e9);
}

int quantize(const fs::path& dir, const fs::path& out, int seqs, int len, int threads,
             int batch_rows) {
  tbb::global_control gc(tbb::global_control::max_allowed_parallelism, threads);
  const auto t0 = Clock::now();
  const model::Checkpoint src(dir);
  const model::ModelConfig& c = src.config();
  const int64_t d = c.n_embd, ff = c.n_ff, hd = c.head_dim > 0 ? c.head_dim : d / c.n_head;
  const int64_t kv = hd * (c.n_head_kv > 0 ? c.n_head_kv : c.n_head);
  const double layer_bytes = 4.0 * double(2 * d * d + 2 * kv * d + 3 * ff * d + 2 * d);
  const double act_bytes = 4.0 * double(seqs) * len * d;
  std::printf("model %s: %d layers, d %lld, ff %lld, vocab %d; calibration %d x %d tokens; %d threads\n",
              dir.c_str(), c.n_layer, (long long)d, (long long)ff, c.vocab_size, seqs, len, threads);

  quant::QuantizeModelJob job;
  job.recipe.method = quant::LayerRecipe::Method::kGptq;
  job.recipe.bits = 4;
  job.recipe.group_size = 128;
  job.recipe.sym = true;
  if (batch_rows > 0) job.max_batch_rows = batch_rows;
  std::printf("rows per forward call: %d\n", job.max_batch_rows);
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> tok(3, c.vocab_size - 1);
  job.calibration.assign(seqs, {});
  for (auto& s : job.calibration) {
    s.push_back(1);
    while (int(s.size()) < len) s.push_back(tok(rng));
  }
  quant::prepare_format(job, src, quant::CheckpointFormat::kCompressedTensors, false,
                        nlohmann::json::object());
  auto last = Clock::now();
  job.progress = [&](int done, int total) {
    const auto now = Clock::now();
    std::printf("layer %d/%d: %.1f s (VmRSS %.0f MiB, VmHWM %.0f MiB)\n", done, total, secs(last, now),
                status_kb("VmRSS:") / 1024.0, status_kb("VmHWM:") / 1024.0);
    std::fflush(stdout);
    last = now;
  };
  job.log = [](const std::string& m) { std::printf("  %s\n", m.c_str()); };
  fs::remove_all(out);
  quant::quantize_model(src, job, out);
  const double total = secs(t0, Clock::now());
  const double hwm = status_kb("VmHWM:") * 1024.0;
  const double target = 3 * layer_bytes + act_bytes;
  std::printf("total %.1f s (%.1f s per layer)\n", total, total / c.n_layer);
  constexpr double MiB = 1024.0 * 1024.0;
  std::printf("one decoder layer fp32 %.0f MiB, calibration activations %.0f MiB\n",
              layer_bytes / MiB, act_bytes / MiB);
  std::printf("peak RSS (VmHWM) %.0f MiB; target 3 x layer + activations = %.0f MiB: %s\n",
              hwm / MiB, target / MiB, hwm < target ? "met" : "NOT met");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: %s --make-model DIR [--layers N --d N --ff N --vocab N --heads N --kv-heads N]\n"
                 "       %s --quantize DIR OUT [--seqs 8] [--len 512] [--threads N] [--batch-rows N]\n",
                 argv[0], argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  try {
    if (mode == "--make-model") {
      Spec s;
      for (int i = 3; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        const int v = std::atoi(argv[i + 1]);
        if (a == "--layers") s.layers = v;
        else if (a == "--d") s.d = v;
        else if (a == "--ff") s.ff = v;
        else if (a == "--vocab") s.vocab = v;
        else if (a == "--heads") s.heads = v;
        else if (a == "--kv-heads") s.kv_heads = v;
        else { std::fprintf(stderr, "unknown option %s\n", a.c_str()); return 2; }
      }
      make_model(argv[2], s);
      return 0;
    }
    if (mode == "--quantize" && argc >= 4) {
      int seqs = 8, len = 512, threads = int(std::max(1u, std::thread::hardware_concurrency())),
          batch_rows = 0;
      for (int i = 4; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        const int v = std::atoi(argv[i + 1]);
        if (a == "--seqs") seqs = v;
        else if (a == "--len") len = v;
        else if (a == "--threads") threads = v;
        else if (a == "--batch-rows") batch_rows = v;
        else { std::fprintf(stderr, "unknown option %s\n", a.c_str()); return 2; }
      }
      return quantize(argv[2], argv[3], seqs, len, threads, batch_rows);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
