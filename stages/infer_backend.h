#pragma once
// The backend an infer node answers with (its `backend` param):
//
//   backend: embedded                       # the CPU engine in this process (default);
//                                           # with device: cuda the GPU engine on the node's GPU
//   backend: {kind: openai, endpoints: [http://gpu1:8000/v1, http://gpu2:8000/v1],
//             model: meta-llama/Llama-3.1-8B-Instruct, api_key_env: OPENAI_API_KEY,
//             concurrency: 8, chat: false, max_attempts: 5, timeout_s: 600}
//   backend: {kind: vllm, launch: "vllm serve {model_dir} --tensor-parallel-size 8 --port {port} ...",
//             health_timeout_s: 900, keep_alive_s: 60}
//   backend: {kind: qsweep}                 # a managed `qsweep serve` of the checkpoint
//
// openai talks to running servers; vllm and qsweep start one for the node's
// model artifact (stages/managed_server.h; launch defaults: `vllm serve
// {model_dir} --host {host} --port {port} --served-model-name {model}` and
// `{qsweep} serve {model_dir} --host {host} --port {port}
// --served-model-name {model} --threads {threads}`). Loglikelihoods are
// tokenized on the client with the checkpoint folder's tokenizer
// (model/backend/openai_backend.h). The node's GPU slots (resources) are
// held while it runs, so a managed server is counted against them.

#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "model/backend/backend.h"
#include "model/engine/engine.h"
#include "model/tokenizer/tokenizer.h"
#include "pipeline/stage.h"
#include "stages/managed_server.h"

namespace qsweep {

struct NodeBackend {
  std::unique_ptr<model::TokenEngine> engine;  ///< embedded only (CPU or GPU engine)
  std::unique_ptr<model::Tokenizer> tok;
  std::shared_ptr<ManagedServerLease> server;  ///< managed kinds: held while the node runs
  std::unique_ptr<model::Backend> backend;
};

/// "" when the param is valid, else the message (naming params.backend.FIELD).
std::string check_backend_param(const nlohmann::json& backend);

/// params.device's default (Stage::resolve_defaults): cuda for an embedded
/// backend on a node holding a GPU slot, else cpu.
void default_infer_device(nlohmann::json& params, const Resources& resources);

/// "" when params.device / dtype / tf32 are valid together (cuda and dtypes
/// other than float32 with the embedded backend only), else the message.
std::string check_device_params(const nlohmann::json& params);

/// "model=<served id> server=<version>", which enters the node's key (a
/// server upgrade or another served model is a new key): for `kind: openai`
/// from GET /models and GET /version of the running server (asked once per
/// process and backend); for a managed `qsweep serve` this executable's
/// version; for managed vLLM `vllm --version`. "" for the embedded engine.
/// Throws when it cannot be asked (the plan shows the node without a key).
std::string remote_backend_identity(const nlohmann::json& backend);

/// The backend of an infer node for the model folder (starting a managed
/// server when the kind asks for one).
NodeBackend make_node_backend(const StageContext& ctx, const std::filesystem::path& model_dir);

}  // namespace qsweep
