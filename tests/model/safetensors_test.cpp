#include "model/checkpoint/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "model/checkpoint/checkpoint.h"
#include "tests/testutil.h"

namespace qsweep::model {
namespace {

using qsweep::testing::read_file;
using qsweep::testing::TempDir;
using qsweep::testing::write_file;

std::string with_header(const std::string& json, const std::string& data) {
  std::string s(8, '\0');
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(n >> (8 * i));
  return s + json + data;
}

/// The error message of opening `bytes` as a safetensors file ("" if it opens).
std::string open_error(const TempDir& dir, const std::string& bytes) {
  const auto p = dir / "t.safetensors";
  write_file(p, bytes);
  try {
    SafetensorsFile f(p);
    return "";
  } catch (const std::runtime_error& e) {
    return e.what();
  }
}

TEST(Safetensors, WriteThenReadRoundTrips) {
  TempDir dir;
  std::map<std::string, TensorData> t;
  const float a[6] = {1, 2, 3, 4, 5, 6};
  t["a"] = make_f32_tensor({2, 3}, a);
  TensorData b;
  b.dtype = DType::kBF16;
  b.shape = {2};
  for (float v : {1.5f, -2.0f}) {
    uint16_t h = f32_to_bf16(v);
    b.bytes.push_back(h & 0xff);
    b.bytes.push_back(h >> 8);
  }
  t["b"] = b;
  t["empty"] = make_f32_tensor({0, 4}, nullptr);
  write_safetensors(dir / "x.safetensors", t, {{"format", "pt"}});
  SafetensorsFile f(dir / "x.safetensors");
  ASSERT_EQ(f.tensors().size(), 3u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  const TensorView* va = f.find("a");
  ASSERT_NE(va, nullptr);
  EXPECT_EQ(va->shape, (std::vector<int64_t>{2, 3}));
  float back[6];
  std::memcpy(back, va->data, 24);
  EXPECT_EQ(back[5], 6.0f);
  const TensorView* vb = f.find("b");
  float fb[2];
  ASSERT_TRUE(to_f32(vb->dtype, vb->data, 2, fb));
  EXPECT_EQ(fb[0], 1.5f);
  EXPECT_EQ(fb[1], -2.0f);
  EXPECT_EQ(f.find("empty")->numel(), 0);
  // Header is 8-byte aligned as the reference writer makes it.
  const std::string raw = read_file(dir / "x.safetensors");
  uint64_t n = 0;
  std::memcpy(&n, raw.data(), 8);
  EXPECT_EQ(n % 8, 0u);
}

TEST(Safetensors, ReadsTheFixtureWrittenByTheReferenceLibrary) {
  const auto p = std::filesystem::path(
                     std::getenv("QSWEEP_SOURCE_DIR") ? std::getenv("QSWEEP_SOURCE_DIR") : ".") /
                 "tests/fixtures/models/llama2/reference.safetensors";
  SafetensorsFile f(p);
  EXPECT_EQ(f.find("input_ids")->dtype, DType::kI64);
  EXPECT_EQ(f.find("logits")->shape, (std::vector<int64_t>{2, 12, 128}));
}

TEST(Safetensors, RejectsTruncatedAndHostileFiles) {
  TempDir dir;
  const std::string good_hdr = R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";
  const std::string data(16, '\x01');
  EXPECT_EQ(open_error(dir, with_header(good_hdr, data)), "");
  struct Case {
    std::string bytes, expect;
  };
  const std::vector<Case> cases = {
      {"", "less than the 8-byte header length"},
      {"abc", "less than the 8-byte header length"},
      {with_header(good_hdr, data).substr(0, 20), "truncated: header length"},
      {with_header(good_hdr, data.substr(0, 10)),
       "tensor 'w': data_offsets [0, 16) outside the data area"},
      {std::string("\xff\xff\xff\xff\xff\xff\xff\xff", 8) + "{}", "exceeds the 100 MB limit"},
      {with_header("{not json", ""), "not valid JSON"},
      {with_header("[1,2]", ""), "not a JSON object"},
      {with_header(R"({"w":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}})", data),
       "tensor 'w': unknown dtype 'F33'"},
      {with_header(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", data),
       "tensor 'w': shape entries must be non-negative"},
      {with_header(R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", data),
       "tensor 'w': shape entries"},
      {with_header(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", data),
       "tensor 'w': data_offsets must be non-negative"},
      {with_header(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", data),
       "tensor 'w': data_offsets end < begin"},
      {with_header(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,4]}})", data),
       "tensor 'w': shape needs 12 bytes"},
      {with_header(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})",
                   data),
       "tensor 'w': shape product overflows"},
      {with_header(R"({"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}})",
                   data),
       "tensor 'w': byte size overflows"},
      {with_header(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551615]}})",
                   data),
       "tensor 'w': data_offsets must be non-negative"},
      {with_header(
           R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
           data),
       "overlaps tensor"},
      {with_header(R"({"w":{"dtype":"F32","shape":[2]}})", data),
       "tensor 'w': 'data_offsets' must be an array"},
      {with_header(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", data),
       "tensor 'w': missing string 'dtype'"},
      {with_header(R"({"w":[]})", data), "tensor 'w': entry is not an object"},
      {with_header(R"({"__metadata__":{"a":1}})", data), "__metadata__ value 'a' is not a string"},
      {with_header(std::string(100, '[') + std::string(100, ']'), ""), "nested too deeply"},
  };
  for (const Case& c : cases) {
    const std::string err = open_error(dir, c.bytes);
    EXPECT_NE(err.find(c.expect), std::string::npos)
        << "expected '" << c.expect << "', got '" << err << "'";
    if (!err.empty()) {
      EXPECT_NE(err.find("t.safetensors"), std::string::npos) << err;  // names the file
    }
  }
}

