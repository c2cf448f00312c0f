#include "model/tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdexcept>

namespace qsweep::model {

namespace {
// Unicode White_Space (what Oniguruma's \s matches in UTF-8 mode).
constexpr const char* k_white_space =
    "\\x{9}-\\x{D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
    "\\x{202F}\\x{205F}\\x{3000}";

// One JIT stack per thread, shared by every Regex (a JIT stack can serve any
// pattern; the default 32 KiB one is too small for long whitespace runs).
pcre2_jit_stack* thread_jit_stack() {
  struct Holder {
    pcre2_jit_stack* s = pcre2_jit_stack_create(64 * 1024, 8 * 1024 * 1024, nullptr);
    ~Holder() {
      if (s) pcre2_jit_stack_free(s);
    }
  };
  thread_local Holder h;
  return h.s;
}
}  // namespace

std::string rewrite_whitespace_classes(const std::string& p) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[i + 1];
      ++i;
      if (e == 's') {
        out += in_class ? std::string(k_white_space) : "[" + std::string(k_white_space) + "]";
      } else if (e == 'S') {
        if (in_class) throw std::runtime_error("\\S inside a character class is not supported");
        out += "[^" + std::string(k_white_space) + "]";
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

struct Regex::Impl {
  pcre2_code* code = nullptr;
  bool jit = false;
};

Regex::Regex(const std::string& pattern, const std::string& what) : impl_(new Impl) {
  std::string rewritten;
  try {
    rewritten = rewrite_whitespace_classes(pattern);
  } catch (const std::exception& e) {
    throw std::runtime_error(what + ": regex " + pattern + ": " + e.what());
  }
  int err = 0;
  PCRE2_SIZE off = 0;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rewritten.data()), rewritten.size(),
                              PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr);
  if (!impl_->code) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof buf);
    throw std::runtime_error(what + ": cannot compile regex " + pattern + ": " +
                             reinterpret_cast<const char*>(buf) + " at offset " +
                             std::to_string(off));
  }
  impl_->jit = pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() {
  if (impl_ && impl_->code) pcre2_code_free(impl_->code);
}

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> out;
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(impl_->code, nullptr);
  pcre2_match_context* mc = pcre2_match_context_create(nullptr);
  if (impl_->jit) pcre2_jit_stack_assign(mc, nullptr, thread_jit_stack());
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos <= text.size()) {
    int rc = pcre2_match(impl_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md, mc);
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH && impl_->jit) {
      // A JIT resource limit (stack): the interpreter keeps its state on the heap.
      rc = pcre2_match(impl_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                       md, mc);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(rc, buf, sizeof buf);
      pcre2_match_context_free(mc);
      pcre2_match_data_free(md);
      // Never a silently shorter match list (that would be wrong token ids).
      throw std::runtime_error(std::string("regex match failed on a text of ") +
                               std::to_string(text.size()) +
                               " bytes: " + reinterpret_cast<const char*>(buf));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t s = ov[0], e = ov[1];
    out.emplace_back(s, e);
    if (e > s) {
      pos = e;
    } else {  // empty match: step over one character
      if (e >= text.size()) break;
      size_t n = 1;
      while (e + n < text.size() && (static_cast<unsigned char>(text[e + n]) & 0xC0) == 0x80) ++n;
      pos = e + n;
    }
  }
  pcre2_match_context_free(mc);
  pcre2_match_data_free(md);
  return out;
}

bool Regex::search(std::string_view text) const {
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(impl_->code, nullptr);
  const int rc = pcre2_match(impl_->code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0,
                             PCRE2_NO_UTF_CHECK, md, nullptr);
  pcre2_match_data_free(md);
  return rc >= 0;
}

}  // namespace qsweep::model
