#include "scoring/pyre.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cstdint>
#include <optional>
#include <stdexcept>

#include "model/util/python_str.h"

namespace qsweep::scoring {

std::string python_strip(std::string_view s) { return model::python_strip(s); }

std::string translate_python_pattern(const std::string& p) {
  std::string out;
  out.reserve(p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '\\' && i + 1 < p.size()) {
      out += '\\';
      out += p[i + 1] == 'Z' ? 'z' : p[i + 1];
      ++i;
      continue;
    }
    out += p[i];
  }
  return out;
}

struct PyRegex::Impl {
  pcre2_code* code = nullptr;  // immutable after construction: matching is thread-safe
  ~Impl() {
    if (code) pcre2_code_free(code);
  }
};

PyRegex::PyRegex(const std::string& pattern) : pattern_(pattern), impl_(new Impl) {
  const std::string translated = translate_python_pattern(pattern);
  pcre2_compile_context* cc = pcre2_compile_context_create(nullptr);
  // Python's `.`, `$` and `^` (with (?m)) know only "\n" as a line end.
  pcre2_set_newline(cc, PCRE2_NEWLINE_LF);
  int err = 0;
  PCRE2_SIZE off = 0;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                              // ALT_CIRCUMFLEX: (?m)^ also matches after a final "\n", as Python's.
                              PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | PCRE2_ALT_CIRCUMFLEX,
                              &err, &off, cc);
  pcre2_compile_context_free(cc);
  if (!impl_->code) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof buf);
    throw std::invalid_argument("regex " + pattern + ": " + reinterpret_cast<const char*>(buf) +
                                " at offset " + std::to_string(off));
  }
}

PyRegex::~PyRegex() = default;
PyRegex::PyRegex(PyRegex&&) noexcept = default;
PyRegex& PyRegex::operator=(PyRegex&&) noexcept = default;

int PyRegex::group_count() const {
  uint32_t n = 0;
  pcre2_pattern_info(impl_->code, PCRE2_INFO_CAPTURECOUNT, &n);
  return static_cast<int>(n);
}

template <class F>
void PyRegex::for_each_match(std::string_view text, F&& f) const {
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(impl_->code, nullptr);
  struct Free {
    pcre2_match_data* m;
    ~Free() { pcre2_match_data_free(m); }
  } guard{md};
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  bool must_advance = false;  // the previous match was empty and ended at pos
  while (pos <= text.size()) {
    const int rc = pcre2_match(impl_->code, subject, text.size(), pos,
                               must_advance ? PCRE2_NOTEMPTY_ATSTART : 0, md, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) return;
    if (rc < 0) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(rc, buf, sizeof buf);
      throw std::runtime_error("regex " + pattern_ + ": " + reinterpret_cast<const char*>(buf));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    f(ov, rc);
    must_advance = ov[1] == ov[0];
    pos = ov[1];
  }
}

std::vector<std::vector<std::string>> PyRegex::findall(std::string_view text) const {
  const int groups = group_count();
  std::vector<std::vector<std::string>> out;
  for_each_match(text, [&](const PCRE2_SIZE* ov, int rc) {
    auto group = [&](int g) -> std::string {
      if (g >= rc || ov[2 * g] == PCRE2_UNSET) return {};
      return std::string(text.substr(ov[2 * g], ov[2 * g + 1] - ov[2 * g]));
    };
    std::vector<std::string> item;
    if (groups == 0) {
      item.push_back(group(0));
    } else {
      for (int g = 1; g <= groups; ++g) item.push_back(group(g));
    }
    out.push_back(std::move(item));
  });
  return out;
}

std::vector<std::string> PyRegex::split(std::string_view text) const {
  const int groups = group_count();
  std::vector<std::string> out;
  size_t copied = 0;
  for_each_match(text, [&](const PCRE2_SIZE* ov, int rc) {
    out.emplace_back(text.substr(copied, ov[0] - copied));
    for (int g = 1; g <= groups; ++g)
      out.push_back(g < rc && ov[2 * g] != PCRE2_UNSET ? std::string(text.substr(ov[2 * g], ov[2 * g + 1] - ov[2 * g]))
                                                       : std::string());
    copied = ov[1];
  });
  out.emplace_back(text.substr(copied));
  return out;
}

bool PyRegex::matches(std::string_view text) const { return search(text).has_value(); }

std::string PyRegex::sub(std::string_view repl, std::string_view text) const {
  if (repl.find('\\') != std::string_view::npos)
    throw std::invalid_argument("PyRegex::sub: backslash in a replacement is not supported");
  std::string out;
  size_t copied = 0;
  for_each_match(text, [&](const PCRE2_SIZE* ov, int) {
    out.append(text.substr(copied, ov[0] - copied));
    out.append(repl);
    copied = ov[1];
  });
  out.append(text.substr(copied));
  return out;
}

namespace {
std::vector<std::string> all_groups(std::string_view text, const PCRE2_SIZE* ov, int rc, int groups) {
  std::vector<std::string> out;
  for (int g = 0; g <= groups; ++g) {
    if (g >= rc || ov[2 * g] == PCRE2_UNSET) out.emplace_back();
    else out.emplace_back(text.substr(ov[2 * g], ov[2 * g + 1] - ov[2 * g]));
  }
  return out;
}
}  // namespace

std::string PyRegex::sub_with(const Replacer& fn, std::string_view text) const {
  const int groups = group_count();
  std::string out;
  size_t copied = 0;
  for_each_match(text, [&](const PCRE2_SIZE* ov, int rc) {
    out.append(text.substr(copied, ov[0] - copied));
    out.append(fn(all_groups(text, ov, rc, groups)));
    copied = ov[1];
  });
  out.append(text.substr(copied));
  return out;
}

std::optional<std::vector<std::string>> PyRegex::search(std::string_view text) const {
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(impl_->code, nullptr);
  struct Free {
    pcre2_match_data* m;
    ~Free() { pcre2_match_data_free(m); }
  } guard{md};
  const int rc = pcre2_match(impl_->code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0, 0, md,
                             nullptr);
  if (rc == PCRE2_ERROR_NOMATCH) return std::nullopt;
  if (rc < 0) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(rc, buf, sizeof buf);
    throw std::runtime_error("regex " + pattern_ + ": " + reinterpret_cast<const char*>(buf));
  }
  return all_groups(text, pcre2_get_ovector_pointer(md), rc, group_count());
}

}  // namespace qsweep::scoring
