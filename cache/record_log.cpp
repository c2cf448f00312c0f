#include "cache/record_log.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <system_error>

#include "cache/line_log.h"

namespace qsweep::cache {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const char* what, const fs::path& path, int err) {
  throw std::runtime_error(std::string(what) + " " + path.string() + ": " + std::strerror(err));
}

}  // namespace

RecordLog::RecordLog(fs::path path) : path_(std::move(path)) {
  std::error_code ec;
  if (path_.has_parent_path()) fs::create_directories(path_.parent_path(), ec);
  if (ec) throw std::runtime_error("cannot create " + path_.parent_path().string() + ": " + ec.message());
  fd_ = open_for_append(path_);
  if (fd_ < 0) fail("cannot open request journal", path_, errno);
  std::string& text = file_text_;
  if (!read_whole_file(path_, &text)) {
    const int e = errno;
    ::close(fd_);
    fail("cannot read request journal", path_, e);
  }
  std::string_view rest = text;
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    if (line.empty()) continue;
    // A torn tail has no newline: skipped. Complete lines are split without a
    // full parse when they have the shape append() writes,
    // {"k":"KEY","v":VALUE}; any other line is parsed and must be an object
    // with a string "k" and a "v". Damage is skipped, never fatal.
    if (nl == std::string_view::npos) {
      ++skipped_;
      continue;
    }
    static constexpr std::string_view k_head = "{\"k\":\"", k_mid = "\",\"v\":";
    if (line.substr(0, k_head.size()) == k_head && line.back() == '}') {
      const size_t q = line.find('"', k_head.size());
      const std::string_view key = line.substr(k_head.size(), q - k_head.size());
      if (q != std::string_view::npos && key.find('\\') == std::string_view::npos &&
          line.substr(q, k_mid.size()) == k_mid) {
        const size_t v0 = q + k_mid.size();
        records_[std::string(key)].push_back(line.substr(v0, line.size() - 1 - v0));
        continue;
      }
    }
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("k") || !j["k"].is_string() || !j.contains("v")) {
      ++skipped_;
      continue;
    }
    appended_.push_back(j["v"].dump());
    records_[j["k"].get<std::string>()].push_back(appended_.back());
  }
}

RecordLog::~RecordLog() {
  if (fd_ >= 0) ::close(fd_);
}

const nlohmann::json* RecordLog::find(const std::string& key) {
  if (auto p = parsed_.find(key); p != parsed_.end()) return &p->second;
  auto it = records_.find(key);
  if (it == records_.end()) return nullptr;
  for (const std::string_view text : it->second) {
    auto v = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!v.is_discarded()) return &parsed_.emplace(key, std::move(v)).first->second;
  }
  return nullptr;
}

void RecordLog::append(const std::vector<std::pair<std::string, nlohmann::json>>& records) {
  if (records.empty()) return;
  std::vector<std::string> texts;
  texts.reserve(records.size());
  std::string buf;
  if (has_torn_tail(fd_, path_)) buf += '\n';
  for (const auto& [k, v] : records) {
    texts.push_back(v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    buf += "{\"k\":" + nlohmann::json(k).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
           ",\"v\":" + texts.back() + "}\n";
  }
  if (!write_all(fd_, buf)) fail("cannot append to request journal", path_, errno);
  for (size_t i = 0; i < records.size(); ++i) {
    // A key already answered keeps its first value (find() parses in order).
    appended_.push_back(std::move(texts[i]));
    records_[records[i].first].push_back(appended_.back());
  }
}

}  // namespace qsweep::cache
