#include "cache/hash.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace qsweep::cache {
namespace {

constexpr char k_hex_digits[] = "0123456789abcdef";
// Files are hashed through read(2) in chunks small enough to stay in the L2
// cache between the kernel's copy and the hash. mmap would be faster on a
// page-cached file, but a file truncated by another process while it is
// hashed would raise SIGBUS and kill qsweep: hostile or changing inputs must
// be errors, never crashes. bench/cache/hash_bench.cpp measures the speed.
constexpr size_t k_chunk_bytes = size_t{256} << 10;

Digest128 from_xxh(XXH128_hash_t h) { return Digest128{h.high64, h.low64}; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

XXH3_state_t* as_state(void* p) { return static_cast<XXH3_state_t*>(p); }

// Feeds one length-prefixed byte string (u64 little-endian length, then bytes).
void update_prefixed(XXH3_state_t* s, std::string_view bytes) {
  uint8_t len[8];
  uint64_t n = bytes.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
  XXH3_128bits_update(s, len, sizeof len);
  XXH3_128bits_update(s, bytes.data(), bytes.size());
}

std::string file_error(const std::filesystem::path& path, const char* what, int e) {
  return fmt::format("cannot {} '{}': {}; check that the file exists and is readable", what,
                     path.string(), std::strerror(e));
}

}  // namespace

std::string Digest128::hex() const {
  std::string s(32, '0');
  for (int i = 0; i < 16; ++i) {
    s[15 - i] = k_hex_digits[(hi >> (4 * i)) & 0xf];
    s[31 - i] = k_hex_digits[(lo >> (4 * i)) & 0xf];
  }
  return s;
}

std::optional<Digest128> Digest128::from_hex(std::string_view s) {
  if (s.size() != 32) return std::nullopt;
  Digest128 d;
  for (size_t i = 0; i < 32; ++i) {
    int v = hex_value(s[i]);
    if (v < 0) return std::nullopt;
    uint64_t& half = i < 16 ? d.hi : d.lo;
    half = (half << 4) | static_cast<uint64_t>(v);
  }
  return d;
}

Digest128 hash_bytes(const void* data, size_t size) { return from_xxh(XXH3_128bits(data, size)); }

bool hash_file(const std::filesystem::path& path, Digest128* out, std::string* err) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (err) *err = file_error(path, "open", errno);
    return false;
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    if (err) *err = file_error(path, "stat", e);
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    if (err) *err = fmt::format("cannot hash '{}': not a regular file", path.string());
    return false;
  }
  // Read until EOF, not st_size: the digest is of the bytes read, also when
  // the file changes meanwhile (the stat cache then sees a new mtime).
  thread_local std::unique_ptr<char[]> buf(new char[k_chunk_bytes]);
  XXH3_state_t* s = XXH3_createState();
  XXH3_128bits_reset(s);
  bool ok = true;
  for (;;) {
    ssize_t n = ::read(fd, buf.get(), k_chunk_bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (err) *err = file_error(path, "read", errno);
      ok = false;
      break;
    }
    if (n == 0) break;
    XXH3_128bits_update(s, buf.get(), static_cast<size_t>(n));
  }
  if (ok) *out = from_xxh(XXH3_128bits_digest(s));
  XXH3_freeState(s);
  ::close(fd);
  return ok;
}

KeyHasher::KeyHasher() : state_(XXH3_createState()) { XXH3_128bits_reset(as_state(state_)); }

KeyHasher::~KeyHasher() { XXH3_freeState(as_state(state_)); }

void KeyHasher::field(std::string_view name, std::string_view value) {
  XXH3_state_t* s = as_state(state_);
  const uint8_t tag = 's';
  XXH3_128bits_update(s, &tag, 1);
  update_prefixed(s, name);
  update_prefixed(s, value);
  fields_.push_back(KeyField{std::string(name), std::string(value)});
}

void KeyHasher::field(std::string_view name, int64_t value) {
  XXH3_state_t* s = as_state(state_);
  const uint8_t tag = 'i';
  XXH3_128bits_update(s, &tag, 1);
  update_prefixed(s, name);
  uint8_t bytes[8];  // the value as 8 little-endian bytes, behind its length (8)
  for (int i = 0; i < 8; ++i)
    bytes[i] = static_cast<uint8_t>(static_cast<uint64_t>(value) >> (8 * i));
  update_prefixed(s, std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
  fields_.push_back(KeyField{std::string(name), std::to_string(value)});
}

Digest128 KeyHasher::finish() const { return from_xxh(XXH3_128bits_digest(as_state(state_))); }

}  // namespace qsweep::cache
