#pragma once
// A fake Hub with a small synthetic model repo, a scratch HF cache and a
// retry policy that records its sleeps instead of sleeping.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "model/hub/hub_client.h"
#include "tests/model/hub/fake_hub_server.h"
#include "tests/testutil.h"

namespace qsweep::testing {

/// Deterministic bytes that do not compress to nothing.
inline std::string synthetic_bytes(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x & 0xff);
  }
  return s;
}

class HubFixture : public ::testing::Test {
 protected:
  static constexpr const char* k_token = "hf_SeCrEtToKeN0123456789";

  void SetUp() override {
    // The fake Hub is on loopback: never through a proxy from the environment.
    ::setenv("no_proxy", "127.0.0.1,localhost", 1);
    ::setenv("NO_PROXY", "127.0.0.1,localhost", 1);
    weights = synthetic_bytes(300000, 1);
    files = {{"config.json", {"{\"model_type\": \"llama\"}", false}},
             {"tokenizer_config.json", {"{\"bos_token\": \"<s>\"}", false}},
             {"model.safetensors", {weights, true}},
             {"pytorch_model.bin", {synthetic_bytes(5000, 2), true}},
             {"README.md", {"# tiny", false}},
             {"sub/extra.json", {"{}", false}}};
    sha = hub.commit("tiny/model", files);
  }

  model::HubEnv env() const {
    model::HubEnv e;
    e.endpoint = hub.url();
    e.datasets_server = hub.url();
    e.hub_cache = dir / "hf" / "hub";
    return e;
  }
  model::RetryPolicy retry() {
    model::RetryPolicy p;
    p.sleep = [this](double s) { sleeps.push_back(s); };
    return p;
  }
  model::HubSource source(const std::string& text = "hf://tiny/model") const {
    model::HubSource s;
    std::string err;
    EXPECT_TRUE(model::parse_source(text, &s, &err)) << err;
    return s;
  }
  std::filesystem::path repo_dir() const { return dir / "hf" / "hub" / "models--tiny--model"; }

  /// GETs of one repo file so far.
  std::vector<TestRequest> gets_of(const std::string& file) const {
    std::vector<TestRequest> r;
    for (const auto& q : hub.requests())
      if (q.path.size() > file.size() &&
          q.path.compare(q.path.size() - file.size(), file.size(), file) == 0 &&
          q.path.find("/resolve/") != std::string::npos)
        r.push_back(q);
    return r;
  }

  TempDir dir;
  FakeHub hub;
  std::shared_ptr<model::HttpClient> http = model::make_curl_http_client();
  std::vector<double> sleeps;
  std::map<std::string, FakeHub::File> files;
  std::string weights;
  std::string sha;
};

}  // namespace qsweep::testing
