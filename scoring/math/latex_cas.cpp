// A recursive-descent parser for the LaTeX subset of sympy's parse_latex
// (sympy/parsing/latex/LaTeX.g4 + _parse_latex_antlr.py), building GiNaC
// expressions, and the zero test of is_equiv. Grammar, by precedence:
//   expr    := mp (('+'|'-') mp)*
//   mp      := unary (('*'|'/'|\cdot|\times|\div|':') unary)*
//   unary   := ('+'|'-') unary | postfix+          (juxtaposition multiplies)
//   postfix := exp '!'*
//   exp     := comp ('^' (atom | '{' expr '}'))*
//   comp    := group | '|' expr '|' | func | atom
//   group   := '(' expr ')' | '[' expr ']' | '{' expr '}' | '\{' expr '\}'
//   func    := \frac|\dfrac|\tfrac A B | \binom G G | \sqrt('[' expr ']')? G
//            | \sin.. \log \ln \exp ('^' power)? (( expr ) | mp-argument)
//            | (LETTER | \name) '(' expr ')'   (an undefined function: sympy's f(x))
//   atom    := NUMBER | LETTER ('_' sub)? | \name ('_' sub)? (\pi: pi)
// where A is a '{' expr '}' group G or one digit / letter. \left, \right
// and sympy's skipped spacing commands (\, \: \; \! \quad \qquad) are
// ignored. Anything else (',', '=', '<', '>', \le, \ge, \neq, \infty, '&',
// unbalanced brackets, trailing input) makes the parse fail.
#include "scoring/math/latex_cas.h"

#include <cctype>
#include <cstdlib>
#include <initializer_list>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace qsweep::scoring::math {

namespace {

using GiNaC::ex;

struct ParseError {};

enum class Tok { num, letter, cmd, punct, end };

struct Token {
  Tok kind;
  std::string text;  // num: digits without commas; letter: the letter; cmd: the name without '\'; punct: the char
};

/// sympy's lexer on the subset: NUMBER is DIGIT+ (',' DIGIT{3})* or
/// DIGIT* (',' DIGIT{3})* '.' DIGIT+ (longest match), commands are '\'
/// followed by letters or by one other character.
std::vector<Token> lex(std::string_view s) {
  std::vector<Token> out;
  std::size_t i = 0;
  auto digit = [&](std::size_t k) { return k < s.size() && std::isdigit(static_cast<unsigned char>(s[k])); };
  while (i < s.size()) {
    const char c = s[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      ++i;
      continue;
    }
    if (digit(i) || (c == '.' && digit(i + 1))) {
      std::string num;
      while (digit(i)) num += s[i++];
      while (i + 3 < s.size() + 0 && s[i] == ',' && digit(i + 1) && digit(i + 2) && digit(i + 3)) {
        num.append(s.substr(i + 1, 3));
        i += 4;
      }
      if (i < s.size() && s[i] == '.' && digit(i + 1)) {
        num += s[i++];
        while (digit(i)) num += s[i++];
      }
      out.push_back({Tok::num, num});
      continue;
    }
    if (std::isalpha(static_cast<unsigned char>(c))) {
      out.push_back({Tok::letter, std::string(1, c)});
      ++i;
      continue;
    }
    if (c == '\\') {
      std::size_t j = i + 1;
      while (j < s.size() && std::isalpha(static_cast<unsigned char>(s[j]))) ++j;
      if (j == i + 1) {
        if (j >= s.size()) throw ParseError{};
        ++j;  // a one-character command: \, \{ \% ...
      }
      std::string name(s.substr(i + 1, j - i - 1));
      i = j;
      if (name == "," || name == ":" || name == ";" || name == "!" || name == "quad" || name == "qquad" ||
          name == "left" || name == "right" || name == "thinspace" || name == "medspace" ||
          name == "thickspace" || name == "negthinspace")
        continue;
      out.push_back({Tok::cmd, name});
      continue;
    }
    if (static_cast<unsigned char>(c) >= 0x80) throw ParseError{};  // no non-ASCII token in sympy's grammar
    out.push_back({Tok::punct, std::string(1, c)});
    ++i;
  }
  out.push_back({Tok::end, ""});
  return out;
}

/// Exact value of a NUMBER token ("12.50" -> 25/2).
ex number(const std::string& text) {
  const std::size_t dot = text.find('.');
  std::string digits = text;
  std::size_t scale = 0;
  if (dot != std::string::npos) {
    scale = text.size() - dot - 1;
    digits = text.substr(0, dot) + text.substr(dot + 1);
  }
  std::size_t nz = digits.find_first_not_of('0');
  digits = nz == std::string::npos ? "0" : digits.substr(nz);
  if (digits.size() > 2000) throw ParseError{};
  GiNaC::numeric v(digits.c_str());
  if (scale) v = v / GiNaC::pow(GiNaC::numeric(10), GiNaC::numeric(static_cast<long>(scale)));
  return v;
}

bool is_function_name(const std::string& n) {
  static const char* names[] = {"sin",    "cos",    "tan",    "csc",    "sec",    "cot",   "arcsin",
                                "arccos", "arctan", "sinh",   "cosh",   "tanh",   "log",   "ln",
                                "exp",    "arcsinh", "arccosh", "arctanh"};
  for (const char* f : names)
    if (n == f) return true;
  return false;
}

bool is_failing_command(const std::string& n) {
  // Relations (sympy builds a Relational, which cannot be subtracted) and
  // infinity (oo - oo is nan), plus alignment / text commands with no value.
  static const char* names[] = {"le",  "ge",  "leq", "geq", "lt", "gt", "neq", "ne", "infty",
                                "in",  "to",  "implies", "Rightarrow", "%", "$", "&", "\\"};
  for (const char* f : names)
    if (n == f) return true;
  return false;
}

bool has_symbol(const ex& e) {
  if (GiNaC::is_a<GiNaC::symbol>(e)) return true;
  for (std::size_t i = 0; i < e.nops(); ++i)
    if (has_symbol(e.op(i))) return true;
  return false;
}

class Parser {
 public:
  Parser(std::vector<Token> toks, SymbolTable& syms) : t_(std::move(toks)), syms_(syms) {}

