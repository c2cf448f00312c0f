#pragma once
// Python str whitespace semantics on UTF-8 text (str.isspace / str.strip /
// str.rstrip with no argument), shared by the request encoder (lm-eval's
// _encode_pair moves the context's trailing whitespace) and scoring's filters.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace qsweep::model {

/// Python's str.isspace() for one code point (Unicode White_Space plus the
/// \x1c-\x1f separators Python counts as whitespace).
bool python_isspace(char32_t c);

/// The code point at s[i] of valid UTF-8 and its byte length in *len;
/// std::nullopt (with *len = 1) for an invalid sequence, which then counts
/// as one opaque, non-space byte.
std::optional<char32_t> decode_utf8_at(std::string_view s, std::size_t i, std::size_t* len);

/// Python `s.strip()` / `s.rstrip()`.
std::string python_strip(std::string_view s);
std::string_view python_rstrip(std::string_view s);

}  // namespace qsweep::model
