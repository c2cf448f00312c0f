#pragma once
// Helpers shared by the test suites: scratch directories and file I/O.

#include <filesystem>
#include <string>

namespace qsweep::testing {

/// A fresh directory under $TMPDIR (or /tmp), removed with its content when
/// the object goes out of scope.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& rel) const { return path_ / rel; }

 private:
  std::filesystem::path path_;
};

void write_file(const std::filesystem::path& p, const std::string& content);
std::string read_file(const std::filesystem::path& p);

/// stdout of `python3 -c CODE` (CODE must not contain a single quote), or
/// empty when python3 is not on PATH or fails.
std::string python3_output(const std::string& code);

/// The source tree: $QSWEEP_SOURCE_DIR, else the one the tests were built from.
std::filesystem::path source_dir();

/// ../shared/data relative to the source tree, or empty when absent (tests
/// that need it call GTEST_SKIP() with a message naming the path).
std::filesystem::path shared_data_dir();

}  // namespace qsweep::testing
