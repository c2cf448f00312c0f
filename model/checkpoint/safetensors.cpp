#include "model/checkpoint/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace qsweep::model {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::filesystem::path& p, const std::string& what) {
  throw std::runtime_error("safetensors file " + p.string() + ": " + what);
}

/// Deepest bracket nesting of a JSON text (strings skipped), so that a hostile
/// header cannot exhaust the stack of the recursive JSON parser.
int json_depth(const char* s, size_t n) {
  int depth = 0, max_depth = 0;
  bool in_str = false;
  for (size_t i = 0; i < n; ++i) {
    const char c = s[i];
    if (in_str) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_str = false;
    } else if (c == '"') {
      in_str = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

/// A JSON non-negative integer that fits in int64; false otherwise.
bool as_u63(const json& v, uint64_t* out) {
  if (!v.is_number_unsigned()) return false;  // negatives and floats rejected
  const uint64_t u = v.get<uint64_t>();
  if (u > static_cast<uint64_t>(INT64_MAX)) return false;
  *out = u;
  return true;
}

}  // namespace

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file");
  }
  map_size_ = static_cast<size_t>(st.st_size);
  if (map_size_ < 8) {
    ::close(fd);
    fail(path,
         "truncated: " + std::to_string(map_size_) + " bytes, less than the 8-byte header length");
  }
  map_ = ::mmap(nullptr, map_size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    fail(path, std::string("mmap failed: ") + std::strerror(errno));
  }
  try {
    const auto* base = static_cast<const uint8_t*>(map_);
    uint64_t n_header = 0;
    for (int i = 0; i < 8; ++i) n_header |= static_cast<uint64_t>(base[i]) << (8 * i);
    if (n_header > k_max_safetensors_header)
      fail(path, "header length " + std::to_string(n_header) + " exceeds the 100 MB limit");
    if (n_header > map_size_ - 8)
      fail(path, "truncated: header length " + std::to_string(n_header) + " but only " +
                     std::to_string(map_size_ - 8) + " bytes follow");
    const char* hdr = reinterpret_cast<const char*>(base + 8);
    if (json_depth(hdr, n_header) > 16) fail(path, "header JSON nested too deeply");
    json j;
    try {
      j = json::parse(hdr, hdr + n_header);
    } catch (const std::exception& e) {
      fail(path, std::string("header is not valid JSON: ") + e.what());
    }
    if (!j.is_object()) fail(path, "header is not a JSON object");
    const uint8_t* data = base + 8 + n_header;
    const uint64_t data_size = map_size_ - 8 - n_header;

    struct Span {
      uint64_t begin, end;
      const std::string* name;
    };
    std::vector<Span> spans;
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& name = it.key();
      const json& v = it.value();
      if (name == "__metadata__") {
        if (!v.is_object()) fail(path, "__metadata__ is not an object");
        for (auto m = v.begin(); m != v.end(); ++m) {
          if (!m.value().is_string())
            fail(path, "__metadata__ value '" + m.key() + "' is not a string");
          metadata_[m.key()] = m.value().get<std::string>();
        }
        continue;
      }
      const std::string where = "tensor '" + name + "': ";
      if (!v.is_object()) fail(path, where + "entry is not an object");
      if (!v.contains("dtype") || !v["dtype"].is_string())
        fail(path, where + "missing string 'dtype'");
      const auto dt = parse_dtype(v["dtype"].get<std::string>());
      if (!dt) fail(path, where + "unknown dtype '" + v["dtype"].get<std::string>() + "'");
      if (!v.contains("shape") || !v["shape"].is_array())
        fail(path, where + "missing array 'shape'");
      if (!v.contains("data_offsets") || !v["data_offsets"].is_array() ||
          v["data_offsets"].size() != 2)
        fail(path, where + "'data_offsets' must be an array [begin, end]");
      TensorView t;
      t.name = name;
      t.dtype = *dt;
      uint64_t numel = 1;
      bool overflow = false;
      for (const json& d : v["shape"]) {
        uint64_t u = 0;
        if (!as_u63(d, &u)) fail(path, where + "shape entries must be non-negative integers");
        t.shape.push_back(static_cast<int64_t>(u));
        if (u != 0 && numel > static_cast<uint64_t>(INT64_MAX) / u)
          overflow = true;
        else
          numel *= u;
      }
      // A zero dimension makes the product 0 even after an "overflow" elsewhere.
      if (std::find(t.shape.begin(), t.shape.end(), 0) != t.shape.end())
        numel = 0, overflow = false;
      if (overflow) fail(path, where + "shape product overflows");
      uint64_t begin = 0, end = 0;
      if (!as_u63(v["data_offsets"][0], &begin) || !as_u63(v["data_offsets"][1], &end))
        fail(path, where + "data_offsets must be non-negative integers");
      if (end < begin) fail(path, where + "data_offsets end < begin");
      const uint64_t esize = dtype_size(t.dtype);
      if (numel > UINT64_MAX / esize) fail(path, where + "byte size overflows");
      if (numel * esize != end - begin)
        fail(path, where + "shape needs " + std::to_string(numel * esize) +
                       " bytes but data_offsets span " + std::to_string(end - begin));
      if (end > data_size)
        fail(path, where + "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                       ") outside the data area of " + std::to_string(data_size) +
                       " bytes (file truncated?)");
      t.data = data + begin;
      t.n_bytes = static_cast<size_t>(end - begin);
      if (end > begin) spans.push_back({begin, end, &it.key()});
      tensors_.emplace(name, std::move(t));
    }
    std::sort(spans.begin(), spans.end(),
              [](const Span& a, const Span& b) { return a.begin < b.begin; });
    for (size_t i = 1; i < spans.size(); ++i)
      if (spans[i].begin < spans[i - 1].end)
        fail(path, "tensor '" + *spans[i].name + "' overlaps tensor '" + *spans[i - 1].name + "'");
  } catch (...) {
    ::munmap(map_, map_size_);
    map_ = nullptr;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, map_size_);
}

