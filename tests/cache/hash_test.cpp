#include "cache/hash.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/testutil.h"

namespace qsweep::cache {
namespace {

using qsweep::testing::TempDir;
using qsweep::testing::write_file;

TEST(Digest128, HexRoundTrip) {
  Digest128 d{0x0123456789abcdefULL, 0xfedcba9876543210ULL};
  EXPECT_EQ(d.hex(), "0123456789abcdeffedcba9876543210");
  auto back = Digest128::from_hex(d.hex());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, d);
  EXPECT_EQ(Digest128{}.hex(), std::string(32, '0'));
}

TEST(Digest128, FromHexRejectsMalformed) {
  EXPECT_FALSE(Digest128::from_hex(""));
  EXPECT_FALSE(Digest128::from_hex(std::string(31, 'a')));
  EXPECT_FALSE(Digest128::from_hex(std::string(33, 'a')));
  EXPECT_FALSE(Digest128::from_hex(std::string(31, 'a') + "g"));
  EXPECT_FALSE(Digest128::from_hex(std::string(31, 'a') + " "));
  EXPECT_FALSE(Digest128::from_hex("0x" + std::string(30, 'a')));
}

Digest128 key_of(std::initializer_list<std::pair<const char*, const char*>> fields) {
  KeyHasher h;
  for (const auto& [n, v] : fields) h.field(n, v);
  return h.finish();
}

TEST(KeyHasher, FieldsAreDelimited) {
  EXPECT_NE(key_of({{"ab", "c"}}), key_of({{"a", "bc"}}));
  EXPECT_NE(key_of({{"x", "ab"}, {"y", "c"}}), key_of({{"x", "a"}, {"y", "bc"}}));
  EXPECT_NE(key_of({{"x", ""}}), key_of({}));
}

TEST(KeyHasher, OrderMattersAndSameFieldsGiveSameKey) {
  EXPECT_NE(key_of({{"a", "1"}, {"b", "2"}}), key_of({{"b", "2"}, {"a", "1"}}));
  EXPECT_EQ(key_of({{"a", "1"}, {"b", "2"}}), key_of({{"a", "1"}, {"b", "2"}}));
}

TEST(KeyHasher, IntAndStringFieldsDiffer) {
  KeyHasher a, b;
  a.field("n", int64_t{7});
  b.field("n", "7");
  EXPECT_NE(a.finish(), b.finish());
  // The text copy shows the int in decimal.
  ASSERT_EQ(a.fields().size(), 1u);
  EXPECT_EQ(a.fields()[0], (KeyField{"n", "7"}));
  KeyHasher c;
  c.field("n", int64_t{-42});
  EXPECT_EQ(c.fields()[0].value, "-42");
}

TEST(KeyHasher, FinishIsRepeatable) {
  KeyHasher h;
  h.field("a", "1");
  EXPECT_EQ(h.finish(), h.finish());
}

TEST(HashFile, EqualsHashOfContent) {
  TempDir t;
  std::string content;
  for (int i = 0; i < 100000; ++i) content += static_cast<char>(i * 31 + 7);
  write_file(t / "f", content);
  Digest128 d;
  std::string err;
  ASSERT_TRUE(hash_file(t / "f", &d, &err)) << err;
  EXPECT_EQ(d, hash_bytes(content.data(), content.size()));
}

TEST(HashFile, LargeFileEqualsHashOfContent) {
  TempDir t;  // above the size where hash_file switches from read(2) to mmap
  std::string content(3 << 20, '\0');
  for (size_t i = 0; i < content.size(); ++i)
    content[i] = static_cast<char>((i * 2654435761u) >> 13);
  write_file(t / "big", content);
  Digest128 d;
  std::string err;
  ASSERT_TRUE(hash_file(t / "big", &d, &err)) << err;
  EXPECT_EQ(d, hash_bytes(content.data(), content.size()));
}

TEST(HashFile, DirectoryIsAnError) {
  TempDir t;
  Digest128 d;
  std::string err;
  EXPECT_FALSE(hash_file(t.path(), &d, &err));
  EXPECT_NE(err.find("not a regular file"), std::string::npos) << err;
}

TEST(HashFile, EmptyFile) {
  TempDir t;
  write_file(t / "empty", "");
  Digest128 d;
  std::string err;
  ASSERT_TRUE(hash_file(t / "empty", &d, &err)) << err;
  EXPECT_EQ(d, hash_bytes("", 0));
}

TEST(HashFile, MissingFileNamesIt) {
  TempDir t;
  Digest128 d;
  std::string err;
  EXPECT_FALSE(hash_file(t / "nope", &d, &err));
  EXPECT_NE(err.find((t / "nope").string()), std::string::npos) << err;
  EXPECT_NE(err.find("No such file"), std::string::npos) << err;
}

}  // namespace
}  // namespace qsweep::cache
