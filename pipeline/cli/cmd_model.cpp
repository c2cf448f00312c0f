// qsweep model import | random | generate | score | perplexity | kl: the embedded engine
// from the command line (a checkpoint folder, no experiment needed).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include <tbb/parallel_for.h>

#include "model/checkpoint/config.h"
#include "model/checkpoint/llama2c.h"
#include "model/checkpoint/safetensors.h"
#include "model/engine/engine.h"
#include "model/tokenizer/llama2c_tokenizer.h"
#include "model/tokenizer/tokenizer.h"
#include "pipeline/cli/commands.h"
#include "quant/formats/quantized_loader.h"
#include "quant/calib_data.h"
#include "quant/quality.h"

namespace qsweep::cli {

namespace fs = std::filesystem;

namespace {

struct Loaded {
  std::unique_ptr<model::Engine> engine;
  std::unique_ptr<model::Tokenizer> tok;
};

Loaded load(const std::string& dir, int threads) {
  Loaded l;
  model::EngineOptions o;
  o.threads = threads;
  // Quantized layers (gptq, awq, compressed-tensors) run the quantized Linear
  // kernels; plain fp16/bf16/fp32 layers load dense as before.
  o.linear_loader = quant::quantized_linear_loader();
  l.engine = model::Engine::load(dir, o);
  l.tok = model::load_tokenizer(dir);
  return l;
}

std::vector<int> to_int(const std::vector<model::TokenId>& v) { return {v.begin(), v.end()}; }

// Runs a command body; an exception (bad folder, bad request) is one error
// line and exit code 1.
template <class Body>
int guarded(Body&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qsweep: error: %s\n", e.what());
    return k_exit_failed;
  }
  return k_exit_ok;
}

}  // namespace

int cmd_model_random(const std::string& config, const std::string& out, uint64_t seed, double stdev,
                     const std::string& dtype, const std::string& tokenizer) {
  return guarded([&] {
    const model::ModelConfig c = model::load_model_config(config);
    model::DType dt = model::DType::kBF16;
    if (dtype == "float32") dt = model::DType::kF32;
    else if (dtype == "float16") dt = model::DType::kF16;
    else if (dtype != "bfloat16") throw std::runtime_error("--dtype: '" + dtype + "' is not float32, bfloat16 or float16");
    const int d = c.n_embd, qd = c.n_head * c.head_dim, kvd = c.n_head_kv * c.head_dim;
    struct Spec {
      std::string name;
      std::vector<int64_t> shape;
      bool norm;  // RMSNorm weight: 1 (Gemma stores w of 1 + w: 0)
    };
    std::vector<Spec> specs = {{"model.embed_tokens.weight", {c.vocab_size, d}, false}, {"model.norm.weight", {d}, true}};
    if (!c.tie_word_embeddings) specs.push_back({"lm_head.weight", {c.vocab_size, d}, false});
    for (int l = 0; l < c.n_layer; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      specs.push_back({p + "input_layernorm.weight", {d}, true});
      specs.push_back({p + "post_attention_layernorm.weight", {d}, true});
      for (auto [n, rows] : {std::pair<const char*, int>{"q_proj", qd}, {"k_proj", kvd}, {"v_proj", kvd}}) {
        specs.push_back({p + "self_attn." + n + ".weight", {rows, d}, false});
        if (c.attention_bias) specs.push_back({p + "self_attn." + n + ".bias", {rows}, false});
      }
      specs.push_back({p + "self_attn.o_proj.weight", {d, qd}, false});
      if (model::has_o_proj_bias(c)) specs.push_back({p + "self_attn.o_proj.bias", {d}, false});
      specs.push_back({p + "mlp.gate_proj.weight", {c.n_ff, d}, false});
      specs.push_back({p + "mlp.up_proj.weight", {c.n_ff, d}, false});
      specs.push_back({p + "mlp.down_proj.weight", {d, c.n_ff}, false});
      if (c.mlp_bias)
        for (auto [n, rows] : {std::pair<const char*, int>{"gate_proj", c.n_ff}, {"up_proj", c.n_ff}, {"down_proj", d}})
          specs.push_back({p + "mlp." + n + ".bias", {rows}, false});
    }
    std::vector<model::TensorData> data(specs.size());
    tbb::parallel_for(size_t(0), specs.size(), [&](size_t i) {
      const Spec& sp = specs[i];
      size_t n = 1;
      for (int64_t x : sp.shape) n *= size_t(x);
      std::vector<float> v(n);
      if (sp.norm) {
        std::fill(v.begin(), v.end(), c.norm_plus_one ? 0.0f : 1.0f);
      } else {
        std::mt19937_64 rng(seed * 1000003 + i);
        std::normal_distribution<float> nd(0.0f, float(stdev));
        for (float& x : v) x = nd(rng);
      }
      data[i] = model::make_float_tensor(sp.norm ? model::DType::kF32 : dt, sp.shape, v.data(), n);
    });
    fs::create_directories(out);
    std::map<std::string, model::TensorData> tensors;
    for (size_t i = 0; i < specs.size(); ++i) tensors[specs[i].name] = std::move(data[i]);
    model::write_safetensors(fs::path(out) / "model.safetensors", tensors);
    fs::copy_file(config, fs::path(out) / "config.json", fs::copy_options::overwrite_existing);
    if (!tokenizer.empty())
      for (const auto& e : fs::directory_iterator(tokenizer))
        if (e.is_regular_file() && e.path().filename() != "config.json" && e.path().extension() != ".safetensors")
          fs::copy_file(e.path(), fs::path(out) / e.path().filename(), fs::copy_options::overwrite_existing);
    std::printf("%s: %zu tensors, random N(0, %g^2) %s weights (seed %llu)\n", out.c_str(), specs.size(), stdev,
                dtype.c_str(), (unsigned long long)seed);
  });
}

