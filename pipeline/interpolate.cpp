#include "pipeline/interpolate.h"

#include <cctype>

namespace qsweep {

namespace {
bool valid_path(std::string_view p) {
  if (p.empty() || p.front() == '.' || p.back() == '.') return false;
  char prev = 0;
  for (char c : p) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
    if (!ok || (c == '.' && prev == '.')) return false;
    prev = c;
  }
  return true;
}
}  // namespace

// Index of the '}' closing the "${" at `open`, honouring nested "${...}" (in
// ":-" defaults); npos when unterminated.
size_t matching_brace(std::string_view s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s.compare(i, 2, "${") == 0) {
      ++depth;
      ++i;
    } else if (s[i] == '}' && --depth == 0) {
      return i;
    }
  }
  return std::string_view::npos;
}

bool parse_template(std::string_view s, std::vector<TemplatePart>* parts, std::string* err) {
  parts->clear();
  std::string lit;
  size_t i = 0;
  while (i < s.size()) {
    if (s.compare(i, 3, "$${") == 0) {
      lit += "${";
      i += 3;
      continue;
    }
    if (s.compare(i, 2, "${") == 0) {
      size_t close = matching_brace(s, i);
      if (close == std::string_view::npos) {
        *err = "unterminated '${' at character " + std::to_string(i) + " (write '$${' for a literal '${')";
        return false;
      }
      std::string_view body = s.substr(i + 2, close - i - 2);
      TemplatePart p;
      p.is_placeholder = true;
      size_t dflt = body.find(":-");
      if (dflt != std::string_view::npos) {
        p.fallback = std::string(body.substr(dflt + 2));
        body = body.substr(0, dflt);
      }
      if (!valid_path(body)) {
        *err = "invalid placeholder '${" + std::string(s.substr(i + 2, close - i - 2)) +
               "}' at character " + std::to_string(i) +
               ": expected a dotted name such as ${vars.name} or ${env.HOME}";
        return false;
      }
      p.text = std::string(body);
      if (!lit.empty()) parts->push_back({false, std::move(lit), std::nullopt});
      lit.clear();
      parts->push_back(std::move(p));
      i = close + 1;
      continue;
    }
    lit += s[i++];
  }
  if (!lit.empty()) parts->push_back({false, std::move(lit), std::nullopt});
  return true;
}

bool has_placeholder(std::string_view s) {
  std::vector<TemplatePart> parts;
  std::string err;
  if (!parse_template(s, &parts, &err)) return true;  // malformed: let interpolate() report it
  for (const auto& p : parts)
    if (p.is_placeholder) return true;
  return false;
}

bool interpolate(std::string_view s, const Resolver& resolve, std::string* out, std::string* err) {
  std::vector<TemplatePart> parts;
  if (!parse_template(s, &parts, err)) return false;
  std::string r;
  for (const auto& p : parts) {
    if (!p.is_placeholder) {
      r += p.text;
      continue;
    }
    auto v = resolve(p.text, std::nullopt);
    if (!v && p.fallback) {
      // The default is itself a template, expanded only when used.
      std::string fb;
      if (!interpolate(*p.fallback, resolve, &fb, err)) return false;
      v = std::move(fb);
    }
    if (!v) {
      *err = "undefined variable ${" + p.text + "}";
      return false;
    }
    r += *v;
  }
  *out = std::move(r);
  return true;
}

const nlohmann::json* json_path(const nlohmann::json& root, std::string_view dotted) {
  const nlohmann::json* cur = &root;
  size_t start = 0;
  while (start <= dotted.size()) {
    size_t dot = dotted.find('.', start);
    std::string_view part =
        dotted.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (cur->is_object()) {
      auto it = cur->find(std::string(part));
      if (it == cur->end()) return nullptr;
      cur = &*it;
    } else if (cur->is_array()) {
      size_t idx = 0;
      if (part.empty()) return nullptr;
      for (char c : part) {
        if (!std::isdigit(static_cast<unsigned char>(c))) return nullptr;
        idx = idx * 10 + static_cast<size_t>(c - '0');
      }
      if (idx >= cur->size()) return nullptr;
      cur = &(*cur)[idx];
    } else {
      return nullptr;
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return cur;
}

std::string json_to_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

}  // namespace qsweep
