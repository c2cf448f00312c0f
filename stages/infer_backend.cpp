#include "stages/infer_backend.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>

#include "model/backend/embedded_backend.h"
#include "model/backend/openai_backend.h"
#include "model/checkpoint/checkpoint.h"
#include "model/cuda/gpu_options.h"
#include "model/hub/http.h"
#include "quant/formats/quantized_loader.h"
#include "qsweep_version.h"
#include "stages/node_gpu.h"

namespace qsweep {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const std::set<std::string> k_fields = {"kind",      "endpoints",   "model",            "api_key_env",
                                        "concurrency", "chat",      "max_attempts",     "timeout_s", "backoff_s",
                                        "launch",    "health_timeout_s", "keep_alive_s"};

std::string kind_of(const json& b) {
  if (b.is_null()) return "embedded";
  if (b.is_string()) return b.get<std::string>();
  return b.value("kind", std::string());
}

}  // namespace

void default_infer_device(json& p, const Resources& r) {
  default_device(p, r, kind_of(p.value("backend", json(nullptr))) == "embedded");
}

std::string check_backend_param(const json& b) {
  if (!b.is_null() && !b.is_string() && !b.is_object())
    return "params.backend: expected `embedded` or a mapping {kind: openai|vllm|qsweep, ...}";
  const std::string kind = kind_of(b);
  if (kind != "embedded" && kind != "openai" && kind != "vllm" && kind != "qsweep")
    return "params.backend" + std::string(b.is_object() ? ".kind" : "") + ": unknown backend '" + kind +
           "' (embedded, openai, vllm, qsweep)";
  if (!b.is_object()) return kind == "embedded" ? "" : "params.backend: " + kind + " needs a mapping {kind: " + kind + ", ...}";
  for (const auto& [k, v] : b.items())
    if (!k_fields.count(k)) return "params.backend." + k + ": unknown field (kind, endpoints, model, api_key_env, concurrency, chat, max_attempts, backoff_s, timeout_s, launch, health_timeout_s, keep_alive_s)";
  if (kind == "openai") {
    if (!b.contains("endpoints") || !b["endpoints"].is_array() || b["endpoints"].empty())
      return "params.backend.endpoints: the openai backend needs a list of base URLs (http://HOST:PORT/v1)";
    for (const auto& e : b["endpoints"]) {
      if (!e.is_string() || (e.get<std::string>().rfind("http://", 0) != 0 && e.get<std::string>().rfind("https://", 0) != 0))
        return "params.backend.endpoints: '" + (e.is_string() ? e.get<std::string>() : e.dump()) + "' is not an http(s) URL";
      if (e.get<std::string>().find('@') != std::string::npos)
        return "params.backend.endpoints: an endpoint carries credentials; put the key in an environment variable named by api_key_env";
    }
    if (b.contains("launch")) return "params.backend.launch: only the vllm and qsweep kinds start servers";
  } else if (b.contains("endpoints")) {
    return "params.backend.endpoints: the " + kind + " kind starts its own server; use kind: openai for running ones";
  }
  if (b.contains("launch") && (!b["launch"].is_string() || b["launch"].get<std::string>().find("{port}") == std::string::npos))
    return "params.backend.launch: a command template with {port} (and {model_dir}, {host}, {model})";
  for (const char* k : {"concurrency", "max_attempts"})
    if (b.contains(k) && (!b[k].is_number_integer() || b[k].get<int64_t>() < 1))
      return "params.backend." + std::string(k) + ": a positive integer";
  for (const char* k : {"timeout_s", "health_timeout_s", "keep_alive_s", "backoff_s"})
    if (b.contains(k) && (!b[k].is_number() || b[k].get<double>() < 0)) return "params.backend." + std::string(k) + ": a number >= 0";
  if (b.contains("api_key_env") && !b["api_key_env"].is_string())
    return "params.backend.api_key_env: the NAME of an environment variable (the key itself never goes in a file)";
  return {};
}

