#pragma once
// Small files that readers on any host must see whole or not at all (node
// plans, Slurm job scripts and results): written under a private temporary
// name next to the target, then renamed over it (atomic on POSIX, also on NFS
// within one directory).

#include <filesystem>
#include <string>
#include <string_view>

namespace qsweep::cache {

/// Creates the parent directories, writes text to PATH.tmp.<pid>.<n>, renames
/// it over PATH. executable: mode 0755 instead of the umask's default.
/// False + *err naming the file on any failure (the temporary is removed).
bool write_file_atomic(const std::filesystem::path& path, std::string_view text, std::string* err,
                       bool executable = false);

}  // namespace qsweep::cache
