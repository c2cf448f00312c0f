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
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
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
