#pragma once
// An in-process stage for pipeline tests: writes a file, counts calls, and
// can be told to fail, throw RetryableError, or sleep, per node id.

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "pipeline/stage.h"

namespace qsweep::testing {

struct FakeBehaviour {
  std::mutex mu;
  std::map<std::string, int> calls;              // node id -> run() calls
  std::set<std::string> fail;                    // throw runtime_error
  std::map<std::string, int> retryable_failures; // throw RetryableError this many times
  std::map<std::string, int> sleep_ms;
  std::atomic<int> running{0}, max_running{0};
  std::atomic<int> gpu_running{0}, max_gpu_running{0};
};

class FakeStage : public Stage {
 public:
  FakeStage(FakeBehaviour* b, std::string kind = "fake", int64_t version = 1,
            std::string default_mode = "fast")
      : b_(b), kind_(std::move(kind)), version_(version), default_mode_(std::move(default_mode)) {}
  std::string kind() const override { return kind_; }
  int64_t version() const override { return version_; }
  std::string description() const override { return "test stage"; }
  std::vector<ParamSpec> params() const override {
    return {{"text", ParamType::kString, false, "", "text to write"},
            {"n", ParamType::kInt, false, 1, "an integer"},
            {"lr", ParamType::kNumber, false, 0.5, "a number"},
            {"flag", ParamType::kBool, false, false, "a bool"},
            {"list", ParamType::kStringList, false, nlohmann::json::array(), "strings"},
            {"map", ParamType::kStringMap, false, nlohmann::json::object(), "string map"},
            {"extra", ParamType::kAny, false, nullptr, "anything"},
            {"mode", ParamType::kString, false, default_mode_, "has a default that tests change"}};
  }
  std::string check_params(const nlohmann::json& p) const override {
    return p["n"].get<int64_t>() < 0 ? "params.n must be >= 0" : "";
  }
  void run(StageContext& ctx) const override {
    {
      std::lock_guard<std::mutex> lk(b_->mu);
      ++b_->calls[ctx.node_id];
    }
    int now = ++b_->running;
    int prev = b_->max_running.load();
    while (now > prev && !b_->max_running.compare_exchange_weak(prev, now)) {}
    if (ctx.resources.gpu > 0) {
      int g = ++b_->gpu_running;
      int pg = b_->max_gpu_running.load();
      while (g > pg && !b_->max_gpu_running.compare_exchange_weak(pg, g)) {}
    }
    struct Dec {
      FakeBehaviour* b;
      bool gpu;
      ~Dec() {
        --b->running;
        if (gpu) --b->gpu_running;
      }
    } dec{b_, ctx.resources.gpu > 0};
    int sleep = 0, retry_left = 0;
    bool fail = false;
    {
      std::lock_guard<std::mutex> lk(b_->mu);
      sleep = b_->sleep_ms.count(ctx.node_id) ? b_->sleep_ms[ctx.node_id] : 0;
      fail = b_->fail.count(ctx.node_id) > 0;
      if (b_->retryable_failures.count(ctx.node_id) && b_->retryable_failures[ctx.node_id] > 0) {
        retry_left = b_->retryable_failures[ctx.node_id]--;
      }
    }
    for (int t = 0; t < sleep && !ctx.cancelled(); t += 5)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (ctx.cancelled()) throw std::runtime_error("cancelled");
    if (retry_left > 0) throw RetryableError("transient (HTTP 503)");
    if (fail) throw std::runtime_error("boom in " + ctx.node_id);
    std::ofstream(ctx.output_dir / "out.txt") << ctx.node_id << " " << ctx.params.dump() << "\n";
    for (const auto& [name, in] : ctx.inputs)
      for (const auto& it : in.items) std::ofstream(ctx.output_dir / "out.txt", std::ios::app) << name << "=" << it.path.string() << "\n";
  }

 private:
  FakeBehaviour* b_;
  std::string kind_;
  int64_t version_;
  std::string default_mode_;
};

}  // namespace qsweep::testing
