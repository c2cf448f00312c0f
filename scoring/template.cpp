// The lm-eval task-template subset of Jinja2 (docs/scoring.md, "Task
// templates"). Parsing: one pass over the source that splits text from
// `{{ }}` / `{% %}` / `{# #}` tags and parses each tag's expression by
// recursive descent (Jinja's precedence), then a tree build of the
// if/for blocks. Evaluation: a tree walk over JSON values plus an
// "undefined" marker that behaves like Jinja's StrictUndefined.
#include "scoring/template.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <clocale>
#include <cstdlib>
#include <cwctype>
#include <locale.h>
#include <iterator>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "model/tokenizer/utf8.h"
#include "scoring/metrics.h"
#include "scoring/pyre.h"

namespace qsweep::scoring {

using nlohmann::json;

namespace {

std::string error_text(const std::string& name, std::size_t line, std::size_t col,
                       const std::string& msg) {
  return name + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " + msg;
}

// ---------------------------------------------------------------- printing

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string s(buf, res.ptr);
  std::string sign;
  if (s[0] == '-') {
    sign = "-";
    s.erase(0, 1);
  }
  const auto epos = s.find('e');
  const int exp = std::atoi(s.c_str() + epos + 1);
  std::string digits;
  for (std::size_t i = 0; i < epos; ++i)
    if (s[i] != '.') digits += s[i];
  if (exp >= -4 && exp < 16) {  // Python repr: fixed notation in this range
    std::string out;
    if (exp >= 0) {
      if (digits.size() <= static_cast<std::size_t>(exp) + 1) {
        out = digits + std::string(exp + 1 - digits.size(), '0') + ".0";
      } else {
        out = digits.substr(0, exp + 1) + "." + digits.substr(exp + 1);
      }
    } else {
      out = "0." + std::string(-exp - 1, '0') + digits;
    }
    return sign + out;
  }
  std::string out = digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  out += "e";
  out += exp < 0 ? "-" : "+";
  const std::string e = std::to_string(std::abs(exp));
  out += (e.size() < 2 ? "0" : "") + e;
  return sign + out;
}

std::string string_repr(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char q = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == static_cast<unsigned char>(q)) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += q;
  return out;
}

}  // namespace

std::string python_repr(const json& v) {
  switch (v.type()) {
    case json::value_t::string:
      return string_repr(v.get<std::string>());
    case json::value_t::array: {
      std::string out = "[";
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (i) out += ", ";
        out += python_repr(v[i]);
      }
      return out + "]";
    }
    case json::value_t::object: {
      std::string out = "{";
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) out += ", ";
        first = false;
        out += string_repr(it.key()) + ": " + python_repr(it.value());
      }
      return out + "}";
    }
    default:
      return python_str(v);
  }
}

std::string python_str(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "None";
    case json::value_t::boolean:
      return v.get<bool>() ? "True" : "False";
    case json::value_t::number_integer:
      return std::to_string(v.get<std::int64_t>());
    case json::value_t::number_unsigned:
      return std::to_string(v.get<std::uint64_t>());
    case json::value_t::number_float:
      return float_repr(v.get<double>());
    case json::value_t::string:
      return v.get<std::string>();
    default:
      return python_repr(v);
  }
}

TemplateError::TemplateError(std::string name, std::size_t line, std::size_t column,
                             std::string message)
    : std::runtime_error(error_text(name, line, column, message)),
      name_(std::move(name)),
      line_(line),
      column_(column),
      message_(std::move(message)) {}

namespace {

// ---------------------------------------------------------------- AST

struct Expr;
using ExprP = std::shared_ptr<const Expr>;

struct Expr {
  enum Kind { Lit, ListLit, Var, Attr, Item, Slice, Method, Filter, Test, Unary, Binary, Cond };
  Kind kind;
  std::size_t pos = 0;
  json lit;
  std::string name;  // variable / attribute / method / filter / test / operator
  bool negated = false;
  std::vector<ExprP> args;  // may hold nullptr (slice bounds, missing else)
};

struct Node {
  enum Kind { Text, Output, Set, If, For };
  Kind kind;
  std::size_t pos = 0;
  std::string text;  // Text; Set / For variable
  ExprP expr;        // Output, Set, For iterable
  std::vector<std::pair<ExprP, std::vector<Node>>> branches;  // If
  std::vector<Node> body;                                      // For
  std::vector<Node> else_body;                                 // If, For
};

// A scanned statement tag before the block tree is built.
struct Item {
  enum Kind { Text, Output, Stmt };
  Kind kind;
  std::size_t pos = 0;
  std::string text;  // Text; Stmt keyword
  std::string var;   // set / for target
  ExprP expr;
};

// ---------------------------------------------------------------- values

struct Value {
  bool undefined = false;
  bool soft = false;  // Jinja's plain Undefined (`a if c` without else): prints "", is false
  std::string why;  // for undefined: Jinja's message
  json j;
  static Value undef(std::string why) {
    Value v;
    v.undefined = true;
    v.why = std::move(why);
    return v;
  }
  Value() = default;
  Value(json x) : j(std::move(x)) {}  // NOLINT(google-explicit-constructor)
};

const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "NoneType";
    case json::value_t::boolean: return "bool";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "int";
    case json::value_t::number_float: return "float";
    case json::value_t::string: return "str";
    case json::value_t::array: return "list";
    case json::value_t::object: return "dict";
    default: return "object";
  }
}

bool is_num(const json& v) { return v.is_number() || v.is_boolean(); }
bool is_int(const json& v) { return v.is_number_integer() || v.is_boolean(); }
std::int64_t as_int(const json& v) {
  if (v.is_boolean()) return v.get<bool>() ? 1 : 0;
  if (v.is_number_unsigned()) return static_cast<std::int64_t>(v.get<std::uint64_t>());
  return v.get<std::int64_t>();
}
double as_double(const json& v) {
  if (v.is_boolean()) return v.get<bool>() ? 1.0 : 0.0;
  return v.get<double>();
}

bool truthy(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return false;
    case json::value_t::boolean: return v.get<bool>();
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return as_int(v) != 0;
    case json::value_t::number_float: return v.get<double>() != 0.0;
    case json::value_t::string: return !v.get_ref<const std::string&>().empty();
    case json::value_t::array:
    case json::value_t::object: return !v.empty();
    default: return true;
  }
}

// Byte offsets of the code point starts of a UTF-8 string, plus its size.
std::vector<std::size_t> cp_bounds(const std::string& s) {
  std::vector<std::size_t> b;
  for (std::size_t i = 0; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) b.push_back(i);
  b.push_back(s.size());
  return b;
}

std::vector<std::string> code_points(const std::string& s) {
  const auto b = cp_bounds(s);
  std::vector<std::string> out;
  for (std::size_t i = 0; i + 1 < b.size(); ++i) out.push_back(s.substr(b[i], b[i + 1] - b[i]));
  return out;
}

bool py_eq(const json& a, const json& b) {
  if (is_num(a) && is_num(b)) {
    if (is_int(a) && is_int(b)) return as_int(a) == as_int(b);
    return as_double(a) == as_double(b);
  }
  if (a.is_array() && b.is_array()) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (!py_eq(a[i], b[i])) return false;
    return true;
  }
  if (a.type() != b.type()) return false;
  return a == b;
}

