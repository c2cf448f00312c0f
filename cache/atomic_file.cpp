#include "cache/atomic_file.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>

namespace qsweep::cache {

namespace fs = std::filesystem;

bool write_file_atomic(const fs::path& path, std::string_view text, std::string* err, bool executable) {
  static std::atomic<unsigned> counter{0};
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  const fs::path tmp = path.string() + ".tmp." + std::to_string(getpid()) + "." + std::to_string(counter++);
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(text.data(), static_cast<std::streamsize>(text.size()));
    f.flush();
    if (!f) {
      *err = "cannot write " + tmp.string() + ": " + std::strerror(errno);
      fs::remove(tmp, ec);
      return false;
    }
  }
  if (executable)
    fs::permissions(tmp, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec, ec);
  fs::rename(tmp, path, ec);
  if (ec) {
    *err = "cannot rename " + tmp.string() + " to " + path.string() + ": " + ec.message();
    fs::remove(tmp, ec);
    return false;
  }
  return true;
}

}  // namespace qsweep::cache
