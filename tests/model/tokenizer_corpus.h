#pragma once
// The tokenizer parity corpus, rebuilt exactly as scripts/fixtures/corpus.py
// builds it (same sources, counts, field paths, order), plus the sha256 helper
// the fixtures use. Keep the two in sync.

#include <filesystem>
#include <string>
#include <vector>

namespace qsweep::testing {

struct CorpusEntry {
  std::string src;   ///< "<label>:<index>", e.g. "arc:0", "edge:3"
  std::string text;  ///< UTF-8
};

/// The corpus from `data_dir` (../shared/data) and the committed edge cases.
/// Throws std::runtime_error naming a missing or unreadable file.
std::vector<CorpusEntry> build_tokenizer_corpus(const std::filesystem::path& data_dir,
                                                const std::filesystem::path& edge_cases);

/// First 16 hex digits of the SHA-256 of s (the fixtures' `sha`).
std::string sha256_prefix16(const std::string& s);

}  // namespace qsweep::testing
