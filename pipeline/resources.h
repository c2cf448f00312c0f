#pragma once
// Global resource pools shared by running nodes: CPU threads, memory (bytes),
// GPU slots, concurrent API calls. A node acquires its whole Resources
// all-or-nothing before it runs and releases them after, so e.g. at most one
// `gpu: 1` node runs at a time on a one-GPU machine.

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "pipeline/experiment.h"
#include "pipeline/stage.h"

namespace qsweep {

/// Machine defaults for unset limits: threads = hardware threads, memory =
/// physical memory, gpu = NVIDIA devices visible (/dev/nvidiaN, limited by
/// CUDA_VISIBLE_DEVICES), api = 16.
Resources machine_capacity(const Limits& limits);

/// CUDA_VISIBLE_DEVICES for a child that gets these GPU slots: the slots'
/// entries of this process's CUDA_VISIBLE_DEVICES when set ("2,3" + slot 1
/// -> "3"), else the slot numbers. "" for none.
std::string cuda_visible_devices(const std::vector<int>& slots);

class ResourcePool {
 public:
  explicit ResourcePool(Resources capacity) : cap_(capacity), free_(capacity) {}

  const Resources& capacity() const { return cap_; }

  /// What a request becomes on this machine: threads clamped to capacity
  /// (a 16-thread stage on 2 cores gets 2), memory clamped likewise. Returns
  /// an error message when it can never fit (more GPUs or API slots than exist).
  std::string fit(Resources* r) const;

  /// Blocks until r is free; false when stop() became true while waiting.
  /// *gpu_ids (optional) gets the r.gpu GPU slots granted: indices among the
  /// visible devices, lowest free first.
  bool acquire(const Resources& r, const std::function<bool()>& stop, std::vector<int>* gpu_ids = nullptr);
  void release(const Resources& r, const std::vector<int>& gpu_ids = {});

 private:
  bool fits(const Resources& r) const;
  Resources cap_, free_;
  std::vector<bool> gpu_used_;  ///< per GPU slot
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace qsweep
