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

// [first, last_end) of the non-space span of s (first == s.size() if none).
void nonspace_span(std::string_view s, std::size_t* first, std::size_t* last_end) {
  *first = s.size();
  *last_end = 0;
  for (std::size_t i = 0; i < s.size();) {
    std::size_t len;
    const auto cp = decode_utf8_at(s, i, &len);
    if (!(cp && python_isspace(*cp))) {
      if (*first == s.size()) *first = i;
      *last_end = i + len;
    }
    i += len;
  }
}

}  // namespace

std::string python_strip(std::string_view s) {
  std::size_t first, last_end;
  nonspace_span(s, &first, &last_end);
  if (first == s.size()) return {};
  return std::string(s.substr(first, last_end - first));
}

std::string_view python_rstrip(std::string_view s) {
  std::size_t first, last_end;
  nonspace_span(s, &first, &last_end);
  return s.substr(0, last_end);
}

}  // namespace qsweep::model
