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

bool ResourcePool::acquire(const Resources& r, const std::function<bool()>& stop, std::vector<int>* gpu_ids) {
  std::unique_lock<std::mutex> lk(mu_);
  while (!fits(r)) {
    if (stop()) return false;
    cv_.wait_for(lk, std::chrono::milliseconds(100));
  }
  free_.threads -= r.threads;
  free_.memory -= r.memory;
  free_.gpu -= r.gpu;
  free_.api -= r.api;
  // The lowest free slots: slot i is the i-th visible device.
  if (gpu_used_.size() < size_t(std::max(0, cap_.gpu))) gpu_used_.resize(size_t(cap_.gpu), false);
  std::vector<int> ids;
  for (size_t i = 0; i < gpu_used_.size() && int(ids.size()) < r.gpu; ++i)
    if (!gpu_used_[i]) {
      gpu_used_[i] = true;
      ids.push_back(int(i));
    }
  if (gpu_ids) *gpu_ids = std::move(ids);
  return true;
}

void ResourcePool::release(const Resources& r, const std::vector<int>& gpu_ids) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    free_.threads += r.threads;
    free_.memory += r.memory;
    free_.gpu += r.gpu;
    free_.api += r.api;
    for (int i : gpu_ids)
      if (i >= 0 && size_t(i) < gpu_used_.size()) gpu_used_[size_t(i)] = false;
  }
  cv_.notify_all();
}

std::string cuda_visible_devices(const std::vector<int>& slots) {
  // Slot i is the i-th entry of our own CUDA_VISIBLE_DEVICES when set.
  std::vector<std::string> visible;
  if (const char* v = std::getenv("CUDA_VISIBLE_DEVICES")) {
    std::string cur;
    for (const char* p = v;; ++p) {
      if (*p == ',' || *p == 0) {
        visible.push_back(cur);
        cur.clear();
        if (*p == 0) break;
      } else {
        cur += *p;
      }
    }
  }
  std::string out;
  for (int i : slots) {
    const std::string id = size_t(i) < visible.size() ? visible[size_t(i)] : std::to_string(i);
    out += (out.empty() ? "" : ",") + id;
  }
  return out;
}

}  // namespace qsweep