// -1 / 0 / 1, or nullopt when Python would raise TypeError.
std::optional<int> py_cmp(const json& a, const json& b) {
  if (is_num(a) && is_num(b)) {
    if (is_int(a) && is_int(b)) {
      const auto x = as_int(a), y = as_int(b);
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    const double x = as_double(a), y = as_double(b);
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    const int c = a.get_ref<const std::string&>().compare(b.get_ref<const std::string&>());
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_array() && b.is_array()) {
    for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
      if (py_eq(a[i], b[i])) continue;
      return py_cmp(a[i], b[i]);
    }
    return a.size() < b.size() ? -1 : (a.size() > b.size() ? 1 : 0);
  }
  return std::nullopt;
}

// ---------------------------------------------------------------- string helpers

bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' ||
         (c >= 0x1c && c <= 0x1f);
}

std::string py_lstrip(const std::string& s) {
  std::string t = python_strip(s + "x");
  t.pop_back();
  return t;
}
std::string py_rstrip(const std::string& s) { return python_strip("x" + s).substr(1); }

std::string strip_chars(const std::string& s, const std::string& chars, bool left, bool right) {
  const auto set = code_points(chars);
  auto cps = code_points(s);
  auto in_set = [&](const std::string& c) { return std::find(set.begin(), set.end(), c) != set.end(); };
  std::size_t b = 0, e = cps.size();
  if (left)
    while (b < e && in_set(cps[b])) ++b;
  if (right)
    while (e > b && in_set(cps[e - 1])) --e;
  std::string out;
  for (std::size_t i = b; i < e; ++i) out += cps[i];
  return out;
}

json py_split(const std::string& s, const std::optional<std::string>& sep, std::int64_t maxsplit) {
  json out = json::array();
  if (!sep) {
    std::size_t i = 0;
    std::int64_t splits = 0;
    while (true) {
      while (i < s.size() && is_ascii_space(s[i])) ++i;
      if (i >= s.size()) break;
      if (maxsplit >= 0 && splits >= maxsplit) {
        std::string rest = s.substr(i);
        while (!rest.empty() && is_ascii_space(rest.back())) rest.pop_back();
        out.push_back(rest);
        break;
      }
      std::size_t j = i;
      while (j < s.size() && !is_ascii_space(s[j])) ++j;
      out.push_back(s.substr(i, j - i));
      ++splits;
      i = j;
    }
    return out;
  }
  std::size_t start = 0;
  std::int64_t splits = 0;
  while (maxsplit < 0 || splits < maxsplit) {
    const auto p = s.find(*sep, start);
    if (p == std::string::npos) break;
    out.push_back(s.substr(start, p - start));
    start = p + sep->size();
    ++splits;
  }
  out.push_back(s.substr(start));
  return out;
}

std::string py_replace(const std::string& s, const std::string& old, const std::string& repl,
                       std::int64_t count) {
  std::string out;
  std::int64_t n = 0;
  if (old.empty()) {
    const auto cps = code_points(s);
    for (std::size_t i = 0; i <= cps.size(); ++i) {
      if (count < 0 || n < count) {
        out += repl;
        ++n;
      }
      if (i < cps.size()) out += cps[i];
    }
    return out;
  }
  std::size_t start = 0;
  while (count < 0 || n < count) {
    const auto p = s.find(old, start);
    if (p == std::string::npos) break;
    out += s.substr(start, p - start) + repl;
    start = p + old.size();
    ++n;
  }
  return out + s.substr(start);
}

// Python str.upper() for simple (one-to-one) mappings: glibc C.UTF-8
// towupper; the special multi-character uppercasings (e.g. U+00DF -> "SS")
// are not applied.
std::string py_upper(const std::string& s) {
  static const locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
  std::string out;
  for (const std::string& ch : code_points(s)) {
    const auto b0 = static_cast<unsigned char>(ch[0]);
    if (b0 < 0x80) {
      out += static_cast<char>(b0 >= 'a' && b0 <= 'z' ? b0 - 32 : b0);
      continue;
    }
    const std::size_t len = (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || len != ch.size() || !loc) {
      out += ch;
      continue;
    }
    std::uint32_t cp = len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
    for (std::size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(ch[k]) & 0x3F);
    model::utf8::append(out, static_cast<std::uint32_t>(towupper_l(static_cast<wint_t>(cp), loc)));
  }
  return out;
}

// Python int(str): optional whitespace, sign, digits with single underscores.
std::optional<std::int64_t> parse_py_int(const std::string& raw) {
  std::string s = python_strip(raw);
  std::size_t i = 0;
  bool neg = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  if (i >= s.size()) return std::nullopt;
  std::string digits;
  for (; i < s.size(); ++i) {
    if (s[i] >= '0' && s[i] <= '9') {
      digits += s[i];
    } else if (s[i] == '_' && !digits.empty() && i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '9') {
      continue;
    } else {
      return std::nullopt;
    }
  }
  std::int64_t v = 0;
  auto r = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (r.ec != std::errc() || r.ptr != digits.data() + digits.size()) return std::nullopt;
  return neg ? -v : v;
}

std::optional<double> parse_py_float(const std::string& raw) {
  const std::string s = python_strip(raw);
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  const double d = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  return d;
}

// ---------------------------------------------------------------- parser

struct Tok {
  enum Kind { Name, Str, Int, Float, Op, End };
  Kind kind = End;
  std::size_t pos = 0;
  std::string text;  // name / op / decoded string
  std::int64_t ival = 0;
  double fval = 0;
  bool strip = false;  // End: the closer had a '-'
};

class Parser {
 public:
  Parser(const std::string& src, const std::string& name) : src_(src), name_(name) {}

