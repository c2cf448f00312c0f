#pragma once
// User-facing errors of the pipeline core: where (file:line:column, or a
// node), what was wrong, and what to do. The core returns these instead of
// throwing (STYLE.md error policy).

#include <string>
#include <string_view>
#include <vector>

namespace qsweep {

struct SourceLoc {
  std::string file;  ///< path as the user named it (or as an import resolved it)
  int line = 0;      ///< 1-based; 0 = unknown
  int column = 0;    ///< 1-based; 0 = unknown
  std::string str() const;  ///< "file:line:column", or "file" when line is unknown
};

struct Diagnostic {
  SourceLoc loc;
  std::string message;  ///< what is wrong, naming the key / node / value
  std::string hint;     ///< what to do, e.g. "did you mean 'recipes'?" (may be empty)
  std::string str() const;  ///< "file:line:col: error: message (hint)"
};

using Diagnostics = std::vector<Diagnostic>;

/// All diagnostics, one per line.
std::string format_diagnostics(const Diagnostics& d);

/// Edit distance (bytes) counting adjacent transpositions as one edit.
size_t edit_distance(std::string_view a, std::string_view b);

/// The candidate closest to `word` when it is plausibly a typo of it
/// (distance <= max(1, len/3)); empty when none is.
std::string nearest(std::string_view word, const std::vector<std::string>& candidates);

/// "did you mean 'X'?" or "expected one of: a, b, c" (candidates listed when few).
std::string suggest(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace qsweep