  ex parse_all() {
    ex e = expr();
    if (peek().kind != Tok::end) throw ParseError{};
    return e;
  }

 private:
  std::vector<Token> t_;
  std::size_t p_ = 0;
  SymbolTable& syms_;

  const Token& peek(std::size_t k = 0) const { return t_[std::min(p_ + k, t_.size() - 1)]; }
  bool is_punct(const char* c, std::size_t k = 0) const { return peek(k).kind == Tok::punct && peek(k).text == c; }
  bool is_cmd(const char* c, std::size_t k = 0) const { return peek(k).kind == Tok::cmd && peek(k).text == c; }
  void expect_punct(const char* c) {
    if (!is_punct(c)) throw ParseError{};
    ++p_;
  }

  ex symbol(const std::string& name) {
    auto it = syms_.find(name);
    if (it == syms_.end()) it = syms_.emplace(name, GiNaC::symbol(name)).first;
    return it->second;
  }

  ex expr() {
    ex e = mp();
    while (is_punct("+") || is_punct("-")) {
      const bool minus = peek().text == "-";
      ++p_;
      const ex r = mp();
      e = minus ? e - r : e + r;
    }
    return e;
  }

  bool at_mul_op() const { return is_punct("*") || is_punct("/") || is_punct(":") || is_cmd("cdot") || is_cmd("times") || is_cmd("div"); }

  ex mp() {
    ex e = unary();
    while (at_mul_op()) {
      const bool div = is_punct("/") || is_punct(":") || is_cmd("div");
      ++p_;
      const ex r = unary();
      if (div) {
        if (r.is_zero()) throw ParseError{};  // sympy: zoo; never equal to a number (docs/math.md)
        e = e / r;
      } else e = e * r;
    }
    return e;
  }

  /// Can a postfix item start here (juxtaposition continues)?
  bool starts_postfix() const {
    const Token& k = peek();
    if (k.kind == Tok::num || k.kind == Tok::letter) return true;
    if (k.kind == Tok::punct) return k.text == "(" || k.text == "[" || k.text == "{" || k.text == "|";
    if (k.kind == Tok::cmd) {
      if (k.text == "cdot" || k.text == "times" || k.text == "div" || k.text == "}" || k.text == "right") return false;
      return true;
    }
    return false;
  }

  ex unary() {
    if (is_punct("-")) {
      ++p_;
      return -unary();
    }
    if (is_punct("+")) {
      ++p_;
      return unary();
    }
    ex e = postfix();
    // Inside |...| a '|' closes the group, it does not open one.
    while (starts_postfix() && !(is_punct("|") && abs_depth_ > 0)) e = e * postfix();
    return e;
  }

  ex postfix() {
    ex e = power();
    while (is_punct("!")) {
      ++p_;
      if (GiNaC::is_a<GiNaC::numeric>(e)) {
        const auto& n = GiNaC::ex_to<GiNaC::numeric>(e);
        // sympy: factorial of a negative integer is zoo, of a non-integer a
        // gamma value; neither is a MATH answer. Huge ones stand in for the
        // reference's 5 s timeout.
        if (!n.is_nonneg_integer() || n > 5000) throw ParseError{};
        e = GiNaC::factorial(e);
      } else {
        e = opaque("factorial", {e});  // sympy keeps factorial(n) unevaluated
      }
    }
    return e;
  }