  [[noreturn]] void fail(std::size_t pos, const std::string& msg) const {
    std::size_t line = 1, col = 1;
    for (std::size_t i = 0; i < pos && i < src_.size(); ++i) {
      if (src_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    throw TemplateError(name_, line, col, msg);
  }

  std::vector<Item> scan() {
    std::vector<Item> items;
    std::size_t pos = 0;
    bool lstrip_next = false;
    const std::size_t n = src_.size();
    while (pos < n) {
      std::size_t open = pos;
      while (open < n) {
        open = src_.find('{', open);
        if (open == std::string::npos || open + 1 >= n) {
          open = n;
          break;
        }
        const char c = src_[open + 1];
        if (c == '{' || c == '%' || c == '#') break;
        ++open;
      }
      std::string text = src_.substr(pos, open - pos);
      const bool strip_before = open + 2 < n && src_[open + 2] == '-';
      if (lstrip_next) {
        std::size_t k = 0;
        while (k < text.size() && is_ascii_space(text[k])) ++k;
        text.erase(0, k);
      }
      if (open < n && strip_before)
        while (!text.empty() && is_ascii_space(text.back())) text.pop_back();
      if (!text.empty()) items.push_back({Item::Text, pos, text, "", nullptr});
      lstrip_next = false;
      if (open >= n) break;
      const char kind = src_[open + 1];
      const std::size_t tag_pos = open;
      pos_ = open + 2 + (strip_before ? 1 : 0);
      if (kind == '#') {
        const auto close = src_.find("#}", pos_);
        if (close == std::string::npos) fail(tag_pos, "unterminated comment: expected '#}'");
        lstrip_next = close > pos_ && src_[close - 1] == '-';
        pos = close + 2;
        continue;
      }
      mode_ = kind == '{' ? "}}" : "%}";
      if (kind == '{') {
        if (peek().kind == Tok::End) fail(peek().pos, "expected an expression");
        ExprP e = parse_expr();
        items.push_back({Item::Output, tag_pos, "", "", e});
      } else {
        items.push_back(parse_stmt(tag_pos));
      }
      const Tok end = next();
      if (end.kind != Tok::End)
        fail(end.pos, "expected '" + std::string(mode_) + "', got " + describe(end));
      lstrip_next = end.strip;
      pos = pos_;
      has_tok_ = false;
    }
    return items;
  }

 private:
  const std::string& src_;
  const std::string& name_;
  std::size_t pos_ = 0;
  const char* mode_ = "}}";
  Tok tok_;
  bool has_tok_ = false;

  static std::string describe(const Tok& t) {
    switch (t.kind) {
      case Tok::End: return "end of tag";
      case Tok::Str: return "a string";
      case Tok::Int:
      case Tok::Float: return "a number";
      default: return "'" + t.text + "'";
    }
  }

  Tok lex() {
    const std::size_t n = src_.size();
    while (pos_ < n && is_ascii_space(src_[pos_])) ++pos_;
    Tok t;
    t.pos = pos_;
    if (pos_ >= n) fail(pos_, std::string("unexpected end of template: expected '") + mode_ + "'");
    const std::string m = mode_;
    if (src_.compare(pos_, m.size(), m) == 0) {
      pos_ += m.size();
      t.kind = Tok::End;
      return t;
    }
    if (src_[pos_] == '-' && src_.compare(pos_ + 1, m.size(), m) == 0) {
      pos_ += 1 + m.size();
      t.kind = Tok::End;
      t.strip = true;
      return t;
    }
    const char c = src_[pos_];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      std::size_t j = pos_;
      while (j < n && (std::isalnum(static_cast<unsigned char>(src_[j])) || src_[j] == '_')) ++j;
      t.kind = Tok::Name;
      t.text = src_.substr(pos_, j - pos_);
      pos_ = j;
      return t;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) {
      std::size_t j = pos_;
      std::string digits;
      bool is_float = false;
      auto eat_digits = [&] {
        while (j < n && (std::isdigit(static_cast<unsigned char>(src_[j])) || src_[j] == '_')) {
          if (src_[j] != '_') digits += src_[j];
          ++j;
        }
      };
      eat_digits();
      if (j + 1 < n && src_[j] == '.' && std::isdigit(static_cast<unsigned char>(src_[j + 1]))) {
        is_float = true;
        digits += src_[j++];
        eat_digits();
      }
      if (j < n && (src_[j] == 'e' || src_[j] == 'E')) {
        std::size_t k = j + 1;
        if (k < n && (src_[k] == '+' || src_[k] == '-')) ++k;
        if (k < n && std::isdigit(static_cast<unsigned char>(src_[k]))) {
          is_float = true;
          digits += 'e';
          digits += src_.substr(j + 1, k - j - 1);
          j = k;
          eat_digits();
        }
      }
      if (is_float) {
        t.kind = Tok::Float;
        t.fval = std::strtod(digits.c_str(), nullptr);
      } else {
        t.kind = Tok::Int;
        auto r = std::from_chars(digits.data(), digits.data() + digits.size(), t.ival);
        if (r.ec != std::errc()) fail(pos_, "integer literal out of range");
      }
      pos_ = j;
      return t;
    }
    if (c == '\'' || c == '"') return lex_string(c);
    static const char* ops[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~",
                                "<",  ">",  "(",  ")",  "[",  "]",  "{", "}", ".", ",", ":", "|", "="};
    for (const char* op : ops) {
      const std::size_t len = std::char_traits<char>::length(op);
      if (src_.compare(pos_, len, op) == 0) {
        t.kind = Tok::Op;
        t.text = op;
        pos_ += len;
        return t;
      }
    }
    fail(pos_, std::string("unexpected character '") + c + "'");
  }

  Tok lex_string(char q) {
    Tok t;
    t.kind = Tok::Str;
    t.pos = pos_;
    std::size_t j = pos_ + 1;
    const std::size_t n = src_.size();
    std::string out;
    auto hex = [&](std::size_t at, int count) -> std::uint32_t {
      std::uint32_t v = 0;
      for (int k = 0; k < count; ++k) {
        if (at + k >= n || !std::isxdigit(static_cast<unsigned char>(src_[at + k])))
          fail(at, "bad escape in string literal");
        const char h = src_[at + k];
        v = v * 16 + static_cast<std::uint32_t>(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
      }
      return v;
    };
    auto put_cp = [&](std::uint32_t cp) { model::utf8::append(out, cp); };
    while (true) {
      if (j >= n) fail(t.pos, "unterminated string literal");
      const char c = src_[j];
      if (c == q) break;
      if (c != '\\') {
        out += c;
        ++j;
        continue;
      }
      if (j + 1 >= n) fail(t.pos, "unterminated string literal");
      const char e = src_[j + 1];
      j += 2;
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case '0': out += '\0'; break;
        case '\n': break;  // line continuation
        case 'x': put_cp(hex(j, 2)); j += 2; break;
        case 'u': put_cp(hex(j, 4)); j += 4; break;
        case 'U': put_cp(hex(j, 8)); j += 8; break;
        default:  // Python keeps unknown escapes
          out += '\\';
          out += e;
      }
    }
    pos_ = j + 1;
    t.text = out;
    return t;
  }

  const Tok& peek() {
    if (!has_tok_) {
      tok_ = lex();
      has_tok_ = true;
    }
    return tok_;
  }
  Tok next() {
    peek();
    has_tok_ = false;
    return tok_;
  }
  bool is_op(const char* op) { return peek().kind == Tok::Op && peek().text == op; }
  bool is_name(const char* kw) { return peek().kind == Tok::Name && peek().text == kw; }
  Tok expect_op(const char* op) {
    if (!is_op(op)) fail(peek().pos, std::string("expected '") + op + "', got " + describe(peek()));
    return next();
  }
  std::string expect_name(const char* what) {
    if (peek().kind != Tok::Name) fail(peek().pos, std::string("expected ") + what + ", got " + describe(peek()));
    return next().text;
  }

  static ExprP mk(Expr::Kind k, std::size_t pos, std::string name, std::vector<ExprP> args) {
    auto e = std::make_shared<Expr>();
    e->kind = k;
    e->pos = pos;
    e->name = std::move(name);
    e->args = std::move(args);
    return e;
  }

  Item parse_stmt(std::size_t tag_pos) {
    const Tok kw = peek();
    const std::string word = expect_name("a statement keyword");
    Item it{Item::Stmt, tag_pos, word, "", nullptr};
    if (word == "set") {
      it.var = expect_name("a variable name");
      if (is_op(".") || is_op("[") || is_op(","))
        fail(peek().pos, "only '{% set name = expr %}' is supported");
      if (!is_op("=")) fail(peek().pos, "expected '=' ('{% set %}...{% endset %}' blocks are not supported)");
      next();
      it.expr = parse_expr();
    } else if (word == "if" || word == "elif") {
      it.expr = parse_expr();
    } else if (word == "for") {
      it.var = expect_name("a loop variable");
      if (is_op(",")) fail(peek().pos, "tuple unpacking in 'for' is not supported");
      if (!is_name("in")) fail(peek().pos, "expected 'in', got " + describe(peek()));
      next();
      it.expr = parse_or_cond(false);
      if (is_name("if") || is_name("recursive"))
        fail(peek().pos, "'for ... if' filters and recursive loops are not supported");
    } else if (word == "else" || word == "endif" || word == "endfor") {
    } else {
      fail(kw.pos, "unknown or unsupported statement '" + word +
                       "' (supported: set, if, elif, else, endif, for, endfor)");
    }
    return it;
  }

 public:
  ExprP parse_expr() { return parse_or_cond(true); }

 private:
  ExprP parse_or_cond(bool with_cond) {
    ExprP e = parse_or();
    if (!with_cond) return e;
    while (is_name("if")) {
      const std::size_t p = next().pos;
      ExprP cond = parse_or();
      ExprP other;
      if (is_name("else")) {
        next();
        other = parse_or_cond(true);
      }
      e = mk(Expr::Cond, p, "if", {e, cond, other});
    }
    return e;
  }
  ExprP parse_or() {
    ExprP e = parse_and();
    while (is_name("or")) {
      const std::size_t p = next().pos;
      e = mk(Expr::Binary, p, "or", {e, parse_and()});
    }
    return e;
  }
  ExprP parse_and() {
    ExprP e = parse_not();
    while (is_name("and")) {
      const std::size_t p = next().pos;
      e = mk(Expr::Binary, p, "and", {e, parse_not()});
    }
    return e;
  }
  ExprP parse_not() {
    if (is_name("not")) {
      const std::size_t p = next().pos;
      return mk(Expr::Unary, p, "not", {parse_not()});
    }
    return parse_compare();
  }
  ExprP parse_compare() {
    ExprP e = parse_math1();
    bool compared = false;
    while (true) {
      std::string op;
      const std::size_t p = peek().pos;
      if (peek().kind == Tok::Op &&
          (peek().text == "==" || peek().text == "!=" || peek().text == "<" || peek().text == "<=" ||
           peek().text == ">" || peek().text == ">=")) {
        op = next().text;
      } else if (is_name("in")) {
        next();
        op = "in";
      } else if (is_name("not")) {
        // "not in" (a bare "not" here is a syntax error)
        next();
        if (!is_name("in")) fail(peek().pos, "expected 'in' after 'not'");
        next();
        op = "not in";
      } else {
        break;
      }
      if (compared) fail(p, "chained comparisons are not supported");
      compared = true;
      e = mk(Expr::Binary, p, op, {e, parse_math1()});
    }
    return e;
  }
  ExprP parse_math1() {
    ExprP e = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Tok t = next();
      e = mk(Expr::Binary, t.pos, t.text, {e, parse_concat()});
    }
    return e;
  }
  ExprP parse_concat() {
    ExprP e = parse_math2();
    while (is_op("~")) {
      const Tok t = next();
      e = mk(Expr::Binary, t.pos, "~", {e, parse_math2()});
    }
    return e;
  }
  ExprP parse_math2() {
    ExprP e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Tok t = next();
      e = mk(Expr::Binary, t.pos, t.text, {e, parse_pow()});
    }
    return e;
  }
  ExprP parse_pow() {
    ExprP e = parse_unary(true);
    while (is_op("**")) {
      const Tok t = next();
      e = mk(Expr::Binary, t.pos, "**", {e, parse_unary(true)});
    }
    return e;
  }
  ExprP parse_unary(bool with_filter) {
    ExprP e;
    if (is_op("-") || is_op("+")) {
      const Tok t = next();
      e = mk(Expr::Unary, t.pos, t.text, {parse_unary(false)});
    } else {
      e = parse_primary();
    }
    e = parse_postfix(e);
    if (with_filter) e = parse_filters(e);
    return e;
  }
  ExprP parse_primary() {
    const Tok t = peek();
    auto lit = [&](json v) {
      auto e = std::make_shared<Expr>();
      e->kind = Expr::Lit;
      e->pos = t.pos;
      e->lit = std::move(v);
      return ExprP(e);
    };
    switch (t.kind) {
      case Tok::Name: {
        next();
        if (t.text == "true" || t.text == "True") return lit(true);
        if (t.text == "false" || t.text == "False") return lit(false);
        if (t.text == "none" || t.text == "None") return lit(nullptr);
        static const char* reserved[] = {"and", "or", "not", "in", "is", "if", "else"};
        for (const char* r : reserved)
          if (t.text == r) fail(t.pos, "expected an expression, got '" + t.text + "'");
        return mk(Expr::Var, t.pos, t.text, {});
      }
      case Tok::Str: {
        next();
        std::string s = t.text;
        while (peek().kind == Tok::Str) s += next().text;  // adjacent literals concatenate
        return lit(s);
      }
      case Tok::Int: next(); return lit(t.ival);
      case Tok::Float: next(); return lit(t.fval);
      case Tok::Op:
        if (t.text == "(") {
          next();
          ExprP e = parse_expr();
          if (is_op(",")) fail(peek().pos, "tuples are not supported");
          expect_op(")");
          return e;
        }
        if (t.text == "[") {
          next();
          std::vector<ExprP> items;
          while (!is_op("]")) {
            if (!items.empty()) {
              expect_op(",");
              if (is_op("]")) break;
            }
            items.push_back(parse_expr());
          }
          next();
          return mk(Expr::ListLit, t.pos, "", std::move(items));
        }
        if (t.text == "{") fail(t.pos, "dict literals are not supported");
        break;
      default:
        break;
    }
    fail(t.pos, "expected an expression, got " + describe(t));
  }
  std::vector<ExprP> parse_call_args() {
    expect_op("(");
    std::vector<ExprP> args;
    while (!is_op(")")) {
      if (!args.empty()) expect_op(",");
      if (peek().kind == Tok::Name) {
        // keyword arguments are not supported: detect `name=`
        const std::size_t save = pos_;
        const Tok name_tok = tok_;
        next();
        const bool kw = is_op("=");
        // restore
        pos_ = save;
        tok_ = name_tok;
        has_tok_ = true;
        if (kw) fail(name_tok.pos, "keyword arguments are not supported");
      }
      args.push_back(parse_expr());
    }
    next();
    return args;
  }
  ExprP parse_postfix(ExprP e) {
    while (true) {
      if (is_op(".")) {
        const std::size_t p = next().pos;
        if (peek().kind == Tok::Int) {
          const Tok t = next();
          auto idx = std::make_shared<Expr>();
          idx->kind = Expr::Lit;
          idx->pos = t.pos;
          idx->lit = t.ival;
          e = mk(Expr::Item, p, "", {e, idx});
          continue;
        }
        const std::string name = expect_name("an attribute name");
        if (is_op("(")) {
          std::vector<ExprP> args{e};
          for (auto& a : parse_call_args()) args.push_back(a);
          e = mk(Expr::Method, p, name, std::move(args));
        } else {
          e = mk(Expr::Attr, p, name, {e});
        }
      } else if (is_op("[")) {
        const std::size_t p = next().pos;
        ExprP a, b;
        bool slice = false;
        if (!is_op(":")) a = parse_expr();
        if (is_op(":")) {
          slice = true;
          next();
          if (!is_op("]") && !is_op(":")) b = parse_expr();
          if (is_op(":")) fail(peek().pos, "slice steps are not supported");
        }
        expect_op("]");
        if (!slice && !a) fail(p, "expected a subscript");
        e = slice ? mk(Expr::Slice, p, "", {e, a, b}) : mk(Expr::Item, p, "", {e, a});
      } else if (is_op("(")) {
        fail(peek().pos, "calling this expression is not supported (only methods like x.strip())");
      } else {
        return e;
      }
    }
  }
  ExprP parse_filters(ExprP e) {
    while (true) {
      if (is_op("|")) {
        next();
        const std::size_t p = peek().pos;
        const std::string name = expect_name("a filter name");
        std::vector<ExprP> args{e};
        if (is_op("("))
          for (auto& a : parse_call_args()) args.push_back(a);
        e = mk(Expr::Filter, p, name, std::move(args));
      } else if (is_name("is")) {
        next();
        bool neg = false;
        if (is_name("not")) {
          next();
          neg = true;
        }
        const std::size_t p = peek().pos;
        const std::string name = expect_name("a test name");
        auto t = std::make_shared<Expr>();
        t->kind = Expr::Test;
        t->pos = p;
        t->name = name;
        t->negated = neg;
        t->args = {e};
        if (is_op("("))
          for (auto& a : parse_call_args()) t->args.push_back(a);
        e = t;
      } else {
        return e;
      }
      e = parse_postfix(e);
    }
  }
};

