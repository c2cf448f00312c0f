#include "model/checkpoint/checkpoint.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace qsweep::model {

Checkpoint::Checkpoint(const std::filesystem::path& dir) : dir_(dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir))
    throw std::runtime_error("model folder " + dir.string() + " does not exist");
  config_ = load_model_config(dir / "config.json");
  const fs::path index_path = dir / "model.safetensors.index.json";
  std::vector<std::string> shard_names;
  std::map<std::string, std::string> weight_map;
  if (fs::exists(index_path)) {
    std::ifstream f(index_path);
    std::stringstream ss;
    ss << f.rdbuf();
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(ss.str());
    } catch (const std::exception& e) {
      throw std::runtime_error(index_path.string() + ": not valid JSON: " + e.what());
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      throw std::runtime_error(index_path.string() + ": missing object 'weight_map'");
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string())
        throw std::runtime_error(index_path.string() + ": weight_map['" + it.key() +
                                 "'] is not a string");
      const std::string file = it.value().get<std::string>();
      // Shards must be plain file names inside the folder.
      if (file.empty() || file.find('/') != std::string::npos ||
          file.find('\\') != std::string::npos || file == "." || file == "..")
        throw std::runtime_error(index_path.string() + ": weight_map['" + it.key() + "'] names '" +
                                 file + "', not a file inside the folder");
      weight_map[it.key()] = file;
      if (std::find(shard_names.begin(), shard_names.end(), file) == shard_names.end())
        shard_names.push_back(file);
    }
    std::sort(shard_names.begin(), shard_names.end());
  } else if (fs::exists(dir / "model.safetensors")) {
    shard_names.push_back("model.safetensors");
  } else {
    throw std::runtime_error("model folder " + dir.string() +
                             " has neither model.safetensors nor model.safetensors.index.json");
  }
  std::map<std::string, size_t> file_index;
  for (const std::string& s : shard_names) {
    file_index[s] = files_.size();
    files_.push_back(std::make_unique<SafetensorsFile>(dir / s));
  }
  for (size_t fi = 0; fi < files_.size(); ++fi) {
    for (const auto& [name, view] : files_[fi]->tensors()) {
      if (!weight_map.empty()) {
        auto it = weight_map.find(name);
        if (it == weight_map.end() || file_index[it->second] != fi)
          continue;  // listed elsewhere / not listed
      }
      if (index_.count(name))
        throw std::runtime_error("model folder " + dir.string() + ": tensor '" + name +
                                 "' appears in two files");
      index_[name] = &view;
    }
  }
  for (const auto& [name, file] : weight_map)
    if (!index_.count(name))
      throw std::runtime_error(index_path.string() + ": tensor '" + name + "' is not in " + file);
}

std::vector<std::string> Checkpoint::tensor_names() const {
  std::vector<std::string> out;
  for (const auto& kv : index_) out.push_back(kv.first);
  return out;
}

const TensorView& Checkpoint::expect(const std::string& name, DType dtype,
                                     const std::vector<int64_t>& shape) const {
  if (!has(name))
    throw std::runtime_error("model folder " + dir_.string() + ": tensor '" + name +
                             "' is missing");
  const TensorView& v = view(name);
  if (v.dtype != dtype || v.shape != shape)
    throw std::runtime_error("model folder " + dir_.string() + ": tensor '" + name + "' is " +
                             dtype_name(v.dtype) + " " + shape_string(v.shape) + ", expected " +
                             dtype_name(dtype) + " " + shape_string(shape));
  return v;
}

const TensorView& Checkpoint::view(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end())
    throw std::runtime_error("model folder " + dir_.string() + ": tensor '" + name + "' not found");
  return *it->second;
}

void Checkpoint::read_f32(const std::string& name, float* dst, size_t n) const {
  const TensorView& v = view(name);
  if (static_cast<size_t>(v.numel()) != n)
    throw std::runtime_error("model folder " + dir_.string() + ": tensor '" + name + "' has " +
                             std::to_string(v.numel()) + " elements, expected " +
                             std::to_string(n));
  if (!to_f32(v.dtype, v.data, n, dst))
    throw std::runtime_error("model folder " + dir_.string() + ": tensor '" + name +
                             "' has dtype " + dtype_name(v.dtype) +
                             "; only F32, F16, BF16 and F64 convert to fp32");
}

TensorF32 Checkpoint::tensor_f32(const std::string& name) const {
  const TensorView& v = view(name);
  TensorF32 t;
  t.shape = v.shape;
  t.data.resize(static_cast<size_t>(v.numel()));
  read_f32(name, t.data.data(), t.data.size());
  return t;
}

MatrixRM Checkpoint::matrix_f32(const std::string& name) const {
  const TensorView& v = view(name);
  if (v.shape.size() != 1 && v.shape.size() != 2)
    throw std::runtime_error("model folder " + dir_.string() + ": tensor '" + name + "' has rank " +
                             std::to_string(v.shape.size()) + ", expected 1 or 2");
  const int64_t rows = v.shape.size() == 2 ? v.shape[0] : 1;
  const int64_t cols = v.shape.back();
  MatrixRM m(rows, cols);
  read_f32(name, m.data(), static_cast<size_t>(rows * cols));
  return m;
}

}  // namespace qsweep::model