int cmd_model_import(const std::string& bin, const std::string& tok, const std::string& out) {
  int rc = guarded([&] {
    model::import_llama2c(bin, tok, out);
    // tokenizer.json + tokenizer_config.json equivalent to the llama2.c
    // tokenizer, so that qsweep and transformers load the folder as a whole.
    model::write_hf_tokenizer(*model::Llama2cTokenizer::load(tok), out);
  });
  if (rc != k_exit_ok) return rc;
  std::printf("wrote %s: config.json, generation_config.json, model.safetensors, tokenizer.json, tokenizer_config.json\n",
              out.c_str());
  return k_exit_ok;
}

int cmd_model_generate(const ModelArgs& a) {
  return guarded([&] {
    Loaded l = load(a.dir, a.threads);
    std::vector<int> prompt = to_int(l.tok->encode(a.prompt, true));
    if (prompt.empty()) prompt.push_back(l.tok->bos_id());
    model::GenerateOptions g;
    g.max_tokens = a.max_tokens;
    g.temperature = static_cast<float>(a.temperature);
    g.seed = a.seed;
    if (l.tok->eos_id() >= 0) g.stop_ids.push_back(l.tok->eos_id());
    auto t0 = std::chrono::steady_clock::now();
    std::vector<int> out = l.engine->generate(prompt, g);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // Decode prompt and continuation together: a SentencePiece-style decoder
    // strips the leading space of the first token it sees.
    std::vector<model::TokenId> ids(prompt.begin(), prompt.end());
    ids.insert(ids.end(), out.begin(), out.end());
    std::printf("%s\n", l.tok->decode(ids, true).c_str());
    if (a.verbose) {
      std::fprintf(stderr, "ids:");
      for (int id : out) std::fprintf(stderr, " %d", id);
      std::fprintf(stderr, "\n%zu tokens in %.3f s (%.1f tokens/s)\n", out.size(), s, out.size() / std::max(s, 1e-9));
    }
  });
}

