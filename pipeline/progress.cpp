#include "pipeline/progress.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <ctime>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace qsweep {

const char* outcome_name(NodeOutcome o) {
  switch (o) {
    case NodeOutcome::kDone: return "done";
    case NodeOutcome::kHit: return "hit";
    case NodeOutcome::kFailed: return "FAILED";
    case NodeOutcome::kSkipped: return "skipped";
    case NodeOutcome::kCancelled: return "cancelled";
  }
  return "?";
}

namespace {

using Clock = std::chrono::steady_clock;

std::string clock_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char b[16];
  std::strftime(b, sizeof b, "%H:%M:%S", &tm);
  return b;
}

std::string fmt_seconds(double s) {
  char b[32];
  if (s < 60)
    std::snprintf(b, sizeof b, "%.1fs", s);
  else if (s < 3600)
    std::snprintf(b, sizeof b, "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  else
    std::snprintf(b, sizeof b, "%dh%02dm", static_cast<int>(s) / 3600, static_cast<int>(s) / 60 % 60);
  return b;
}

class LineProgress : public ProgressView {
 public:
  LineProgress(FILE* out, bool verbose) : out_(out), verbose_(verbose) {}
  void begin(const std::string& exp, size_t n_run, size_t n_cached) override {
    total_ = n_run;
    print("%s: %zu node(s) to run, %zu cached", exp.c_str(), n_run, n_cached);
  }
  void node_start(const std::string& node) override { print("start %s", node.c_str()); }
  void node_update(const std::string& node, uint64_t done, uint64_t total,
                   const std::string& unit) override {
    // Throttle: at most one line per node per 10 s, plus the final one.
    std::lock_guard<std::mutex> lk(mu_);
    auto now = Clock::now();
    auto& last = last_update_[node];
    if (done != total && now - last < std::chrono::seconds(10)) return;
    last = now;
    std::fprintf(out_, "%s %s %llu/%llu %s\n", clock_now().c_str(), node.c_str(),
                 static_cast<unsigned long long>(done), static_cast<unsigned long long>(total),
                 unit.c_str());
    std::fflush(out_);
  }
  void node_log(const std::string& node, const std::string& line) override {
    if (verbose_) print("%s | %s", node.c_str(), line.c_str());
  }
  void node_end(const std::string& node, NodeOutcome o, double secs, const std::string& msg) override {
    size_t k = ++finished_;
    if (o == NodeOutcome::kFailed)
      print("[%zu/%zu] FAILED %s (%s): %s", k, total_, node.c_str(), fmt_seconds(secs).c_str(), msg.c_str());
    else if (msg.empty())
      print("[%zu/%zu] %s %s (%s)", k, total_, outcome_name(o), node.c_str(), fmt_seconds(secs).c_str());
    else
      print("[%zu/%zu] %s %s: %s", k, total_, outcome_name(o), node.c_str(), msg.c_str());
  }
  void end(const std::string& summary) override { print("%s", summary.c_str()); }

 private:
  template <typename... A>
  void print(const char* f, A... a) {
    std::lock_guard<std::mutex> lk(mu_);
    std::fprintf(out_, "%s ", clock_now().c_str());
    std::fprintf(out_, f, a...);
    std::fputc('\n', out_);
    std::fflush(out_);
  }
  FILE* out_;
  bool verbose_;
  std::mutex mu_;
  size_t total_ = 0;
  std::atomic<size_t> finished_{0};
  std::map<std::string, Clock::time_point> last_update_;
};

class LiveProgress : public ProgressView {
 public:
  explicit LiveProgress(FILE* out) : out_(out) {}
  ~LiveProgress() override { stop(); }

  void begin(const std::string& exp, size_t n_run, size_t n_cached) override {
    std::lock_guard<std::mutex> lk(mu_);
    exp_ = exp;
    total_ = n_run;
    cached_ = n_cached;
    start_ = Clock::now();
    thread_ = std::thread([this] { loop(); });
  }
  void node_start(const std::string& node) override {
    std::lock_guard<std::mutex> lk(mu_);
    running_[node] = Running{Clock::now(), 0, 0, ""};
  }
  void node_update(const std::string& node, uint64_t done, uint64_t total,
                   const std::string& unit) override {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = running_.find(node);
    if (it == running_.end()) return;
    it->second.done = done;
    it->second.total = total;
    it->second.unit = unit;
  }
  void node_log(const std::string&, const std::string&) override {}
  void node_end(const std::string& node, NodeOutcome o, double secs, const std::string& msg) override {
    std::lock_guard<std::mutex> lk(mu_);
    running_.erase(node);
    ++finished_;
    if (o == NodeOutcome::kDone) {
      ++done_;
      done_seconds_ += secs;
    }
    if (o == NodeOutcome::kFailed) ++failed_;
    // Finished nodes scroll above the live block.
    std::string line = std::string(outcome_name(o)) + " " + node + " (" + fmt_seconds(secs) + ")";
    if (!msg.empty()) line += ": " + msg;
    pending_lines_.push_back(line);
  }
  void end(const std::string& summary) override {
    stop();
    std::fprintf(out_, "%s\n", summary.c_str());
    std::fflush(out_);
  }

 private:
  struct Running {
    Clock::time_point started;
    uint64_t done, total;
    std::string unit;
  };

  void stop() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stopping_ || !thread_.joinable()) return;
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  void loop() {
    std::unique_lock<std::mutex> lk(mu_);
    while (true) {
      draw();
      if (stopping_) break;
      cv_.wait_for(lk, std::chrono::milliseconds(200));
    }
  }

  // Called with mu_ held. Erases the previous block, prints finished lines,
  // redraws the block.
  void draw() {
    for (int i = 0; i < drawn_lines_; ++i) std::fputs("\x1b[1A\x1b[2K", out_);
    for (const auto& l : pending_lines_) std::fprintf(out_, "%s\n", l.c_str());
    pending_lines_.clear();
    drawn_lines_ = 0;
    if (stopping_) {
      std::fflush(out_);
      return;
    }
    double el = std::chrono::duration<double>(Clock::now() - start_).count();
    size_t queued = total_ - finished_ - running_.size();
    std::string eta = "?";
    if (done_ > 0 && total_ > finished_) {
      double per = el / static_cast<double>(finished_);
      eta = fmt_seconds(per * static_cast<double>(total_ - finished_));
    }
    std::fprintf(out_, "\x1b[1m%s\x1b[0m  %zu/%zu done, %zu running, %zu queued, %zu failed, %zu cached | %s elapsed, ETA %s\n",
                 exp_.c_str(), finished_, total_, running_.size(), queued, failed_, cached_,
                 fmt_seconds(el).c_str(), eta.c_str());
    ++drawn_lines_;
    int shown = 0;
    for (const auto& [node, r] : running_) {
      if (++shown > 8) break;
      double t = std::chrono::duration<double>(Clock::now() - r.started).count();
      std::string p;
      if (r.total > 0 || r.done > 0) {
        char b[128];
        double rate = t > 0 ? static_cast<double>(r.done) / t : 0;
        if (r.total > 0) {
          double rem = rate > 0 ? static_cast<double>(r.total - std::min(r.done, r.total)) / rate : 0;
          std::snprintf(b, sizeof b, " %llu/%llu %s (%.1f/s, ETA %s)", static_cast<unsigned long long>(r.done),
                        static_cast<unsigned long long>(r.total), r.unit.c_str(), rate, fmt_seconds(rem).c_str());
        } else {
          std::snprintf(b, sizeof b, " %llu %s (%.1f/s)", static_cast<unsigned long long>(r.done), r.unit.c_str(), rate);
        }
        p = b;
      }
      std::fprintf(out_, "  \x1b[36m%s\x1b[0m %s%s\n", fmt_seconds(t).c_str(), node.c_str(), p.c_str());
      ++drawn_lines_;
    }
    std::fflush(out_);
  }

  FILE* out_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
  bool stopping_ = false;
  std::string exp_;
  size_t total_ = 0, cached_ = 0, finished_ = 0, done_ = 0, failed_ = 0;
  double done_seconds_ = 0;
  Clock::time_point start_;
  std::map<std::string, Running> running_;
  std::vector<std::string> pending_lines_;
  int drawn_lines_ = 0;
};

class NullProgress : public ProgressView {
 public:
  void begin(const std::string&, size_t, size_t) override {}
  void node_start(const std::string&) override {}
  void node_update(const std::string&, uint64_t, uint64_t, const std::string&) override {}
  void node_log(const std::string&, const std::string&) override {}
  void node_end(const std::string&, NodeOutcome, double, const std::string&) override {}
  void end(const std::string&) override {}
};

}  // namespace

std::unique_ptr<ProgressView> make_line_progress(FILE* out, bool verbose) {
  return std::make_unique<LineProgress>(out, verbose);
}
std::unique_ptr<ProgressView> make_live_progress(FILE* out) { return std::make_unique<LiveProgress>(out); }
std::unique_ptr<ProgressView> make_null_progress() { return std::make_unique<NullProgress>(); }

}  // namespace qsweep
