#include "pipeline/resources.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

namespace qsweep {

namespace {
int count_gpus() {
  int n = 0;
  for (int i = 0; i < 64; ++i)
    if (std::filesystem::exists("/dev/nvidia" + std::to_string(i))) ++n;
  if (const char* v = std::getenv("CUDA_VISIBLE_DEVICES")) {
    std::string s(v);
    if (s.empty()) return 0;
    int listed = static_cast<int>(std::count(s.begin(), s.end(), ',')) + 1;
    n = std::min(n, listed);
  }
  return n;
}
}  // namespace

Resources Resources::all_threads() {
  Resources r;
  r.threads = int(std::max(1u, std::thread::hardware_concurrency()));
  return r;
}

Resources machine_capacity(const Limits& l) {
  Resources r;
  r.threads = l.threads.value_or(std::max(1u, std::thread::hardware_concurrency()));
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  r.memory = l.memory.value_or(pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * page : UINT64_MAX);
  r.gpu = l.gpu.value_or(count_gpus());
  r.api = l.api.value_or(16);
  return r;
}

std::string ResourcePool::fit(Resources* r) const {
  r->threads = std::clamp(r->threads, 0, std::max(cap_.threads, 1));
  if (cap_.memory && r->memory > cap_.memory) r->memory = cap_.memory;
  if (r->gpu > cap_.gpu)
    return "needs " + std::to_string(r->gpu) + " GPU(s) but " + std::to_string(cap_.gpu) +
           " are available (set limits.gpu or --gpus, or CUDA_VISIBLE_DEVICES)";
  if (r->api > cap_.api)
    return "needs " + std::to_string(r->api) + " API slots but limits.api is " + std::to_string(cap_.api);
  return {};
}

bool ResourcePool::fits(const Resources& r) const {
  return r.threads <= free_.threads && r.memory <= free_.memory && r.gpu <= free_.gpu &&
         r.api <= free_.api;
}

bool ResourcePool::acquire(const Resources& r, const std::function<bool()>& stop) {
  std::unique_lock<std::mutex> lk(mu_);
  while (!fits(r)) {
    if (stop()) return false;
    cv_.wait_for(lk, std::chrono::milliseconds(100));
  }
  free_.threads -= r.threads;
  free_.memory -= r.memory;
  free_.gpu -= r.gpu;
  free_.api -= r.api;
  return true;
}

void ResourcePool::release(const Resources& r) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    free_.threads += r.threads;
    free_.memory += r.memory;
    free_.gpu += r.gpu;
    free_.api += r.api;
  }
  cv_.notify_all();
}

}  // namespace qsweep
