#include "pipeline/diagnostic.h"

#include <algorithm>

namespace qsweep {

std::string SourceLoc::str() const {
  if (line <= 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

std::string Diagnostic::str() const {
  std::string s = loc.file.empty() ? "error: " : loc.str() + ": error: ";
  s += message;
  if (!hint.empty()) s += " (" + hint + ")";
  return s;
}

std::string format_diagnostics(const Diagnostics& d) {
  std::string s;
  for (const auto& x : d) s += x.str() + "\n";
  return s;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  // Optimal string alignment: insertions, deletions, substitutions and
  // transpositions of adjacent characters ("modle" -> "model") cost 1.
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i)
    for (size_t j = 1; j <= m; ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[n][m];
}

std::string nearest(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const auto& c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best_d) best_d = d, best = c;
  }
  size_t limit = std::max<size_t>(1, word.size() / 3);
  return best_d <= limit ? best : std::string{};
}

std::string suggest(std::string_view word, const std::vector<std::string>& candidates) {
  std::string n = nearest(word, candidates);
  if (!n.empty()) return "did you mean '" + n + "'?";
  if (candidates.empty()) return {};
  if (candidates.size() > 12) return {};
  std::string s = "expected one of: ";
  for (size_t i = 0; i < candidates.size(); ++i) s += (i ? ", " : "") + candidates[i];
  return s;
}

}  // namespace qsweep