// Builds the block tree from the scanned items.
class TreeBuilder {
 public:
  TreeBuilder(const std::vector<Item>& items, Parser& p) : items_(items), p_(p) {}
  std::vector<Node> build() {
    auto body = block({});
    if (i_ < items_.size())
      p_.fail(items_[i_].pos, "unexpected '{% " + items_[i_].text + " %}'");
    return body;
  }

 private:
  const std::vector<Item>& items_;
  Parser& p_;
  std::size_t i_ = 0;

  // Parses nodes until one of `stops` (left unconsumed) or the end.
  std::vector<Node> block(const std::vector<std::string>& stops) {
    std::vector<Node> out;
    while (i_ < items_.size()) {
      const Item& it = items_[i_];
      if (it.kind == Item::Text) {
        Node n{Node::Text, it.pos, it.text, nullptr, {}, {}, {}};
        out.push_back(std::move(n));
        ++i_;
        continue;
      }
      if (it.kind == Item::Output) {
        out.push_back(Node{Node::Output, it.pos, "", it.expr, {}, {}, {}});
        ++i_;
        continue;
      }
      if (std::find(stops.begin(), stops.end(), it.text) != stops.end()) return out;
      if (it.text == "set") {
        out.push_back(Node{Node::Set, it.pos, it.var, it.expr, {}, {}, {}});
        ++i_;
      } else if (it.text == "if") {
        Node n{Node::If, it.pos, "", nullptr, {}, {}, {}};
        ExprP cond = it.expr;
        ++i_;
        while (true) {
          auto body = block({"elif", "else", "endif"});
          n.branches.emplace_back(cond, std::move(body));
          if (i_ >= items_.size()) p_.fail(it.pos, "'{% if %}' is never closed: expected '{% endif %}'");
          const Item& stop = items_[i_++];
          if (stop.text == "elif") {
            cond = stop.expr;
            continue;
          }
          if (stop.text == "else") {
            n.else_body = block({"endif"});
            if (i_ >= items_.size()) p_.fail(it.pos, "'{% if %}' is never closed: expected '{% endif %}'");
            ++i_;
          }
          break;
        }
        out.push_back(std::move(n));
      } else if (it.text == "for") {
        Node n{Node::For, it.pos, it.var, it.expr, {}, {}, {}};
        ++i_;
        n.body = block({"else", "endfor"});
        if (i_ >= items_.size()) p_.fail(it.pos, "'{% for %}' is never closed: expected '{% endfor %}'");
        if (items_[i_++].text == "else") {
          n.else_body = block({"endfor"});
          if (i_ >= items_.size()) p_.fail(it.pos, "'{% for %}' is never closed: expected '{% endfor %}'");
          ++i_;
        }
        out.push_back(std::move(n));
      } else {
        p_.fail(it.pos, "unexpected '{% " + it.text + " %}'");
      }
    }
    return out;
  }
};

}  // namespace

