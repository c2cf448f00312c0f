#include "model/tokenizer/pattern.h"

#include <nlohmann/json.hpp>
#include <stdexcept>

namespace qsweep::model {

Pattern::Pattern(const nlohmann::json& j, const std::string& what) {
  if (j.is_object() && j.size() == 1 && j.contains("String") && j["String"].is_string()) {
    literal_ = j["String"].get<std::string>();
  } else if (j.is_object() && j.size() == 1 && j.contains("Regex") && j["Regex"].is_string()) {
    regex_ = std::make_shared<Regex>(j["Regex"].get<std::string>(), what);
  } else {
    throw std::runtime_error(
        what + ": pattern must be {\"String\": ...} or {\"Regex\": ...}, got " + j.dump());
  }
}

std::vector<Pattern::Piece> Pattern::find_matches(std::string_view text) const {
  std::vector<Piece> out;
  if (text.empty()) {
    out.push_back({0, 0, false});
    return out;
  }
  size_t prev = 0;
  auto add_match = [&](size_t s, size_t e) {
    if (prev != s) out.push_back({prev, s, false});
    out.push_back({s, e, true});
    prev = e;
  };
  if (regex_) {
    for (auto [s, e] : regex_->find_all(text)) add_match(s, e);
  } else if (!literal_.empty()) {
    for (size_t pos = text.find(literal_); pos != std::string_view::npos;
         pos = text.find(literal_, pos + literal_.size())) {
      add_match(pos, pos + literal_.size());
    }
  }
  if (prev != text.size()) out.push_back({prev, text.size(), false});
  return out;
}

std::string Pattern::replace_all(std::string_view text, std::string_view content) const {
  std::string out;
  out.reserve(text.size());
  for (const Piece& p : find_matches(text)) {
    if (p.is_match) {
      out += content;
    } else {
      out.append(text.substr(p.start, p.end - p.start));
    }
  }
  return out;
}

}  // namespace qsweep::model
