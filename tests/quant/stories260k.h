#pragma once
// stories260K from the local mirror (../shared/data), imported as a Hugging
// Face folder for the quantization tests that need a real model.

#include <filesystem>

#include "model/checkpoint/llama2c.h"
#include "tests/testutil.h"

namespace qsweep::testing {

/// The llama2.c checkpoint in ../shared/data, or empty when absent.
inline std::filesystem::path stories260k_bin() {
  const std::filesystem::path data = shared_data_dir();
  const std::filesystem::path bin = data / "models/stories260K/stories260K.bin";
  return !data.empty() && std::filesystem::exists(bin) ? bin : std::filesystem::path();
}

/// Imports stories260K into `dir` (config.json, model.safetensors, tokenizer);
/// false when ../shared/data is absent (the caller skips, naming the file).
inline bool import_stories260k(const std::filesystem::path& dir) {
  const std::filesystem::path bin = stories260k_bin();
  if (bin.empty()) return false;
  model::import_llama2c(bin, bin.parent_path() / "tok512.bin", dir);
  return true;
}

inline constexpr const char* k_stories260k_skip =
    "needs ../shared/data/models/stories260K/stories260K.bin (the local mirror of the Hub files)";

}  // namespace qsweep::testing