const TensorView* SafetensorsFile::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

TensorData make_float_tensor(DType dtype, std::vector<int64_t> shape, const float* data,
                             size_t n) {
  TensorData t{dtype, std::move(shape), {}};
  if (dtype == DType::kF32) {
    t.bytes.resize(n * 4);
    std::memcpy(t.bytes.data(), data, t.bytes.size());
    return t;
  }
  if (dtype != DType::kF16 && dtype != DType::kBF16)
    throw std::invalid_argument("make_float_tensor: dtype must be F32, F16 or BF16");
  t.bytes.resize(n * 2);
  for (size_t i = 0; i < n; ++i) {
    const uint16_t h = dtype == DType::kBF16 ? f32_to_bf16(data[i]) : f32_to_f16(data[i]);
    std::memcpy(t.bytes.data() + 2 * i, &h, 2);
  }
  return t;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string r = "[";
  for (size_t i = 0; i < shape.size(); ++i) r += (i ? ", " : "") + std::to_string(shape[i]);
  return r + "]";
}

TensorData make_f32_tensor(std::vector<int64_t> shape, const float* data) {
  TensorData t;
  t.dtype = DType::kF32;
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  t.shape = std::move(shape);
  t.bytes.resize(static_cast<size_t>(n) * 4);
  if (n) std::memcpy(t.bytes.data(), data, t.bytes.size());
  return t;
}

namespace {

// One tensor as the writer sees it: dtype, shape, borrowed bytes.
struct OutTensor {
  DType dtype;
  const std::vector<int64_t>* shape;
  const uint8_t* data;
  size_t n_bytes;
};

void write_safetensors_impl(const std::filesystem::path& path,
                            const std::vector<std::pair<std::string, OutTensor>>& tensors,
                            const std::map<std::string, std::string>& metadata, size_t chunk,
                            const std::function<void(const uint8_t*, size_t)>& after_chunk) {
  json h = json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__")
      throw std::runtime_error("write_safetensors: reserved tensor name __metadata__");
    uint64_t n = 1;
    for (int64_t d : *t.shape) {
      if (d < 0)
        throw std::runtime_error("write_safetensors " + path.string() + ": negative dim in '" +
                                 name + "'");
      n *= static_cast<uint64_t>(d);
    }
    if (n * dtype_size(t.dtype) != t.n_bytes)
      throw std::runtime_error("write_safetensors " + path.string() + ": tensor '" + name +
                               "' has " + std::to_string(t.n_bytes) + " bytes, shape needs " +
                               std::to_string(n * dtype_size(t.dtype)));
    h[name] = {{"dtype", dtype_name(t.dtype)},
               {"shape", *t.shape},
               {"data_offsets", {offset, offset + t.n_bytes}}};
    offset += t.n_bytes;
  }
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw std::runtime_error("write_safetensors: cannot create " + tmp.string());
    uint8_t len[8];
    for (int i = 0; i < 8; ++i)
      len[i] = static_cast<uint8_t>(static_cast<uint64_t>(header.size()) >> (8 * i));
    f.write(reinterpret_cast<const char*>(len), 8);
    f.write(header.data(), static_cast<std::streamsize>(header.size()));
    for (const auto& [name, t] : tensors)
      for (size_t o = 0; o < t.n_bytes; o += chunk) {
        const size_t n = std::min(chunk, t.n_bytes - o);
        f.write(reinterpret_cast<const char*>(t.data + o), static_cast<std::streamsize>(n));
        if (after_chunk) after_chunk(t.data + o, n);
      }
    f.flush();
    if (!f) throw std::runtime_error("write_safetensors: write failed: " + tmp.string());
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec)
    throw std::runtime_error("write_safetensors: cannot rename " + tmp.string() + ": " +
                             ec.message());
}

}  // namespace

void write_safetensors(const std::filesystem::path& path,
                       const std::map<std::string, TensorData>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, OutTensor>> v;
  for (const auto& [name, t] : tensors)
    v.push_back({name, {t.dtype, &t.shape, t.bytes.data(), t.bytes.size()}});
  write_safetensors_impl(path, v, metadata, std::numeric_limits<size_t>::max(), {});
}

void write_safetensors_views(const std::filesystem::path& path,
                             const std::map<std::string, const TensorView*>& tensors,
                             const std::map<std::string, std::string>& metadata, size_t chunk,
                             const std::function<void(const uint8_t*, size_t)>& after_chunk) {
  std::vector<std::pair<std::string, OutTensor>> v;
  for (const auto& [name, t] : tensors) v.push_back({name, {t->dtype, &t->shape, t->data, t->n_bytes}});
  write_safetensors_impl(path, v, metadata, std::max<size_t>(1, chunk), after_chunk);
}

}  // namespace qsweep::model
