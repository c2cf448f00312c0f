#pragma once
// Shared helpers of the engine tests: fixture paths and reference tensors.

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "model/checkpoint/safetensors.h"

namespace qsweep::model::test {

inline std::filesystem::path source_dir() {
  const char* s = std::getenv("QSWEEP_SOURCE_DIR");
  return s ? s : ".";
}

/// An I64 tensor of a reference file as ints.
inline std::vector<int> ints(const SafetensorsFile& f, const std::string& name) {
  const TensorView* v = f.find(name);
  std::vector<int> out;
  if (!v || v->dtype != DType::kI64) return out;
  for (int64_t i = 0; i < v->numel(); ++i) {
    int64_t x;
    std::memcpy(&x, v->data + 8 * i, 8);
    out.push_back(static_cast<int>(x));
  }
  return out;
}

/// An F32 tensor of a reference file.
inline std::vector<float> floats(const SafetensorsFile& f, const std::string& name) {
  const TensorView* v = f.find(name);
  std::vector<float> out(v ? v->numel() : 0);
  if (v) to_f32(v->dtype, v->data, out.size(), out.data());
  return out;
}

inline float max_abs_diff(const float* a, const float* b, size_t n) {
  float m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

}  // namespace qsweep::model::test
