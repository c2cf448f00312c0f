#pragma once
// The template language of lm-eval v0.4.4 task files: the subset of Jinja2
// used by doc_to_text / doc_to_target / doc_to_choice / description templates,
// rendered the way lm_eval.utils.apply_template does
// (Environment(undefined=StrictUndefined, keep_trailing_newline=True),
// trim_blocks / lstrip_blocks off, plus the `regex_replace` filter), with the
// document's fields as the template's variables. See docs/scoring.md,
// "Task templates".

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace qsweep::scoring {

/// A syntax or evaluation error: "NAME:LINE:COLUMN: MESSAGE" (1-based line
/// and column, column in bytes).
class TemplateError : public std::runtime_error {
 public:
  TemplateError(std::string name, std::size_t line, std::size_t column, std::string message);
  const std::string& template_name() const { return name_; }
  std::size_t line() const { return line_; }
  std::size_t column() const { return column_; }
  const std::string& message() const { return message_; }

 private:
  std::string name_;
  std::size_t line_;
  std::size_t column_;
  std::string message_;
};

/// A parsed template; immutable and safe to render from several threads.
class Template {
 public:
  /// Parses `source`; throws TemplateError on a syntax error. `name` appears
  /// in error messages (e.g. "arc_challenge.doc_to_text").
  explicit Template(std::string_view source, std::string name = "<template>");
  ~Template();
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;

  /// Renders with the members of `doc` (a JSON object) as variables, as
  /// Jinja's `template.render(**doc)`. Throws TemplateError on an evaluation
  /// error (undefined variable, type error, bad index...).
  std::string render(const nlohmann::json& doc) const;

  /// When the template is exactly one `{{ expr }}` (nothing around it, after
  /// whitespace control), the JSON value of `expr` (so `{{choices.text}}`
  /// gives the list itself, which is what lm-eval gets by
  /// `ast.literal_eval(render(...))`); otherwise render(doc) as a JSON string.
  nlohmann::json render_to_value(const nlohmann::json& doc) const;

  /// True when the template is exactly one `{{ expr }}`.
  bool is_single_expression() const;

  const std::string& name() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Parse-and-render in one call.
std::string render_template(std::string_view source, const nlohmann::json& doc,
                            const std::string& name = "<template>");

/// Python `str(v)` of a JSON value: strings as is, ints as ints, floats as
/// Python's repr (1.0, 1e-05, 1e+16), True/False, None, lists/dicts as
/// Python's repr (['a', 1], {'k': 'v'}; keys in the json object's order).
std::string python_str(const nlohmann::json& v);
/// Python `repr(v)` (strings quoted as Python quotes them).
std::string python_repr(const nlohmann::json& v);

}  // namespace qsweep::scoring