// ---------------------------------------------------------------- evaluation

struct Template::Impl {
  std::string name;
  std::string src;  // newline-normalised source (positions refer to it)
  std::vector<Node> nodes;

  [[noreturn]] void fail(std::size_t pos, const std::string& msg) const {
    Parser(src, name).fail(pos, msg);
  }

  struct Ctx {
    const json& doc;
    std::vector<std::map<std::string, Value>> scopes;
  };

  Value lookup(const Ctx& c, const std::string& n) const {
    for (auto it = c.scopes.rbegin(); it != c.scopes.rend(); ++it) {
      auto f = it->find(n);
      if (f != it->end()) return f->second;
    }
    if (c.doc.is_object()) {
      auto f = c.doc.find(n);
      if (f != c.doc.end()) return Value(*f);
    }
    return Value::undef("'" + n + "' is undefined");
  }

  const json& need(const Value& v, const Expr& e) const {
    if (v.undefined) fail(e.pos, "undefined value: " + v.why);
    return v.j;
  }

  json eval_defined(Ctx& c, const ExprP& e) const { return need(eval(c, e), *e); }

  // Truthiness where Jinja's plain Undefined is allowed (false).
  bool truth(const Value& v, const Expr& e) const { return v.undefined && v.soft ? false : truthy(need(v, e)); }
  bool eval_truth(Ctx& c, const ExprP& e) const { return truth(eval(c, e), *e); }
  // str() where Jinja's plain Undefined is allowed ("").
  std::string eval_str(Ctx& c, const ExprP& e) const {
    const Value v = eval(c, e);
    if (v.undefined && v.soft) return "";
    return python_str(need(v, *e));
  }

  std::string need_str(const json& v, const Expr& e, const std::string& what) const {
    if (!v.is_string()) fail(e.pos, what + " needs a str, got " + type_name(v));
    return v.get<std::string>();
  }
  std::int64_t need_int(const json& v, const Expr& e, const std::string& what) const {
    if (!is_int(v)) fail(e.pos, what + " needs an int, got " + type_name(v));
    return as_int(v);
  }
  void arity(const Expr& e, std::size_t lo, std::size_t hi, const std::string& what) const {
    const std::size_t n = e.args.size() - 1;
    if (n < lo || n > hi)
      fail(e.pos, what + " takes " + (lo == hi ? std::to_string(lo) : std::to_string(lo) + " to " + std::to_string(hi)) +
                      " argument(s), got " + std::to_string(n));
  }

  // Python sequence index -> normalised index, or nullopt when out of range.
  static std::optional<std::size_t> norm_index(std::int64_t i, std::size_t n) {
    if (i < 0) i += static_cast<std::int64_t>(n);
    if (i < 0 || i >= static_cast<std::int64_t>(n)) return std::nullopt;
    return static_cast<std::size_t>(i);
  }

  Value get_item(const json& obj, const json& key, const Expr& e) const {
    if (obj.is_object()) {
      if (!key.is_string()) return Value::undef("'dict object' has no element " + python_repr(key));
      auto f = obj.find(key.get<std::string>());
      if (f == obj.end()) return Value::undef("'dict object' has no attribute " + python_repr(key));
      return Value(*f);
    }
    if (obj.is_array() || obj.is_string()) {
      if (!is_int(key)) fail(e.pos, std::string(type_name(obj)) + " indices must be integers, got " + type_name(key));
      if (obj.is_array()) {
        auto i = norm_index(as_int(key), obj.size());
        if (!i) return Value::undef("'list object' has no element " + python_str(key));
        return Value(obj[*i]);
      }
      const auto cps = code_points(obj.get<std::string>());
      auto i = norm_index(as_int(key), cps.size());
      if (!i) return Value::undef("'str object' has no element " + python_str(key));
      return Value(json(cps[*i]));
    }
    return Value::undef("'" + std::string(type_name(obj)) + " object' has no element " + python_repr(key));
  }