TEST(Safetensors, RandomCorruptionNeverCrashes) {
  TempDir dir;
  std::map<std::string, TensorData> t;
  std::vector<float> v(64, 0.5f);
  t["a"] = make_f32_tensor({8, 8}, v.data());
  t["b"] = make_f32_tensor({4, 4}, v.data());
  write_safetensors(dir / "seed.safetensors", t);
  const std::string seed = read_file(dir / "seed.safetensors");
  std::mt19937 rng(42);
  int opened = 0, rejected = 0;
  for (int iter = 0; iter < 1000; ++iter) {
    std::string s = seed;
    switch (iter % 4) {
      case 0:  // flip bytes anywhere (mostly the header)
        for (int k = 0; k < 1 + int(rng() % 4); ++k)
          s[rng() % std::min<size_t>(s.size(), 200)] = char(rng());
        break;
      case 1:  // truncate
        s.resize(rng() % s.size());
        break;
      case 2:  // replace a digit in the header
        for (size_t i = 8; i < 200 && i < s.size(); ++i)
          if (isdigit(static_cast<unsigned char>(s[i])) && rng() % 8 == 0)
            s[i] = char('0' + rng() % 10);
        break;
      case 3:  // random length prefix
        for (int i = 0; i < 8; ++i) s[i] = char(rng() % 3 == 0 ? rng() : 0);
        break;
    }
    const std::string err = open_error(dir, s);
    if (err.empty()) {
      // Whatever opened must have in-bounds views.
      SafetensorsFile f(dir / "t.safetensors");
      for (const auto& [name, tv] : f.tensors()) {
        EXPECT_EQ(size_t(tv.numel()) * dtype_size(tv.dtype), tv.n_bytes);
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < tv.n_bytes; ++i)
          sink = sink + tv.data[i];  // in bounds, or ASan/segv
      }
      ++opened;
    } else {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 250);
  EXPECT_GT(opened, 0);
}

TEST(Checkpoint, OpensShardedFolderWithIndex) {
  const auto root = std::filesystem::path(
      std::getenv("QSWEEP_SOURCE_DIR") ? std::getenv("QSWEEP_SOURCE_DIR") : ".");
  Checkpoint ck(root / "tests/fixtures/models/llama2");
  EXPECT_EQ(ck.tensor_names().size(), 21u);
  EXPECT_TRUE(ck.has("lm_head.weight"));
  MatrixRM m = ck.matrix_f32("model.layers.1.mlp.down_proj.weight");
  EXPECT_EQ(m.rows(), 32);
  EXPECT_EQ(m.cols(), 64);
  TensorF32 t = ck.tensor_f32("model.norm.weight");
  EXPECT_EQ(t.shape, (std::vector<int64_t>{32}));
  // bf16 source converts to fp32 exactly.
  Checkpoint ck3(root / "tests/fixtures/models/llama3");
  const TensorView& v = ck3.view("model.embed_tokens.weight");
  EXPECT_EQ(v.dtype, DType::kBF16);
  uint16_t first;
  std::memcpy(&first, v.data, 2);
  EXPECT_EQ(ck3.matrix_f32("model.embed_tokens.weight")(0, 0), bf16_to_f32(first));
  EXPECT_THROW(ck.view("nope"), std::runtime_error);
}

TEST(Checkpoint, IndexErrorsNameTheFile) {
  TempDir dir;
  const auto root = std::filesystem::path(
      std::getenv("QSWEEP_SOURCE_DIR") ? std::getenv("QSWEEP_SOURCE_DIR") : ".");
  std::filesystem::copy_file(root / "tests/fixtures/models/llama2/config.json",
                             dir / "config.json");
  auto err = [&]() -> std::string {
    try {
      Checkpoint c(dir.path());
      return "";
    } catch (const std::runtime_error& e) {
      return e.what();
    }
  };
  EXPECT_NE(err().find("neither model.safetensors nor"), std::string::npos);
  write_file(dir / "model.safetensors.index.json", R"({"weight_map":{"a":"../evil.safetensors"}})");
  EXPECT_NE(err().find("not a file inside the folder"), std::string::npos) << err();
  write_file(dir / "model.safetensors.index.json", R"({"weight_map":{"a":"missing.safetensors"}})");
  EXPECT_NE(err().find("missing.safetensors"), std::string::npos) << err();
  write_file(dir / "model.safetensors.index.json", R"({"nothing":1})");
  EXPECT_NE(err().find("weight_map"), std::string::npos) << err();
}

}  // namespace
}  // namespace qsweep::model
