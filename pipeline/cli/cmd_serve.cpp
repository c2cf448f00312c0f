// qsweep serve DIR: an OpenAI-compatible HTTP server over the embedded engine
// and any model folder qsweep loads (fp32 or a quantized artifact). The API
// is model/serve/openai_server.h; this file binds it to HTTP (cpp-httplib)
// and handles SIGINT/SIGTERM (stop accepting, finish, exit 0).
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

#include "model/serve/openai_server.h"
#include "pipeline/cli/commands.h"
#include "model/checkpoint/checkpoint.h"
#include "model/cuda/gpu_options.h"
#include "model/engine/engine.h"
#include "quant/cuda_plugin.h"
#include "quant/formats/quantized_loader.h"
#include "qsweep_version.h"

// Last: it pulls in <resolv.h>, whose `_res` macro breaks Eigen's headers.
#include <httplib.h>

namespace qsweep::cli {

namespace {

using json = nlohmann::json;

void reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void reply_error(httplib::Response& res, const model::ApiError& e) { reply(res, e.status(), e.body()); }

}  // namespace

int cmd_serve(const ServeArgs& a) {
  // Signals go to one watcher thread (blocked everywhere else, before any
  // thread starts), which stops the server.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  try {
    std::unique_ptr<model::TokenEngine> engine;
    if (a.device == "cuda") {  // the GPU engine on the first visible GPU (docs/gpu.md)
      std::string why;
      const quant::CudaPlugin* cuda = quant::cuda_plugin(&why);
      if (!cuda || !cuda->available(&why)) {
        std::fprintf(stderr, "qsweep: error: --device cuda: %s\n", why.c_str());
        return k_exit_usage;
      }
      model::cuda::GpuEngineOptions go;
      go.dtype = model::cuda::parse_gpu_dtype(a.dtype);
      go.max_length = a.max_length;
      engine = cuda->make_engine(model::Checkpoint(a.dir), go);
    } else if (a.device == "cpu") {
      if (a.dtype != "float32") {
        std::fprintf(stderr, "qsweep: error: --dtype %s needs --device cuda (the CPU engine is float32)\n",
                     a.dtype.c_str());
        return k_exit_usage;
      }
      model::EngineOptions eo;
      eo.threads = a.threads;
      eo.max_length = a.max_length;
      eo.linear_loader = quant::quantized_linear_loader();
      engine = model::Engine::load(a.dir, eo);
    } else {
      std::fprintf(stderr, "qsweep: error: --device %s: cpu or cuda\n", a.device.c_str());
      return k_exit_usage;
    }
    std::fprintf(stderr, "qsweep serve: %s\n", engine->describe().c_str());
    const auto tok = model::load_tokenizer(a.dir);
    std::optional<model::ChatTemplate> chat;
    try {
      chat = model::ChatTemplate::from_config(a.dir + "/tokenizer_config.json",
                                              a.chat_template == "auto" ? std::nullopt
                                                                        : model::parse_chat_family(a.chat_template));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "qsweep serve: no chat template (%s); /v1/chat/completions is refused\n", e.what());
    }
    model::OpenAIServerOptions so;
    so.served_name = a.served_name.empty() ? a.dir : a.served_name;
    so.max_concurrent = a.max_concurrent;
    so.max_batch_tokens = std::max(0, a.max_batch_tokens);
    model::OpenAIServer api(*engine, *tok, chat ? &*chat : nullptr, so);
    std::string key;
    if (!a.api_key_env.empty()) {
      const char* k = std::getenv(a.api_key_env.c_str());
      if (!k || !*k) {
        std::fprintf(stderr, "qsweep: error: --api-key-env %s: the variable is not set\n", a.api_key_env.c_str());
        return k_exit_usage;
      }
      key = k;
    }

    httplib::Server svr;
    svr.new_task_queue = [n = std::max(2, a.max_concurrent * 2)] { return new httplib::ThreadPool(size_t(n)); };
    auto authorized = [&](const httplib::Request& req, httplib::Response& res) {
      if (key.empty() || req.get_header_value("Authorization") == "Bearer " + key) return true;
      reply_error(res, model::ApiError(401, "authentication_error", "invalid or missing API key"));
      return false;
    };
    auto post = [&](const char* path, auto handler) {
      svr.Post(path, [&, handler](const httplib::Request& req, httplib::Response& res) {
        if (!authorized(req, res)) return;
        json body;
        try {
          body = json::parse(req.body);
        } catch (const std::exception& e) {
          reply_error(res, model::ApiError(400, "invalid_request_error", std::string("the body is not JSON: ") + e.what()));
          return;
        }
        try {
          reply(res, 200, handler(body));
        } catch (const model::ApiError& e) {
          reply_error(res, e);
        } catch (const std::exception& e) {
          reply_error(res, model::ApiError(500, "internal_server_error", e.what()));
        }
      });
    };
    svr.Get("/health", [](const httplib::Request&, httplib::Response& res) { reply(res, 200, json::object()); });
    svr.Get("/version", [](const httplib::Request&, httplib::Response& res) {
      reply(res, 200, {{"version", "qsweep-" QSWEEP_VERSION}});
    });
    svr.Get("/v1/models", [&](const httplib::Request& req, httplib::Response& res) {
      if (authorized(req, res)) reply(res, 200, api.models());
    });
    post("/v1/completions", [&](const json& b) { return api.completions(b); });
    post("/v1/chat/completions", [&](const json& b) { return api.chat_completions(b); });
    svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (res.status == 404 && res.body.empty())
        reply_error(res, model::ApiError(404, "NotFoundError", "no route " + req.method + " " + req.path));
    });

    int port = a.port;
    if (port == 0) {
      port = svr.bind_to_any_port(a.host);
    } else if (!svr.bind_to_port(a.host, port)) {
      port = -1;
    }
    if (port < 0) {
      std::fprintf(stderr, "qsweep: error: cannot listen on %s:%d (in use? try another --port)\n", a.host.c_str(), a.port);
      return k_exit_usage;
    }
    std::thread watcher([&] {
      int sig = 0;
      sigwait(&set, &sig);
      std::fprintf(stderr, "qsweep serve: %s: stopping\n", strsignal(sig));
      svr.stop();
    });
    watcher.detach();
    std::printf("qsweep serve: listening on http://%s:%d/v1 (model %s, max length %d)\n", a.host.c_str(), port,
                so.served_name.c_str(), engine->max_length());
    std::fflush(stdout);
    svr.listen_after_bind();
    return k_exit_ok;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qsweep: error: %s\n", e.what());
    return k_exit_failed;
  }
}

}  // namespace qsweep::cli
