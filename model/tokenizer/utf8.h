#pragma once
// UTF-8 helpers for the tokenizers: code point iteration, encoding, and the
// lossy repair HF and SentencePiece apply to invalid byte sequences.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace qsweep::model::utf8 {

/// Length in bytes of the UTF-8 sequence starting at s[i] (1..4), assuming s
/// is valid UTF-8; 1 for a stray continuation byte.
size_t char_len(std::string_view s, size_t i);
/// Appends the UTF-8 encoding of code point `cp` to `out`.
void append(std::string& out, uint32_t cp);
/// Decodes the code point at s[i] (valid UTF-8 assumed) and sets *len.
uint32_t decode(std::string_view s, size_t i, size_t* len);
/// True when s is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF).
bool valid(std::string_view s);
/// s with every maximal invalid subsequence replaced by U+FFFD, as Rust's
/// String::from_utf8_lossy does (the WHATWG / Unicode "substitution of maximal
/// subparts" rule).
std::string lossy(std::string_view s);

}  // namespace qsweep::model::utf8
