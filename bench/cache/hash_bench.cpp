// Benchmarks of cache/:
//   BM_HashFile   hash_file() on a 2 GiB file from the page cache (bytes/s)
//   BM_StoreCheck Store::check() of one small artifact out of 10,000 (time per check)
// Scratch data lives under $TMPDIR (or /tmp) and is deleted at exit.

#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cache/hash.h"
#include "cache/store.h"

namespace {

namespace fs = std::filesystem;
using qsweep::cache::ArtifactState;
using qsweep::cache::Store;

constexpr size_t k_big_file_bytes = size_t{2} << 30;  // 2 GiB
constexpr int k_n_artifacts = 10'000;

fs::path scratch_root() {
  static const fs::path root = [] {
    const char* base = std::getenv("TMPDIR");
    fs::path p =
        fs::path(base && *base ? base : "/tmp") / ("qsweep-bench-" + std::to_string(::getpid()));
    fs::create_directories(p);
    return p;
  }();
  return root;
}

bool write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Creates the 2 GiB file once and reads it once so that it sits in the page cache.
const fs::path& big_file() {
  static const fs::path path = [] {
    fs::path p = scratch_root() / "big.bin";
    std::vector<char> block(size_t{1} << 20);
    std::mt19937_64 rng(42);
    for (size_t i = 0; i + 8 <= block.size(); i += 8) {
      uint64_t v = rng();
      std::memcpy(block.data() + i, &v, 8);
    }
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (size_t done = 0; fd >= 0 && done < k_big_file_bytes; done += block.size()) {
      block[0] = static_cast<char>(done >> 20);  // blocks differ
      if (!write_all(fd, block.data(), block.size())) {
        std::fprintf(stderr, "bench_hash: cannot write %s\n", p.c_str());
        std::exit(1);
      }
    }
    if (fd < 0) {
      std::fprintf(stderr, "bench_hash: cannot create %s\n", p.c_str());
      std::exit(1);
    }
    ::fdatasync(fd);  // no writeback competing with the measurement
    ::close(fd);
    fd = ::open(p.c_str(), O_RDONLY);
    while (::read(fd, block.data(), block.size()) > 0) {
    }
    ::close(fd);
    return p;
  }();
  return path;
}

void BM_HashFile(benchmark::State& state) {
  const fs::path& p = big_file();
  for (auto _ : state) {
    qsweep::cache::Digest128 d;
    std::string err;
    if (!qsweep::cache::hash_file(p, &d, &err)) state.SkipWithError(err.c_str());
    benchmark::DoNotOptimize(d);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(k_big_file_bytes));
}
BENCHMARK(BM_HashFile)->Unit(benchmark::kMillisecond)->UseRealTime();

struct CheckFixture {
  std::unique_ptr<Store> store;
  std::vector<std::string> keys;
};

// Publishes 10,000 artifacts of two small files each, once.
CheckFixture& check_fixture() {
  static CheckFixture f = [] {
    CheckFixture f;
    std::string err;
    f.store = Store::open(scratch_root() / "cache", &err);
    if (!f.store) {
      std::fprintf(stderr, "bench_hash: %s\n", err.c_str());
      std::exit(1);
    }
    for (int i = 0; i < k_n_artifacts; ++i) {
      qsweep::cache::KeyHasher h;
      h.field("artifact", int64_t{i});
      std::string key = h.finish().hex();
      Store::Pending p;
      if (!f.store->begin(key, &p, &err)) break;
      std::string a = "result " + std::to_string(i) + "\n";
      std::string b(1000, static_cast<char>('a' + i % 26));
      for (auto [name, text] : {std::pair{"metrics.json", &a}, std::pair{"log.txt", &b}}) {
        int fd = ::open((p.out_dir() / name).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        write_all(fd, text->data(), text->size());
        ::close(fd);
      }
      qsweep::cache::Manifest m;
      m.node = "bench[" + std::to_string(i) + "]";
      m.kind = "command";
      m.params = {{"i", i}, {"bits", 4}};
      m.key_fields = h.fields();
      if (!f.store->publish(p, &m, &err)) break;
      f.keys.push_back(key);
    }
    if (f.keys.size() != k_n_artifacts) {
      std::fprintf(stderr, "bench_hash: publishing failed: %s\n", err.c_str());
      std::exit(1);
    }
    return f;
  }();
  return f;
}

void BM_StoreCheck(benchmark::State& state) {
  CheckFixture& f = check_fixture();
  size_t i = 0;
  for (auto _ : state) {
    qsweep::cache::Manifest m;
    std::string why;
    ArtifactState s = f.store->check(f.keys[i++ % f.keys.size()], &m, &why);
    if (s != ArtifactState::kValid) state.SkipWithError(why.c_str());
    benchmark::DoNotOptimize(m);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_StoreCheck)->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::error_code ec;
  fs::remove_all(scratch_root(), ec);
  return 0;
}