  ex power() {
    ex e = comp();
    while (is_punct("^")) {
      ++p_;
      ex x;
      if (is_punct("{")) {
        ++p_;
        x = expr();
        expect_punct("}");
      } else x = atom();
      // Stand-ins for the reference's 5 s timeout: huge exponents, and
      // powers of symbolic bases that expand() would blow up.
      if (GiNaC::is_a<GiNaC::numeric>(x) && GiNaC::abs(GiNaC::ex_to<GiNaC::numeric>(x)) > 100000)
        throw ParseError{};
      if (has_symbol(e) && GiNaC::is_a<GiNaC::numeric>(x) && GiNaC::abs(GiNaC::ex_to<GiNaC::numeric>(x)) > 100)
        throw ParseError{};
      if (e.is_zero() && GiNaC::is_a<GiNaC::numeric>(x) && !GiNaC::ex_to<GiNaC::numeric>(x).is_positive())
        throw ParseError{};
      e = GiNaC::pow(e, x);
    }
    return e;
  }

  /// A \frac / \binom / \sqrt argument: '{' expr '}', or one digit or letter.
  ex argument() {
    if (is_punct("{")) {
      ++p_;
      ex e = expr();
      expect_punct("}");
      return e;
    }
    const Token& k = peek();
    if (k.kind == Tok::letter) {
      ++p_;
      return symbol(k.text);
    }
    if (k.kind == Tok::num && k.text.size() == 1) {
      ++p_;
      return number(k.text);
    }
    throw ParseError{};
  }

  int abs_depth_ = 0;

  ex braced() {
    if (!is_punct("{")) throw ParseError{};
    ++p_;
    ex e = expr();
    expect_punct("}");
    return e;
  }

  /// An unevaluated application (sympy's factorial(n), binomial(n, k), f(x)):
  /// one symbol per function name and printed arguments, so that equal
  /// applications compare equal and nothing else does.
  ex opaque(const std::string& fn, std::initializer_list<ex> args) {
    std::ostringstream name;
    name << fn << "(";
    bool first = true;
    for (const ex& a : args) {
      name << (first ? "" : ",") << a;
      first = false;
    }
    name << ")";
    return symbol(name.str());
  }

  ex group(const char* close, bool close_is_cmd) {
    ex e = expr();
    if (close_is_cmd ? !is_cmd(close) : !is_punct(close)) throw ParseError{};
    ++p_;
    return e;
  }

  ex comp() {
    const Token k = peek();
    if (k.kind == Tok::punct) {
      if (k.text == "(") return ++p_, group(")", false);
      if (k.text == "[") return ++p_, group("]", false);
      if (k.text == "{") return ++p_, group("}", false);
      if (k.text == "|") {
        ++p_;
        ++abs_depth_;
        ex e = expr();
        --abs_depth_;
        expect_punct("|");
        return GiNaC::abs(e);
      }
      throw ParseError{};
    }
    if (k.kind == Tok::cmd) {
      if (k.text == "{") return ++p_, group("}", true);
      if (k.text == "frac" || k.text == "dfrac" || k.text == "tfrac") {
        ++p_;
        const ex num = argument();
        const ex den = argument();
        if (den.is_zero()) throw ParseError{};
        return num / den;
      }
      if (k.text == "binom" || k.text == "dbinom" || k.text == "tbinom") {
        ++p_;
        const ex n = braced();  // sympy's binom takes {n}{k} only
        const ex r = braced();
        if (GiNaC::is_a<GiNaC::numeric>(n) && GiNaC::is_a<GiNaC::numeric>(r)) {
          const auto& nn = GiNaC::ex_to<GiNaC::numeric>(n);
          const auto& rr = GiNaC::ex_to<GiNaC::numeric>(r);
          if (!nn.is_integer() || !rr.is_integer() || GiNaC::abs(nn) > 100000) throw ParseError{};
          return GiNaC::binomial(nn, rr);
        }
        return opaque("binomial", {n, r});  // sympy keeps binomial(n, k) unevaluated
      }
      if (k.text == "sqrt") {
        ++p_;
        std::optional<ex> root;
        if (is_punct("[")) {
          ++p_;
          root = expr();
          expect_punct("]");
        }
        const ex x = braced();  // sympy's \sqrt takes a {group} only
        if (root) {
          if (root->is_zero()) throw ParseError{};
          return GiNaC::pow(x, 1 / *root);
        }
        return GiNaC::sqrt(x);
      }
      if (is_function_name(k.text)) return function();
    }
    const bool named_cmd = k.kind == Tok::cmd && std::isalpha(static_cast<unsigned char>(k.text[0])) &&
                           !is_failing_command(k.text);
    if ((k.kind == Tok::letter || named_cmd) && is_punct("(", 1)) {
      // sympy: (LETTER | SYMBOL) '(' args ')' is an undefined function f(x)
      // (\pi(2) too), kept as an opaque symbol named by the function and
      // its argument.
      ++p_;
      ++p_;
      const ex arg = expr();
      expect_punct(")");
      return opaque((named_cmd ? "\\" : "") + k.text, {arg});
    }
    return atom();
  }

