#pragma once
// The GPT-2 byte <-> unicode mapping of the ByteLevel pre-tokenizer/decoder:
// printable bytes ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) map to themselves, the
// other 68 bytes to U+0100.. in byte order (so ' ' is 'Ġ', '\n' is 'Ċ').

#include <cstdint>
#include <string>
#include <string_view>

namespace qsweep::model::byte_level {

/// The UTF-8 text of the character that stands for byte b.
const std::string& byte_to_char(uint8_t b);
/// The byte a code point stands for, or -1 when it stands for none.
int char_to_byte(uint32_t cp);
/// Every byte of s replaced by its character.
std::string encode(std::string_view s);

}  // namespace qsweep::model::byte_level