  Value eval(Ctx& c, const ExprP& ep) const {
    const Expr& e = *ep;
    switch (e.kind) {
      case Expr::Lit: return Value(e.lit);
      case Expr::ListLit: {
        json a = json::array();
        for (const auto& x : e.args) a.push_back(eval_defined(c, x));
        return Value(a);
      }
      case Expr::Var: return lookup(c, e.name);
      case Expr::Attr: {
        const Value base = eval(c, e.args[0]);
        const json& obj = need(base, *e.args[0]);
        if (obj.is_object()) {
          auto f = obj.find(e.name);
          if (f != obj.end()) return Value(*f);
        }
        return Value::undef("'" + std::string(type_name(obj)) + " object' has no attribute '" + e.name + "'");
      }
      case Expr::Item: {
        const Value base = eval(c, e.args[0]);
        const json& obj = need(base, *e.args[0]);
        return get_item(obj, eval_defined(c, e.args[1]), e);
      }
      case Expr::Slice: return slice(c, e);
      case Expr::Method: return method(c, e);
      case Expr::Filter: return filter(c, e);
      case Expr::Test: return test(c, e);
      case Expr::Unary: {
        if (e.name == "not") return Value(json(!eval_truth(c, e.args[0])));
        const json v = eval_defined(c, e.args[0]);
        if (!is_num(v)) fail(e.pos, "bad operand type for unary " + e.name + ": '" + type_name(v) + "'");
        if (e.name == "+") return Value(is_int(v) ? json(as_int(v)) : v);
        return Value(is_int(v) ? json(-as_int(v)) : json(-as_double(v)));
      }
      case Expr::Cond: {
        if (eval_truth(c, e.args[1])) return eval(c, e.args[0]);
        if (e.args[2]) return eval(c, e.args[2]);
        Value v = Value::undef("the inline 'if' expression evaluated to false and no 'else' was given");
        v.soft = true;
        return v;
      }
      case Expr::Binary: return binary(c, e);
    }
    fail(e.pos, "internal error: unknown expression");
  }

  Value slice(Ctx& c, const Expr& e) const {
    const json obj = eval_defined(c, e.args[0]);
    if (!obj.is_array() && !obj.is_string()) fail(e.pos, std::string("'") + type_name(obj) + "' object is not subscriptable");
    std::vector<std::string> cps;
    const std::size_t n = obj.is_array() ? obj.size() : (cps = code_points(obj.get<std::string>())).size();
    auto bound = [&](const ExprP& x, std::int64_t dflt) -> std::int64_t {
      if (!x) return dflt;
      const json v = eval_defined(c, x);
      if (v.is_null()) return dflt;
      std::int64_t i = need_int(v, *x, "a slice bound");
      const auto sn = static_cast<std::int64_t>(n);
      if (i < 0) i = std::max<std::int64_t>(0, i + sn);
      return std::min(i, sn);
    };
    const std::int64_t lo = bound(e.args[1], 0), hi = bound(e.args[2], static_cast<std::int64_t>(n));
    if (obj.is_array()) {
      json out = json::array();
      for (std::int64_t i = lo; i < hi; ++i) out.push_back(obj[static_cast<std::size_t>(i)]);
      return Value(out);
    }
    std::string out;
    for (std::int64_t i = lo; i < hi; ++i) out += cps[static_cast<std::size_t>(i)];
    return Value(json(out));
  }

  Value binary(Ctx& c, const Expr& e) const {
    const std::string& op = e.name;
    if (op == "and") {
      Value a = eval(c, e.args[0]);
      if (!truth(a, *e.args[0])) return a;
      return eval(c, e.args[1]);
    }
    if (op == "or") {
      Value a = eval(c, e.args[0]);
      if (truth(a, *e.args[0])) return a;
      return eval(c, e.args[1]);
    }
    if (op == "~") return Value(json(eval_str(c, e.args[0]) + eval_str(c, e.args[1])));
    const json a = eval_defined(c, e.args[0]);
    const json b = eval_defined(c, e.args[1]);
    auto type_err = [&]() -> Value {
      fail(e.pos, "unsupported operand types for " + op + ": '" + type_name(a) + "' and '" + type_name(b) + "'");
    };
    if (op == "~") return Value(json(python_str(a) + python_str(b)));
    if (op == "==") return Value(json(py_eq(a, b)));
    if (op == "!=") return Value(json(!py_eq(a, b)));
    if (op == "in" || op == "not in") {
      bool found = false;
      if (b.is_string()) {
        if (!a.is_string()) fail(e.pos, std::string("'in <string>' requires string as left operand, not ") + type_name(a));
        found = b.get_ref<const std::string&>().find(a.get_ref<const std::string&>()) != std::string::npos;
      } else if (b.is_array()) {
        for (const auto& x : b) found = found || py_eq(a, x);
      } else if (b.is_object()) {
        found = a.is_string() && b.contains(a.get<std::string>());
      } else {
        fail(e.pos, std::string("argument of type '") + type_name(b) + "' is not iterable");
      }
      return Value(json(op == "in" ? found : !found));
    }
    if (op == "<" || op == "<=" || op == ">" || op == ">=") {
      auto r = py_cmp(a, b);
      if (!r) fail(e.pos, "'" + op + "' not supported between instances of '" + type_name(a) + "' and '" + type_name(b) + "'");
      const int v = *r;
      return Value(json(op == "<" ? v < 0 : op == "<=" ? v <= 0 : op == ">" ? v > 0 : v >= 0));
    }
    if (op == "+") {
      if (a.is_string() && b.is_string()) return Value(json(a.get<std::string>() + b.get<std::string>()));
      if (a.is_array() && b.is_array()) {
        json out = a;
        for (const auto& x : b) out.push_back(x);
        return Value(out);
      }
    }
    if (op == "*") {
      const json* seq = a.is_string() || a.is_array() ? &a : (b.is_string() || b.is_array() ? &b : nullptr);
      const json* cnt = seq == &a ? &b : &a;
      if (seq && is_int(*cnt)) {
        const std::int64_t k = as_int(*cnt);
        if (seq->is_string()) {
          std::string out;
          for (std::int64_t i = 0; i < k; ++i) out += seq->get<std::string>();
          return Value(json(out));
        }
        json out = json::array();
        for (std::int64_t i = 0; i < k; ++i)
          for (const auto& x : *seq) out.push_back(x);
        return Value(out);
      }
    }
    if (!is_num(a) || !is_num(b)) return type_err();
    const bool ints = is_int(a) && is_int(b);
    if (op == "/") {
      if (as_double(b) == 0) fail(e.pos, "division by zero");
      return Value(json(as_double(a) / as_double(b)));
    }
    if (ints) {
      const std::int64_t x = as_int(a), y = as_int(b);
      std::int64_t r = 0;
      auto overflow = [&]() -> Value { fail(e.pos, "integer overflow (template ints are 64-bit)"); };
      if (op == "+") return __builtin_add_overflow(x, y, &r) ? overflow() : Value(json(r));
      if (op == "-") return __builtin_sub_overflow(x, y, &r) ? overflow() : Value(json(r));
      if (op == "*") return __builtin_mul_overflow(x, y, &r) ? overflow() : Value(json(r));
      if (op == "//" || op == "%") {
        if (y == 0) fail(e.pos, "integer division or modulo by zero");
        std::int64_t q = x / y, r = x % y;
        if (r != 0 && ((r < 0) != (y < 0))) {
          --q;
          r += y;
        }
        return Value(json(op == "//" ? q : r));
      }
      if (op == "**") {
        if (y < 0) return Value(json(std::pow(static_cast<double>(x), static_cast<double>(y))));
        std::int64_t out = 1;
        for (std::int64_t i = 0; i < y && out != 0; ++i)
          if (__builtin_mul_overflow(out, x, &out)) return overflow();
        return Value(json(out));
      }
    }
    const double x = as_double(a), y = as_double(b);
    if (op == "+") return Value(json(x + y));
    if (op == "-") return Value(json(x - y));
    if (op == "*") return Value(json(x * y));
    if (op == "**") return Value(json(std::pow(x, y)));
    if (op == "//" || op == "%") {
      if (y == 0) fail(e.pos, "float division or modulo by zero");
      const double q = std::floor(x / y);
      return Value(json(op == "//" ? q : x - q * y));
    }
    return type_err();
  }

