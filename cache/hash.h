#pragma once
// Content hashing for cache keys and artifact files: XXH3-128.
//
// Keys are hashed over *typed, delimited fields* (ccache's hash_delimiter): each
// field contributes its name, a type tag and a length prefix, so that
// ("ab","c") and ("a","bc") never collide by construction, and the fields can
// be dumped as text to explain why two keys differ.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qsweep::cache {

/// A 128-bit digest; hex() is 32 lowercase hex digits, high half first.
struct Digest128 {
  uint64_t hi = 0;
  uint64_t lo = 0;

  std::string hex() const;
  /// Parses exactly 32 hex digits; nullopt on anything else.
  static std::optional<Digest128> from_hex(std::string_view s);
  friend bool operator==(const Digest128&, const Digest128&) = default;
};

/// XXH3-128 of a byte range.
Digest128 hash_bytes(const void* data, size_t size);

/// XXH3-128 of a whole file's content (mmap, sequential). Returns false and
/// sets *err (naming the file) when it cannot be opened or read.
bool hash_file(const std::filesystem::path& path, Digest128* out, std::string* err);

/// One hashed field, as text: used by `qsweep explain` and stored in manifests.
struct KeyField {
  std::string name;   ///< e.g. "kind", "stage_version", "params", "input:checkpoint"
  std::string value;  ///< the exact bytes hashed (canonical JSON, a key in hex, ...)
  friend bool operator==(const KeyField&, const KeyField&) = default;
};

/// Builds a key from typed, delimited fields. The order of field() calls is
/// part of the key; callers add fields in a fixed order.
class KeyHasher {
 public:
  KeyHasher();
  ~KeyHasher();
  KeyHasher(const KeyHasher&) = delete;
  KeyHasher& operator=(const KeyHasher&) = delete;

  void field(std::string_view name, std::string_view value);
  void field(std::string_view name, int64_t value);

  Digest128 finish() const;
  const std::vector<KeyField>& fields() const { return fields_; }

 private:
  void* state_;  // XXH3_state_t*, opaque so xxhash.h stays out of this header
  std::vector<KeyField> fields_;
};

}  // namespace qsweep::cache
