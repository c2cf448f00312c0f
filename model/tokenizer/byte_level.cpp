#include "model/tokenizer/byte_level.h"

#include <array>

#include "model/tokenizer/utf8.h"

namespace qsweep::model::byte_level {

namespace {
struct Tables {
  std::array<std::string, 256> to_char;
  std::array<int, 324> to_byte;  // code points < 0x100 + 68
  Tables() {
    to_byte.fill(-1);
    uint32_t n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      const uint32_t cp = printable ? static_cast<uint32_t>(b) : 256 + n++;
      utf8::append(to_char[b], cp);
      to_byte[cp] = b;
    }
  }
};
const Tables& tables() {
  static const Tables t;
  return t;
}
}  // namespace

const std::string& byte_to_char(uint8_t b) { return tables().to_char[b]; }

int char_to_byte(uint32_t cp) { return cp < 324 ? tables().to_byte[cp] : -1; }

std::string encode(std::string_view s) {
  std::string out;
  out.reserve(s.size() * 2);
  const auto& t = tables();
  for (unsigned char c : s) out += t.to_char[c];
  return out;
}

}  // namespace qsweep::model::byte_level