  Value method(Ctx& c, const Expr& e) const {
    const json obj = eval_defined(c, e.args[0]);
    std::vector<json> a;
    for (std::size_t i = 1; i < e.args.size(); ++i) a.push_back(eval_defined(c, e.args[i]));
    const std::string& m = e.name;
    const std::string what = std::string(type_name(obj)) + "." + m + "()";
    if (obj.is_string()) {
      const std::string s = obj.get<std::string>();
      if (m == "strip" || m == "lstrip" || m == "rstrip") {
        arity(e, 0, 1, what);
        if (a.empty() || a[0].is_null()) {
          if (m == "strip") return Value(json(python_strip(s)));
          return Value(json(m == "lstrip" ? py_lstrip(s) : py_rstrip(s)));
        }
        const std::string chars = need_str(a[0], e, what);
        return Value(json(strip_chars(s, chars, m != "rstrip", m != "lstrip")));
      }
      if (m == "split") {
        arity(e, 0, 2, what);
        std::optional<std::string> sep;
        if (!a.empty() && !a[0].is_null()) {
          sep = need_str(a[0], e, what);
          if (sep->empty()) fail(e.pos, "str.split(): empty separator");
        }
        const std::int64_t maxsplit = a.size() > 1 ? need_int(a[1], e, what) : -1;
        return Value(py_split(s, sep, maxsplit));
      }
      if (m == "replace") {
        arity(e, 2, 3, what);
        const std::int64_t count = a.size() > 2 ? need_int(a[2], e, what) : -1;
        return Value(json(py_replace(s, need_str(a[0], e, what), need_str(a[1], e, what), count)));
      }
      if (m == "upper") {
        arity(e, 0, 0, what);
        return Value(json(py_upper(s)));
      }
      if (m == "lower") {
        arity(e, 0, 0, what);
        return Value(json(python_lower(s)));
      }
      if (m == "startswith" || m == "endswith") {
        arity(e, 1, 1, what);
        std::vector<std::string> cands;
        if (a[0].is_array()) {
          for (const auto& x : a[0]) cands.push_back(need_str(x, e, what));
        } else {
          cands.push_back(need_str(a[0], e, what));
        }
        for (const auto& p : cands) {
          if (p.size() > s.size()) continue;
          if (m == "startswith" ? s.compare(0, p.size(), p) == 0 : s.compare(s.size() - p.size(), p.size(), p) == 0)
            return Value(json(true));
        }
        return Value(json(false));
      }
    }
    if (obj.is_array()) {
      if (m == "index" || m == "count") {
        arity(e, 1, 1, what);
        std::int64_t n = 0;
        for (std::size_t i = 0; i < obj.size(); ++i) {
          if (!py_eq(obj[i], a[0])) continue;
          if (m == "index") return Value(json(static_cast<std::int64_t>(i)));
          ++n;
        }
        if (m == "index") fail(e.pos, python_repr(a[0]) + " is not in list");
        return Value(json(n));
      }
    }
    if (obj.is_object()) {
      if (m == "get") {
        arity(e, 1, 2, what);
        if (a[0].is_string()) {
          auto f = obj.find(a[0].get<std::string>());
          if (f != obj.end()) return Value(*f);
        }
        return Value(a.size() > 1 ? a[1] : json(nullptr));
      }
    }
    fail(e.pos, "unsupported method '" + m + "' on a value of type '" + type_name(obj) + "'");
  }

  Value filter(Ctx& c, const Expr& e) const {
    const std::string& f = e.name;
    const std::string what = "filter '" + f + "'";
    if (f == "default" || f == "d") {
      arity(e, 0, 2, what);
      Value v = eval(c, e.args[0]);
      bool use_default = v.undefined;
      if (!use_default && e.args.size() > 2 && truthy(eval_defined(c, e.args[2]))) use_default = !truthy(v.j);
      if (!use_default) return v;
      return e.args.size() > 1 ? Value(eval_defined(c, e.args[1])) : Value(json(""));
    }
    // Jinja's plain Undefined (`a if c` without else) reads as "" in the
    // string/sequence filters (length 0, join "", list []...); int, float and
    // regex_replace reject it as Jinja does.
    const Value base = eval(c, e.args[0]);
    const bool soft_ok = f != "regex_replace" && f != "int" && f != "float";
    const json v = base.undefined && base.soft && soft_ok ? json("") : need(base, *e.args[0]);
    std::vector<json> a;
    for (std::size_t i = 1; i < e.args.size(); ++i) a.push_back(eval_defined(c, e.args[i]));
    if (f == "trim") {
      arity(e, 0, 1, what);
      const std::string s = python_str(v);
      if (a.empty() || a[0].is_null()) return Value(json(python_strip(s)));
      return Value(json(strip_chars(s, need_str(a[0], e, what), true, true)));
    }
    if (f == "length" || f == "count") {
      arity(e, 0, 0, what);
      if (v.is_string()) return Value(json(static_cast<std::int64_t>(python_len(v.get<std::string>()))));
      if (v.is_array() || v.is_object()) return Value(json(static_cast<std::int64_t>(v.size())));
      fail(e.pos, std::string("object of type '") + type_name(v) + "' has no len()");
    }
    if (f == "join") {
      arity(e, 0, 1, what);
      const std::string sep = a.empty() ? "" : python_str(a[0]);
      std::string out;
      const json items = v.is_string() ? json(code_points(v.get<std::string>())) : v;
      if (!items.is_array() && !items.is_object()) fail(e.pos, std::string("'") + type_name(v) + "' object is not iterable");
      bool first = true;
      for (auto it = items.begin(); it != items.end(); ++it) {
        if (!first) out += sep;
        first = false;
        out += items.is_object() ? it.key() : python_str(*it);
      }
      return Value(json(out));
    }
    if (f == "int") {
      arity(e, 0, 1, what);
      const json dflt = a.empty() ? json(0) : a[0];
      if (is_int(v)) return Value(json(as_int(v)));
      if (v.is_number_float()) return Value(json(static_cast<std::int64_t>(std::trunc(v.get<double>()))));
      if (v.is_string()) {
        if (auto i = parse_py_int(v.get<std::string>())) return Value(json(*i));
        if (auto d = parse_py_float(v.get<std::string>()); d && std::isfinite(*d))
          return Value(json(static_cast<std::int64_t>(std::trunc(*d))));
      }
      return Value(dflt);
    }
    if (f == "float") {
      arity(e, 0, 1, what);
      const json dflt = a.empty() ? json(0.0) : a[0];
      if (is_num(v)) return Value(json(as_double(v)));
      if (v.is_string())
        if (auto d = parse_py_float(v.get<std::string>())) return Value(json(*d));
      return Value(dflt);
    }
    if (f == "string") {
      arity(e, 0, 0, what);
      return Value(json(python_str(v)));
    }
    if (f == "list") {
      arity(e, 0, 0, what);
      if (v.is_string()) return Value(json(code_points(v.get<std::string>())));
      if (v.is_array()) return Value(v);
      if (v.is_object()) {
        json out = json::array();
        for (auto it = v.begin(); it != v.end(); ++it) out.push_back(it.key());
        return Value(out);
      }
      fail(e.pos, std::string("'") + type_name(v) + "' object is not iterable");
    }
    if (f == "first" || f == "last") {
      arity(e, 0, 0, what);
      json seq = v.is_string() ? json(code_points(v.get<std::string>())) : v;
      if (!seq.is_array()) fail(e.pos, what + " needs a list or str, got " + type_name(v));
      if (seq.empty()) return Value::undef("No " + f + " item, sequence was empty.");
      return Value(f == "first" ? seq.front() : seq.back());
    }
    if (f == "lower") {
      arity(e, 0, 0, what);
      return Value(json(python_lower(python_str(v))));
    }
    if (f == "upper") {
      arity(e, 0, 0, what);
      return Value(json(py_upper(python_str(v))));
    }
    if (f == "replace") {
      arity(e, 2, 3, what);
      const std::int64_t count = a.size() > 2 && !a[2].is_null() ? need_int(a[2], e, what) : -1;
      return Value(json(py_replace(python_str(v), python_str(a[0]), python_str(a[1]), count)));
    }
    if (f == "regex_replace") {
      arity(e, 2, 3, what);
      if (a.size() > 2 && need_int(a[2], e, what) != 0) fail(e.pos, "regex_replace: a non-zero count is not supported");
      try {
        const PyRegex re(need_str(a[0], e, what));
        return Value(json(re.sub(need_str(a[1], e, what), need_str(v, e, what))));
      } catch (const TemplateError&) {
        throw;
      } catch (const std::exception& ex) {
        fail(e.pos, std::string("regex_replace: ") + ex.what());
      }
    }
    fail(e.pos, "unknown filter '" + f +
                    "' (supported: trim, length, count, join, int, float, string, list, first, last, lower, "
                    "upper, replace, regex_replace, default)");
  }