std::string check_device_params(const json& p) {
  if (std::string e = check_device_param(p); !e.empty()) return e;
  const std::string device = device_param(p);
  const std::string dtype = p.value("dtype", std::string("float32"));
  bool fp32 = true;
  try {
    fp32 = model::cuda::parse_gpu_dtype(dtype) == model::cuda::GpuDType::kFloat32;
  } catch (const std::exception& e) {
    return std::string("params.dtype: ") + e.what();
  }
  if (device == "cpu" && !fp32)
    return "params.dtype: the CPU engine computes in float32 only; " + dtype + " needs device: cuda";
  if (p.value("tf32", false) && (device != "cuda" || !fp32))
    return "params.tf32: applies to device: cuda with dtype float32 only";
  if (device == "cuda" && kind_of(p.value("backend", json("embedded"))) != "embedded")
    return "params.device: cuda selects the embedded GPU engine; a server backend places itself (drop device)";
  return {};
}

std::string remote_backend_identity(const json& b) {
  const std::string kind = kind_of(b);
  if (kind == "qsweep")  // a managed `qsweep serve` is this executable
    return "model=" + b.value("model", std::string("model")) + " server=qsweep-" QSWEEP_VERSION;
  // (batch_invariant, which unbatches a managed qsweep serve, is a param of
  // the node and so already in its key.)
  if (kind == "vllm") {  // the installed vLLM's version, asked once per process
    static std::mutex vmu;
    static std::string version, error;
    std::lock_guard<std::mutex> lk(vmu);
    if (version.empty() && error.empty()) {
      FILE* f = popen("vllm --version 2>/dev/null", "r");
      char buf[256] = {0};
      std::string out;
      if (f) {
        while (fgets(buf, sizeof buf, f)) out += buf;
        const int rc = pclose(f);
        while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
        if (rc == 0 && !out.empty()) version = out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);
      }
      if (version.empty()) error = "`vllm --version` failed: is vLLM installed on this machine (on PATH)?";
    }
    if (!error.empty()) throw std::runtime_error(error);
    return "model=" + b.value("model", std::string("model")) + " server=vllm-" + version;
  }
  if (kind != "openai") return {};
  static std::mutex mu;
  static std::map<std::string, std::string> memo, failed;  // per process: one question per server
  const std::string k = b.dump();
  {
    std::lock_guard<std::mutex> lk(mu);
    if (auto it = memo.find(k); it != memo.end()) return it->second;
    if (auto it = failed.find(k); it != failed.end()) throw std::runtime_error(it->second);
  }
  model::OpenAIBackendOptions o;
  for (const auto& e : b["endpoints"]) o.endpoints.push_back(e.get<std::string>());
  o.model = b.value("model", std::string());
  o.api_key_env = b.value("api_key_env", std::string());
  o.max_attempts = std::min<int>(2, int(b.value("max_attempts", int64_t(5))));
  o.backoff_s = 0.5;
  o.timeout_s = 30;
  o.chat = true;  // no tokenizer needed to ask
  std::unique_ptr<model::OpenAIBackend> probe_ptr;
  try {
    probe_ptr = std::make_unique<model::OpenAIBackend>(o, std::shared_ptr<model::HttpClient>(model::make_curl_http_client()),
                                                       nullptr);
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lk(mu);
    failed[k] = e.what();
    throw;
  }
  const model::OpenAIBackend& probe = *probe_ptr;
  const std::string id = "model=" + probe.served_model() + " server=" + probe.server_version();
  std::lock_guard<std::mutex> lk(mu);
  return memo.emplace(k, id).first->second;
}

