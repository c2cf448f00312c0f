#pragma once
// A Hugging Face model folder: config.json plus model.safetensors, or shards
// listed by model.safetensors.index.json ("weight_map": tensor -> file).
//
// Error policy: the constructor and tensor accessors throw std::runtime_error
// with a message naming the folder/file and tensor.

#include <Eigen/Core>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/checkpoint/config.h"
#include "model/checkpoint/safetensors.h"

namespace qsweep::model {

/// Row-major fp32 matrix (the layout of a PyTorch weight [out, in]).
using MatrixRM = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// A tensor converted to fp32, with its shape.
struct TensorF32 {
  std::vector<int64_t> shape;
  std::vector<float> data;  // row-major
};

class Checkpoint {
 public:
  /// Opens `dir` (config.json + safetensors); maps every file, validates
  /// headers, the index and the config.
  explicit Checkpoint(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const { return dir_; }
  const ModelConfig& config() const { return config_; }
  /// Names of all tensors, sorted.
  std::vector<std::string> tensor_names() const;
  bool has(const std::string& name) const { return index_.count(name) != 0; }
  /// The raw view (into the mapping) of `name`; throws if absent.
  const TensorView& view(const std::string& name) const;
  /// view(name), checked to be `dtype` with `shape`; throws naming the folder
  /// and tensor ("... is I32 [3], expected F16 [4, 8]") otherwise.
  const TensorView& expect(const std::string& name, DType dtype,
                           const std::vector<int64_t>& shape) const;
  /// `name` converted to fp32 (F32, F16, BF16, F64 sources); throws if absent
  /// or of another dtype.
  TensorF32 tensor_f32(const std::string& name) const;
  /// A 2-D tensor as a row-major matrix [rows, cols]; a 1-D tensor gives
  /// [1, n]. Throws if the rank is not 1 or 2.
  MatrixRM matrix_f32(const std::string& name) const;
  /// Converts `name` into `dst`, which must hold exactly numel floats.
  void read_f32(const std::string& name, float* dst, size_t n) const;

 private:
  std::filesystem::path dir_;
  ModelConfig config_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> index_;  // tensor name -> view in files_
};

}  // namespace qsweep::model
