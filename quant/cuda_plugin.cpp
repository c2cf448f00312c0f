#include "quant/cuda_plugin.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <stdexcept>

namespace qsweep::quant {

namespace fs = std::filesystem;

namespace {

// Set by load(); the plugin stays loaded for the process's lifetime.
int (*g_available)(char*, size_t) = nullptr;
void (*g_describe)(char*, size_t) = nullptr;
GptqSolver* (*g_make)(int) = nullptr;
AwqSearcher* (*g_awq)(int) = nullptr;
LayerDevice* (*g_layer)(const model::ModelConfig*, int, int, char*, size_t) = nullptr;
model::TokenEngine* (*g_engine)(const model::Checkpoint*, const model::cuda::GpuEngineOptions*, char*, size_t) = nullptr;

bool available_fn(std::string* why) {
  char b[512] = {0};
  const bool ok = g_available(b, sizeof b) != 0;
  *why = b;
  return ok;
}
std::string describe_fn() {
  char b[256] = {0};
  g_describe(b, sizeof b);
  return b;
}
std::unique_ptr<GptqSolver> make_fn(int device) { return std::unique_ptr<GptqSolver>(g_make(device)); }
std::unique_ptr<AwqSearcher> awq_fn(int device) { return std::unique_ptr<AwqSearcher>(g_awq(device)); }

std::unique_ptr<model::TokenEngine> engine_fn(const model::Checkpoint& ckpt,
                                              const model::cuda::GpuEngineOptions& opts) {
  char err[2048] = {0};
  model::TokenEngine* e = g_engine(&ckpt, &opts, err, sizeof err);
  if (!e) throw std::runtime_error(err);
  return std::unique_ptr<model::TokenEngine>(e);
}

std::unique_ptr<LayerDevice> layer_fn(const model::ModelConfig& c, int device, bool tf32) {
  char err[1024] = {0};
  LayerDevice* l = g_layer(&c, device, tf32 ? 1 : 0, err, sizeof err);
  if (!l) throw std::runtime_error(err);
  return std::unique_ptr<LayerDevice>(l);
}

fs::path plugin_path() {
  if (const char* p = std::getenv("QSWEEP_CUDA_PLUGIN"); p && *p) return p;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return exe.parent_path() / "libqsweep_cuda.so";
}

}  // namespace

const CudaPlugin* cuda_plugin(std::string* err) {
  static std::mutex mu;
  static CudaPlugin plugin;
  static std::string load_error;
  static bool tried = false;
  std::lock_guard<std::mutex> lk(mu);
  if (!tried) {
    tried = true;
    const fs::path path = plugin_path();
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      load_error = "this qsweep has no GPU support: " + path.string() +
                   " does not exist (it is built when CMake finds the CUDA toolkit; install it and rebuild, "
                   "or set QSWEEP_CUDA_PLUGIN)";
    } else if (void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL); !h) {
      load_error = std::string("cannot load ") + path.string() + ": " + dlerror();
    } else {
      auto abi = reinterpret_cast<int (*)()>(dlsym(h, "qsweep_cuda_abi_version"));
      g_available = reinterpret_cast<int (*)(char*, size_t)>(dlsym(h, "qsweep_cuda_available"));
      g_describe = reinterpret_cast<void (*)(char*, size_t)>(dlsym(h, "qsweep_cuda_device_description"));
      g_make = reinterpret_cast<GptqSolver* (*)(int)>(dlsym(h, "qsweep_cuda_make_gptq_solver"));
      g_awq = reinterpret_cast<AwqSearcher* (*)(int)>(dlsym(h, "qsweep_cuda_make_awq_searcher"));
      g_engine = reinterpret_cast<decltype(g_engine)>(dlsym(h, "qsweep_cuda_make_engine"));
      g_layer = reinterpret_cast<decltype(g_layer)>(dlsym(h, "qsweep_cuda_make_layer_device"));
      if (!abi || !g_available || !g_describe || !g_make || !g_awq || !g_engine || !g_layer ||
          abi() != k_cuda_plugin_abi) {
        load_error = path.string() + " is not a qsweep CUDA plugin of ABI version " +
                     std::to_string(k_cuda_plugin_abi) + " (rebuild it with this qsweep)";
      } else {
        plugin.path = path.string();
        plugin.available = available_fn;
        plugin.device_description = describe_fn;
        plugin.make_gptq_solver = make_fn;
        plugin.make_awq_searcher = awq_fn;
        plugin.make_engine = engine_fn;
        plugin.make_layer_device = layer_fn;
      }
    }
  }
  if (!plugin.available) {
    *err = load_error;
    return nullptr;
  }
  return &plugin;
}

}  // namespace qsweep::quant