NodeBackend make_node_backend(const StageContext& ctx, const fs::path& model_dir) {
  const json& p = ctx.params;
  const json b = p.value("backend", json("embedded"));
  const std::string kind = kind_of(b);
  NodeBackend nb;
  if (kind == "embedded") {
    const int max_batch = int(p.value("max_batch_tokens", int64_t(0)));
    if (device_param(p) == "cuda") {
      const NodeGpu gpu = require_node_gpu(ctx);
      model::cuda::GpuEngineOptions go;
      go.device = gpu.device;
      go.dtype = model::cuda::parse_gpu_dtype(p.value("dtype", std::string("float32")));
      go.tf32 = p.value("tf32", false);
      go.max_length = int(p.value("max_length", int64_t(0)));
      if (max_batch > 0) go.max_batch_tokens = max_batch;
      nb.engine = gpu.plugin->make_engine(model::Checkpoint(model_dir), go);
    } else {
      model::EngineOptions eo;
      const int64_t threads = p.value("threads", int64_t(0));
      eo.threads = threads > 0 ? int(threads) : std::max(1, ctx.resources.threads);
      eo.max_length = int(p.value("max_length", int64_t(0)));
      if (max_batch > 0) eo.max_batch_tokens = max_batch;
      eo.linear_loader = quant::quantized_linear_loader();
      nb.engine = model::Engine::load(model_dir, eo);
    }
    ctx.progress->log("infer: " + nb.engine->describe());
    nb.tok = model::load_tokenizer(model_dir.string());
    model::EmbeddedBackendOptions bo;
    bo.add_bos_token = p.value("add_bos_token", false);
    bo.batch_invariant = p.value("batch_invariant", false);
    nb.backend = std::make_unique<model::EmbeddedBackend>(*nb.engine, *nb.tok, bo);
    return nb;
  }
  model::OpenAIBackendOptions o;
  o.model = b.value("model", std::string(kind == "openai" ? "" : "model"));
  o.api_key_env = b.value("api_key_env", std::string());
  o.concurrency = int(b.value("concurrency", int64_t(4)));
  o.chat = b.value("chat", false);
  o.max_attempts = int(b.value("max_attempts", int64_t(5)));
  o.timeout_s = b.value("timeout_s", 600.0);
  o.backoff_s = b.value("backoff_s", 1.0);
  o.add_bos_token = p.value("add_bos_token", false);
  o.max_length = int(p.value("max_length", int64_t(0)));
  if (kind == "openai") {
    for (const auto& e : b["endpoints"]) o.endpoints.push_back(e.get<std::string>());
  } else {
    ManagedServerSpec spec;
    const int threads = int(std::max<int64_t>(1, p.value("threads", int64_t(0)) > 0 ? p.value("threads", int64_t(0))
                                                                                    : ctx.resources.threads));
    spec.launch = b.value("launch", std::string(kind == "vllm"
                                                     ? "vllm serve {model_dir} --host {host} --port {port} "
                                                       "--served-model-name {model}"
                                                     : "{qsweep} serve {model_dir} --host {host} --port {port} "
                                                       "--served-model-name {model} --threads " +
                                                           std::to_string(threads) +
                                                           (p.value("batch_invariant", false) ? " --max-batch-tokens 0" : "") +
                                                           (o.max_length > 0 ? " --max-length " + std::to_string(o.max_length) : "")));
    spec.model_dir = model_dir;
    spec.model = o.model;
    spec.log_dir = ctx.journal_dir.empty() ? ctx.output_dir.parent_path() / "servers" : ctx.journal_dir / "servers";
    spec.health_timeout_s = b.value("health_timeout_s", 600.0);
    spec.keep_alive_s = b.value("keep_alive_s", 0.0);
    nb.server = acquire_managed_server(spec, ctx.cancel, [&](const std::string& l) { ctx.progress->log(l); });
    o.endpoints = {nb.server->base_url()};
  }
  try {  // the served model's tokenizer, for token-level requests
    nb.tok = model::load_tokenizer(model_dir.string());
  } catch (const std::exception& e) {
    if (!o.chat) throw;  // loglikelihoods and token-id generation need it
  }
  nb.backend = std::make_unique<model::OpenAIBackend>(o, std::shared_ptr<model::HttpClient>(model::make_curl_http_client()),
                                                      nb.tok.get());
  return nb;
}

}  // namespace qsweep
