#pragma once
// Safetensors files: a memory-mapped, bounds-checked reader and a writer.
//
// Format (https://github.com/huggingface/safetensors), all little-endian:
//   u64 N                       length of the header
//   N bytes                     JSON object: name -> {"dtype": "F32", "shape": [d0, ...],
//                               "data_offsets": [begin, end]}, plus an optional
//                               "__metadata__": {string: string}
//   data area                   tensor bytes; offsets are relative to its start
//
// Error policy: opening or validating a file throws std::runtime_error whose
// message names the file (and the tensor when one is at fault). Nothing in a
// file, however hostile, can make the reader read outside the mapping.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/dtype.h"

namespace qsweep::model {

/// One tensor of a safetensors file; `data` points into the read-only mapping.
struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // empty: a scalar
  const uint8_t* data = nullptr;
  size_t n_bytes = 0;
  /// Number of elements (product of shape; 1 for a scalar).
  int64_t numel() const;
};

/// Largest header accepted (the format's reference implementation uses 100 MB).
inline constexpr uint64_t k_max_safetensors_header = 100'000'000;

/// A read-only memory-mapped safetensors file with a validated header.
class SafetensorsFile {
 public:
  /// Maps and validates `path`; throws std::runtime_error naming the file
  /// (and tensor) on any malformed, truncated or inconsistent content.
  explicit SafetensorsFile(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  /// Tensors by name, sorted.
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  /// The tensor `name`, or nullptr.
  const TensorView* find(const std::string& name) const;
  /// `__metadata__` entries (string values only, as the format requires).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::filesystem::path path_;
  void* map_ = nullptr;  // nullptr: empty file never mapped
  size_t map_size_ = 0;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

/// A tensor to write: raw little-endian bytes of `dtype` with `shape`.
struct TensorData {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

/// Builds an F32 TensorData from floats.
TensorData make_f32_tensor(std::vector<int64_t> shape, const float* data);

/// fp32 values stored as `dtype` (F32, F16 or BF16; round to nearest even).
TensorData make_float_tensor(DType dtype, std::vector<int64_t> shape, const float* data, size_t n);

/// "[d0, d1, ...]".
std::string shape_string(const std::vector<int64_t>& shape);

/// Writes a safetensors file (tensors sorted by name, 8-byte aligned header,
/// as the reference implementation does). Writes to `path`.tmp then renames.
/// Throws std::runtime_error on I/O errors or a size/shape mismatch.
void write_safetensors(const std::filesystem::path& path,
                       const std::map<std::string, TensorData>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

/// The same file from borrowed bytes (e.g. tensors of a read-only mapping),
/// written in chunks of at most `chunk` bytes; `after_chunk(data, n)`
/// (optional) runs after each chunk is written — e.g. to release the pages of
/// a mapping so that copying a large tensor never holds it in memory.
void write_safetensors_views(const std::filesystem::path& path,
                             const std::map<std::string, const TensorView*>& tensors,
                             const std::map<std::string, std::string>& metadata = {},
                             size_t chunk = size_t(32) << 20,
                             const std::function<void(const uint8_t*, size_t)>& after_chunk = {});

}  // namespace qsweep::model