  ex function() {
    const std::string name = peek().text;
    ++p_;
    std::optional<ex> sup;
    if (is_punct("^")) {
      ++p_;
      if (is_punct("{")) {
        ++p_;
        sup = expr();
        expect_punct("}");
      } else sup = atom();
    }
    ex arg;
    if (is_punct("(")) {
      ++p_;
      arg = expr();
      expect_punct(")");
    } else arg = mp();
    ex f;
    if (name == "sin") f = GiNaC::sin(arg);
    else if (name == "cos") f = GiNaC::cos(arg);
    else if (name == "tan") f = GiNaC::tan(arg);
    else if (name == "csc") f = 1 / GiNaC::sin(arg);
    else if (name == "sec") f = 1 / GiNaC::cos(arg);
    else if (name == "cot") f = GiNaC::cos(arg) / GiNaC::sin(arg);
    else if (name == "arcsin") f = GiNaC::asin(arg);
    else if (name == "arccos") f = GiNaC::acos(arg);
    else if (name == "arctan") f = GiNaC::atan(arg);
    else if (name == "sinh") f = GiNaC::sinh(arg);
    else if (name == "cosh") f = GiNaC::cosh(arg);
    else if (name == "tanh") f = GiNaC::tanh(arg);
    else if (name == "arcsinh") f = GiNaC::asinh(arg);
    else if (name == "arccosh") f = GiNaC::acosh(arg);
    else if (name == "arctanh") f = GiNaC::atanh(arg);
    else if (name == "exp") f = GiNaC::exp(arg);
    else if (name == "ln") f = GiNaC::log(arg);
    else if (name == "log") f = GiNaC::log(arg) / GiNaC::log(ex(10));  // sympy: \log is base 10
    else throw ParseError{};
    return sup ? GiNaC::pow(f, *sup) : f;
  }

  std::string subscript() {
    // '_' then '{' expr '}' or an atom; named by the printed value, as sympy
    // names x_{1}.
    ++p_;
    ex s;
    if (is_punct("{")) {
      ++p_;
      s = expr();
      expect_punct("}");
    } else s = atom();
    std::ostringstream o;
    o << "_{" << s << "}";
    return o.str();
  }

  ex atom() {
    const Token k = peek();
    if (k.kind == Tok::num) {
      ++p_;
      return number(k.text);
    }
    if (k.kind == Tok::letter) {
      ++p_;
      std::string name = k.text;
      if (is_punct("_")) name += subscript();
      return symbol(name);
    }
    if (k.kind == Tok::cmd) {
      if (is_failing_command(k.text) || is_function_name(k.text)) throw ParseError{};
      if (k.text.size() == 1 && !std::isalpha(static_cast<unsigned char>(k.text[0]))) throw ParseError{};
      ++p_;
      if (k.text == "pi") return GiNaC::Pi;
      std::string name = k.text;
      if (is_punct("_")) name += subscript();
      return symbol(name);
    }
    throw ParseError{};
  }
};


}  // namespace

std::optional<GiNaC::ex> parse_latex(std::string_view latex, SymbolTable& symbols) {
  try {
    Parser p(lex(latex), symbols);
    return p.parse_all();
  } catch (const ParseError&) {
    return std::nullopt;
  } catch (const std::exception&) {  // GiNaC: division by zero, pole, ...
    return std::nullopt;
  }
}

bool is_equiv(std::string_view x1, std::string_view x2) {
  // GiNaC's reference counts and globals (Digits) are not thread-safe:
  // one comparison at a time, process-wide.
  static std::mutex mu;
  const std::lock_guard<std::mutex> lock(mu);
  SymbolTable symbols;
  const auto a = parse_latex(x1, symbols);
  if (!a) return false;
  const auto b = parse_latex(x2, symbols);
  if (!b) return false;
  try {
    const ex diff = GiNaC::normal(GiNaC::expand(*a - *b));
    if (diff.is_zero()) return true;
    if (has_symbol(diff)) return false;
    // Symbol-free: radicals, pi, logs. Evaluate at 60 digits.
    const long saved = GiNaC::Digits;
    GiNaC::Digits = 60;
    const ex v = GiNaC::evalf(diff);
    GiNaC::Digits = saved;
    if (!GiNaC::is_a<GiNaC::numeric>(v)) return false;
    return GiNaC::abs(GiNaC::ex_to<GiNaC::numeric>(v)) < GiNaC::numeric(1, 1) / GiNaC::pow(GiNaC::numeric(10), 45);
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace qsweep::scoring::math
