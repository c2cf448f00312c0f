#include "model/util/python_str.h"

namespace qsweep::model {

bool python_isspace(char32_t c) {
  return (c >= 0x9 && c <= 0xD) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

std::optional<char32_t> decode_utf8_at(std::string_view s, std::size_t i, std::size_t* len) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  int n = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
  *len = 1;
  if (n == 0 || i + n > s.size()) return std::nullopt;
  char32_t cp = n == 1 ? b0 : n == 2 ? (b0 & 0x1F) : n == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (int k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (b & 0x3F);
  }
  *len = static_cast<std::size_t>(n);
  return cp;
}

namespace {

bool ascii_space(unsigned char b) { return (b >= 0x09 && b <= 0x0D) || (b >= 0x1C && b <= 0x20); }

// Start of the non-space part of s (s.size() if all space). ASCII bytes are
// tested directly; only non-ASCII code points are decoded.
std::size_t left_end(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      if (!ascii_space(b)) break;
      ++i;
      continue;
    }
    std::size_t len;
    const auto cp = decode_utf8_at(s, i, &len);
    if (!(cp && python_isspace(*cp))) break;
    i += len;
  }
  return i;
}

// End of the non-space part of s[from:] (from if all space), scanning back.
std::size_t right_end(std::string_view s, std::size_t from) {
  std::size_t j = s.size();
  while (j > from) {
    const auto b = static_cast<unsigned char>(s[j - 1]);
    if (b < 0x80) {
      if (!ascii_space(b)) break;
      --j;
      continue;
    }
    // The last code point: back over continuation bytes to its lead byte.
    std::size_t k = j - 1;
    while (k > from && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80 && j - k < 4) --k;
    std::size_t len;
    const auto cp = decode_utf8_at(s, k, &len);
    if (!(cp && len == j - k && python_isspace(*cp))) break;
    j = k;
  }
  return j;
}

}  // namespace

std::string python_strip(std::string_view s) {
  const std::size_t b = left_end(s);
  return std::string(s.substr(b, right_end(s, b) - b));
}

std::string_view python_rstrip(std::string_view s) { return s.substr(0, right_end(s, 0)); }

}  // namespace qsweep::model