  Value test(Ctx& c, const Expr& e) const {
    const Value v = eval(c, e.args[0]);
    const std::string& t = e.name;
    bool r;
    static const char* known[] = {"defined", "undefined", "none",     "string",   "number",
                                  "integer", "float",     "boolean",  "true",     "false",
                                  "sequence", "iterable", "mapping",  "even",     "odd"};
    if (std::find_if(std::begin(known), std::end(known), [&](const char* k) { return t == k; }) != std::end(known))
      arity(e, 0, 0, "test '" + t + "'");
    if (t == "defined" || t == "undefined") {
      r = (t == "defined") != v.undefined;
    } else {
      const json& j = need(v, *e.args[0]);
      if (t == "none") r = j.is_null();
      else if (t == "string") r = j.is_string();
      else if (t == "number") r = j.is_number();
      else if (t == "integer") r = j.is_number_integer();
      else if (t == "float") r = j.is_number_float();
      else if (t == "boolean") r = j.is_boolean();
      else if (t == "true") r = j.is_boolean() && j.get<bool>();
      else if (t == "false") r = j.is_boolean() && !j.get<bool>();
      else if (t == "sequence" || t == "iterable") r = j.is_string() || j.is_array() || j.is_object();
      else if (t == "mapping") r = j.is_object();
      else if (t == "even" || t == "odd") {
        const std::int64_t i = need_int(j, e, "test '" + t + "'");
        r = ((i % 2) == 0) == (t == "even");
      } else {
        fail(e.pos, "unknown test '" + t +
                        "' (supported: defined, undefined, none, string, number, integer, float, boolean, true, "
                        "false, sequence, iterable, mapping, even, odd)");
      }
    }
    return Value(json(e.negated ? !r : r));
  }

  void exec(Ctx& c, const std::vector<Node>& nodes, std::string& out) const {
    for (const Node& n : nodes) {
      switch (n.kind) {
        case Node::Text: out += n.text; break;
        case Node::Output: out += eval_str(c, n.expr); break;
        case Node::Set: c.scopes.back()[n.text] = eval(c, n.expr); break;
        case Node::If: {
          bool done = false;
          for (const auto& [cond, body] : n.branches) {
            if (eval_truth(c, cond)) {
              exec(c, body, out);
              done = true;
              break;
            }
          }
          if (!done) exec(c, n.else_body, out);
          break;
        }
        case Node::For: {
          const Value sv = eval(c, n.expr);
          const json seq = sv.undefined && sv.soft ? json::array() : need(sv, *n.expr);
          json items;
          if (seq.is_array()) {
            items = seq;
          } else if (seq.is_string()) {
            items = json(code_points(seq.get<std::string>()));
          } else if (seq.is_object()) {
            items = json::array();
            for (auto it = seq.begin(); it != seq.end(); ++it) items.push_back(it.key());
          } else {
            fail(n.expr->pos, std::string("'") + type_name(seq) + "' object is not iterable");
          }
          if (items.empty()) {
            exec(c, n.else_body, out);
            break;
          }
          const auto len = static_cast<std::int64_t>(items.size());
          for (std::int64_t i = 0; i < len; ++i) {
            c.scopes.emplace_back();
            c.scopes.back()[n.text] = Value(items[static_cast<std::size_t>(i)]);
            c.scopes.back()["loop"] = Value(json{{"index0", i},        {"index", i + 1},
                                                 {"first", i == 0},    {"last", i == len - 1},
                                                 {"length", len},      {"revindex", len - i},
                                                 {"revindex0", len - i - 1}});
            exec(c, n.body, out);
            c.scopes.pop_back();
          }
          break;
        }
      }
    }
  }
};

Template::Template(std::string_view source, std::string name) : impl_(std::make_unique<Impl>()) {
  impl_->name = std::move(name);
  // Jinja normalises \r\n and \r to \n (newline_sequence) in template data.
  std::string src;
  src.reserve(source.size());
  for (std::size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      src += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      src += source[i];
    }
  }
  impl_->src = std::move(src);
  Parser p(impl_->src, impl_->name);
  const auto items = p.scan();
  impl_->nodes = TreeBuilder(items, p).build();
}

Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

const std::string& Template::name() const { return impl_->name; }

bool Template::is_single_expression() const {
  return impl_->nodes.size() == 1 && impl_->nodes[0].kind == Node::Output;
}

std::string Template::render(const json& doc) const {
  if (!doc.is_object()) throw TemplateError(impl_->name, 1, 1, "the document must be a JSON object");
  Impl::Ctx c{doc, {}};
  c.scopes.emplace_back();
  std::string out;
  impl_->exec(c, impl_->nodes, out);
  return out;
}

json Template::render_to_value(const json& doc) const {
  if (!is_single_expression()) return json(render(doc));
  if (!doc.is_object()) throw TemplateError(impl_->name, 1, 1, "the document must be a JSON object");
  Impl::Ctx c{doc, {}};
  c.scopes.emplace_back();
  return impl_->eval_defined(c, impl_->nodes[0].expr);
}

std::string render_template(std::string_view source, const json& doc, const std::string& name) {
  return Template(source, name).render(doc);
}

}  // namespace qsweep::scoring