int cmd_model_score(const ModelArgs& a) {
  return guarded([&] {
    Loaded l = load(a.dir, a.threads);
    // lm-eval's _encode_pair: trailing spaces of the context move to the
    // continuation; the continuation's ids are those of context+continuation
    // after the context's (so a SentencePiece word boundary is tokenized as
    // in running text). An empty context becomes the BOS/EOT prefix token.
    std::string context = a.context, continuation = a.continuation;
    size_t end = context.find_last_not_of(' ');
    size_t n_spaces = end == std::string::npos ? context.size() : context.size() - end - 1;
    continuation = context.substr(context.size() - n_spaces) + continuation;
    context.resize(context.size() - n_spaces);
    std::vector<int> whole = to_int(l.tok->encode(context + continuation, false));
    std::vector<int> ctx = to_int(l.tok->encode(context, false));
    std::vector<int> cont(whole.begin() + static_cast<long>(std::min(ctx.size(), whole.size())), whole.end());
    if (ctx.empty() || a.bos) ctx.insert(ctx.begin(), l.tok->bos_id() >= 0 ? l.tok->bos_id() : l.tok->eos_id());
    auto r = l.engine->loglikelihood(ctx, cont);
    std::printf("{\"logprob\": %.6f, \"is_greedy\": %s, \"context_tokens\": %zu, \"continuation_tokens\": %zu}\n",
                r.logprob, r.is_greedy ? "true" : "false", ctx.size(), cont.size());
  });
}

int cmd_model_perplexity(const ModelArgs& a) {
  return guarded([&] {
    Loaded l = load(a.dir, a.threads);
    std::ifstream f(a.file, std::ios::binary);
    if (!f) throw std::runtime_error("cannot read " + a.file);
    std::stringstream ss;
    ss << f.rdbuf();
    std::vector<int> ids = to_int(l.tok->encode(ss.str(), false));
    auto r = l.engine->loglikelihood_rolling(ids, a.max_length);
    double ppl = std::exp(-r.logprob / std::max(1, r.n_tokens));
    std::printf("{\"tokens\": %d, \"windows\": %d, \"logprob\": %.6f, \"perplexity\": %.6f}\n", r.n_tokens,
                r.n_windows, r.logprob, ppl);
  });
}

int cmd_model_kl(const ModelArgs& a, const std::string& quant_dir, const std::string& json_out) {
  return guarded([&] {
    Loaded ref = load(a.dir, a.threads), q = load(quant_dir, a.threads);
    const int max_len = a.max_length > 0 ? a.max_length : ref.engine->max_length();
    std::vector<std::vector<int>> seqs;
    for (const quant::CalibDocument& doc : quant::read_documents(a.file, "text")) {
      if (doc.is_chat())
        throw std::runtime_error(a.file + ": conversations are not supported here; give text");
      std::vector<int> ids = to_int(ref.tok->encode(doc.text, true));
      if (int(ids.size()) > max_len) ids.resize(max_len);
      seqs.push_back(std::move(ids));
    }
    const quant::QualityResult r = quant::compare_models(*ref.engine, *q.engine, seqs);
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "{\"sequences\": %d, \"positions\": %lld, \"mean_kl\": %.6g, \"p99_kl\": %.6g, "
                  "\"max_kl\": %.6g, \"ppl_ref\": %.6f, \"ppl_quant\": %.6f, \"top1_agree\": %.6f}",
                  r.sequences, static_cast<long long>(r.positions), r.mean_kl, r.p99_kl, r.max_kl,
                  r.ppl_ref, r.ppl_quant, r.top1_agree);
    std::printf("%s\n", buf);
    if (!json_out.empty()) {
      std::ofstream f(json_out, std::ios::trunc);
      f << buf << "\n";
      if (!f.flush()) throw std::runtime_error("cannot write " + json_out);
    }
  });
}

}  // namespace qsweep::cli
