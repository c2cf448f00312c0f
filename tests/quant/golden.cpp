#include "tests/quant/golden.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace qsweep::quant::testing {

const nlohmann::json& golden(std::string* path_out) {
  static const std::string path = [] {
    const char* src = std::getenv("QSWEEP_SOURCE_DIR");
    std::filesystem::path root = src && *src ? src : QSWEEP_QUANT_TEST_SOURCE_DIR;
    return (root.parent_path() / "shared" / "docs" / "quant_golden.json").string();
  }();
  static const nlohmann::json doc = [] {
    std::ifstream in(path);
    if (!in) return nlohmann::json();
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    // Python's json.dump writes bare NaN / Infinity, which JSON does not have.
    auto replace_all = [&](const std::string& from, const std::string& to) {
      for (size_t p = text.find(from); p != std::string::npos; p = text.find(from, p + to.size()))
        text.replace(p, from.size(), to);
    };
    replace_all("-Infinity", "\"-inf\"");
    replace_all(" Infinity", " \"inf\"");
    replace_all(" NaN", " \"nan\"");
    return nlohmann::json::parse(text);
  }();
  if (path_out) *path_out = path;
  return doc;
}

float as_float(const nlohmann::json& v) {
  if (v.is_string()) return std::strtof(v.get<std::string>().c_str(), nullptr);
  return v.get<float>();
}

Eigen::MatrixXf golden_w(int n, int k) {
  Eigen::MatrixXf w(n, k);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < k; ++j)
      w(i, j) = float(((i * 37 + j * 101 + (i * j) % 7) % 251) - 125) / 1024.0f;
  return w;
}

Eigen::MatrixXf golden_x(int t, int k, int dead) {
  Eigen::MatrixXf x(t, k);
  for (int r = 0; r < t; ++r)
    for (int j = 0; j < k; ++j) {
      const int num = (((r * 17 + j * 29 + (r * j) % 13) % 97) - 48) * (j % 37 == 0 ? 8 : 1);
      x(r, j) = j == dead ? 0.0f : float(num) / 64.0f;
    }
  return x;
}

std::string hex32(uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

std::string float_hex(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return hex32(u);
}

}  // namespace qsweep::quant::testing
