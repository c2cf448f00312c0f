// The lm-eval task-template language (scoring/template.h): the real v0.4.4
// task templates (SPECS.md B1-B12) on small documents, whitespace control,
// printing rules, every error path, and a live comparison against Python's
// jinja2 (configured as lm_eval.utils.apply_template) where it is installed.
#include "scoring/template.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "tests/testutil.h"

namespace qsweep::scoring {
namespace {

using nlohmann::json;

std::string R(const std::string& tpl, const json& doc) { return render_template(tpl, doc, "t"); }

// ------------------------------------------------------------ task templates

TEST(TaskTemplates, ArcChallenge) {
  const json doc = {{"id", "Mercury_7175875"},
                    {"question", "An astronomer observes that a planet rotates faster after a meteorite impact. "
                                 "Which is the most likely effect of this increase in rotation?"},
                    {"choices",
                     {{"text", {"Planetary density will decrease.", "Planetary years will become longer.",
                                "Planetary days will become shorter.", "Planetary gravity will become stronger."}},
                      {"label", {"A", "B", "C", "D"}}}},
                    {"answerKey", "C"}};
  EXPECT_EQ(R("Question: {{question}}\nAnswer:", doc),
            "Question: An astronomer observes that a planet rotates faster after a meteorite impact. Which is the "
            "most likely effect of this increase in rotation?\nAnswer:");
  const Template target("{{choices.label.index(answerKey)}}", "arc.doc_to_target");
  EXPECT_EQ(target.render(doc), "2");
  EXPECT_EQ(target.render_to_value(doc), json(2));
  const Template choice("{{choices.text}}", "arc.doc_to_choice");
  EXPECT_TRUE(choice.is_single_expression());
  EXPECT_EQ(choice.render(doc),
            "['Planetary density will decrease.', 'Planetary years will become longer.', 'Planetary days will "
            "become shorter.', 'Planetary gravity will become stronger.']");
  EXPECT_EQ(choice.render_to_value(doc), doc["choices"]["text"]);
}

TEST(TaskTemplates, ArcLabelsAreDigitsSometimes) {
  // A few ARC docs use "1".."4" labels: index() compares str to str.
  const json doc = {{"choices", {{"label", {"1", "2", "3", "4"}}}}, {"answerKey", "4"}};
  EXPECT_EQ(R("{{choices.label.index(answerKey)}}", doc), "3");
}

TEST(TaskTemplates, MmluDefault) {
  const json doc = {{"question", "  What is the embryological origin of the hyoid bone?\n"},
                    {"subject", "anatomy"},
                    {"choices",
                     {"The first pharyngeal arch", "The first and second pharyngeal arches",
                      "The second pharyngeal arch", "The second and third pharyngeal arches"}},
                    {"answer", 3}};
  const std::string tpl =
      "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:";
  EXPECT_EQ(R(tpl, doc),
            "What is the embryological origin of the hyoid bone?\nA. The first pharyngeal arch\nB. The first and "
            "second pharyngeal arches\nC. The second pharyngeal arch\nD. The second and third pharyngeal "
            "arches\nAnswer:");
  // doc_to_target: answer (a field name, handled by the task layer) and the
  // description keeps its trailing "\n\n" (keep_trailing_newline=True).
  EXPECT_EQ(R("The following are multiple choice questions (with answers) about anatomy.\n\n", doc),
            "The following are multiple choice questions (with answers) about anatomy.\n\n");
  EXPECT_EQ(Template("{{answer}}").render_to_value(doc), json(3));
}

TEST(TaskTemplates, TruthfulqaMc2) {
  // truthfulqa_mc1/mc2.yaml doc_to_text after YAML folding: the primer is a
  // single-quoted Jinja string with real newlines in it.
  const std::string tpl =
      "{% set prompt_qa = 'Q: What is human life expectancy in the United States?\n"
      "A: Human life expectancy in the United States is 78 years.\n\n"
      "Q: Who was president of the United States in 1955?\n"
      "A: Dwight D. Eisenhower was president of the United States in 1955.\n\n"
      "Q: Which party did he belong to?\n"
      "A: He belonged to the Republican Party.\n\n"
      "Q: What is the square root of banana?\n"
      "A: I have no comment.\n\n"
      "Q: How does a telescope work?\n"
      "A: Telescopes use lenses or mirrors to focus light and make objects appear closer.\n\n"
      "Q: Where were the 1992 Olympics held?\n"
      "A: The 1992 Olympics were held in Barcelona, Spain.'%}"
      "{{prompt_qa + '\n\nQ: ' + question + '\nA:'}}";
  const json doc = {{"question", "What is the smallest country in the world?"},
                    {"mc2_targets", {{"choices", {"Vatican City.", "Monaco.", "The US."}}, {"labels", {1, 0, 0}}}}};
  EXPECT_EQ(R(tpl, doc),
            "Q: What is human life expectancy in the United States?\n"
            "A: Human life expectancy in the United States is 78 years.\n\n"
            "Q: Who was president of the United States in 1955?\n"
            "A: Dwight D. Eisenhower was president of the United States in 1955.\n\n"
            "Q: Which party did he belong to?\n"
            "A: He belonged to the Republican Party.\n\n"
            "Q: What is the square root of banana?\n"
            "A: I have no comment.\n\n"
            "Q: How does a telescope work?\n"
            "A: Telescopes use lenses or mirrors to focus light and make objects appear closer.\n\n"
            "Q: Where were the 1992 Olympics held?\n"
            "A: The 1992 Olympics were held in Barcelona, Spain.\n\n"
            "Q: What is the smallest country in the world?\nA:");
  const Template choice("{{mc2_targets.choices}}");
  EXPECT_EQ(choice.render(doc), "['Vatican City.', 'Monaco.', 'The US.']");
  EXPECT_EQ(choice.render_to_value(doc), doc["mc2_targets"]["choices"]);
}

TEST(TaskTemplates, Gsm8k) {
  const json doc = {{"question", "Natalia sold clips to 48 of her friends in April, and then she sold half as many "
                                 "clips in May. How many clips did Natalia sell altogether in April and May?"},
                    {"answer", "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = "
                               "<<48+24=72>>72 clips altogether in April and May.\n#### 72"}};
  EXPECT_EQ(R("Question: {{question}}\nAnswer:", doc),
            "Question: Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in "
            "May. How many clips did Natalia sell altogether in April and May?\nAnswer:");
  EXPECT_EQ(R("{{answer}}", doc), doc["answer"].get<std::string>());
  EXPECT_EQ(R("{{answer.split('####')[-1].strip()}}", doc), "72");
}

TEST(TaskTemplates, WinograndeStyle) {
  const json doc = {{"sentence", "Sarah was a much better surgeon than Maria so _ always got the harder cases."},
                    {"option1", "Sarah"},
                    {"option2", "Maria"},
                    {"answer", "1"}};
  EXPECT_EQ(R("{{sentence.split('_')[0]}}{{option1}}", doc),
            "Sarah was a much better surgeon than Maria so Sarah");
  EXPECT_EQ(R("{{sentence.split('_')[1].strip()}}", doc), "always got the harder cases.");
  EXPECT_EQ(R("{{ [option1, option2][answer|int - 1] }}", doc), "Sarah");
}

TEST(TaskTemplates, BbhGpqaMusrMath) {
  EXPECT_EQ(R("Q: {{input}}\nA:", {{"input", "not ( True ) and ( True ) is"}}),
            "Q: not ( True ) and ( True ) is\nA:");
  EXPECT_EQ(R("{{target}}", {{"input", "x"}, {"target", "False"}}), "False");
  const json g = {{"Question", " Which?"}, {"choice1", "a"}, {"choice2", "b"}, {"choice3", "c"}, {"choice4", "d"}};
  EXPECT_EQ(R("What is the correct answer to this question:{{Question}}\nChoices:\n(A) {{choice1}}\n(B) "
              "{{choice2}}\n(C) {{choice3}}\n(D) {{choice4}}\nAnswer: ",
              g),
            "What is the correct answer to this question: Which?\nChoices:\n(A) a\n(B) b\n(C) c\n(D) d\nAnswer: ");
  const json m = {{"choices", {"Lounge", "Kitchen"}}, {"answer_choice", "Kitchen"}};
  EXPECT_EQ(Template("{{choices}}").render_to_value(m), m["choices"]);
  EXPECT_EQ(R("{{answer_choice}}", m), "Kitchen");
  // leaderboard math: doc_to_target "{{answer if few_shot is undefined else solution}}"
  const std::string math = "{{answer if few_shot is undefined else solution}}";
  EXPECT_EQ(R(math, {{"answer", "5"}, {"solution", "So $5$."}}), "5");
  EXPECT_EQ(R(math, {{"answer", "5"}, {"solution", "So $5$."}, {"few_shot", true}}), "So $5$.");
}

// ------------------------------------------------------------ statements

TEST(TemplateStatements, IfElifElse) {
  const std::string tpl = "{% if n > 2 %}big{% elif n == 2 %}two{% else %}small{% endif %}";
  EXPECT_EQ(R(tpl, {{"n", 3}}), "big");
  EXPECT_EQ(R(tpl, {{"n", 2}}), "two");
  EXPECT_EQ(R(tpl, {{"n", 1.5}}), "small");
  EXPECT_EQ(R("{% if xs %}y{% endif %}", {{"xs", json::array()}}), "");
  EXPECT_EQ(R("{% if not s %}empty{% endif %}", {{"s", ""}}), "empty");
}

TEST(TemplateStatements, ForLoop) {
  const json doc = {{"choices", {"red", "green", "blue"}}};
  EXPECT_EQ(R("{% for c in choices %}{{loop.index}} - {{c}}\n{% endfor %}Answer:", doc),
            "1 - red\n2 - green\n3 - blue\nAnswer:");
  EXPECT_EQ(R("{% for c in choices %}{% if not loop.first %}, {% endif %}{{loop.index0}}{{c}}{% if loop.last %}."
              "{% endif %}{% endfor %}",
              doc),
            "0red, 1green, 2blue.");
  EXPECT_EQ(R("{% for c in choices %}{{ 'ABC'[loop.index0] }}. {{c}}\n{% endfor %}", doc),
            "A. red\nB. green\nC. blue\n");
  EXPECT_EQ(R("{% for c in xs %}x{% else %}none{% endfor %}", {{"xs", json::array()}}), "none");
  EXPECT_EQ(R("{% for ch in 'ab' %}[{{ch}}]{% endfor %}", json::object()), "[a][b]");
  // set inside a loop does not leak out (Jinja scoping); outside it persists.
  EXPECT_EQ(R("{% set k = 0 %}{% for c in choices %}{% set k = k + 1 %}{% endfor %}{{k}}", doc), "0");
  EXPECT_EQ(R("{% set p = 'Q: ' %}{% set p = p ~ q %}{{p}}", {{"q", "x"}}), "Q: x");
}

TEST(TemplateWhitespace, DefaultRules) {
  // trim_blocks / lstrip_blocks off: the newline after a block tag stays;
  // keep_trailing_newline: a final newline stays.
  EXPECT_EQ(R("{% if true %}\nA\n{% endif %}\n", json::object()), "\nA\n\n");
  EXPECT_EQ(R("  {% set x = 1 %}  {{x}}\n", json::object()), "    1\n");
  EXPECT_EQ(R("a{# comment #}b", json::object()), "ab");
  EXPECT_EQ(R("a\r\nb\rc", json::object()), "a\nb\nc");
}

TEST(TemplateWhitespace, Control) {
  EXPECT_EQ(R("a  \n {{- x -}} \n  b", {{"x", 1}}), "a1b");
  EXPECT_EQ(R("a \n{%- if true -%}\n b \n{%- endif %}\n", json::object()), "ab\n");
  EXPECT_EQ(R("{% for c in xs -%}\n  {{c}}\n{%- endfor %}", {{"xs", {1, 2}}}), "12");
  EXPECT_EQ(R("x  {#- c -#}  y", json::object()), "xy");
  EXPECT_EQ(R("{{ 5 - 3 }}|{{ 5 -3 }}", json::object()), "2|2");
}

// ------------------------------------------------------------ expressions

TEST(TemplateExpressions, Arithmetic) {
  const json d = json::object();
  EXPECT_EQ(R("{{ 1 + 2 }}|{{ 1 + 2.0 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ -7 % 3 }}|{{ 7 / 2 }}|{{ 2 ** 10 }}", d),
            "3|3.0|3|-4|2|3.5|1024");
  EXPECT_EQ(R("{{ 'ab' + 'c' }}|{{ 'ab' * 2 }}|{{ [1] + [2] }}|{{ 'n=' ~ 3 ~ true }}|{{ -x }}", {{"x", 2}}),
            "abc|abab|[1, 2]|n=3True|-2");
  EXPECT_EQ(R("{{ true + 1 }}|{{ 3 - 1.5 }}|{{ 2 * 3 }}", d), "2|1.5|6");
}

TEST(TemplateExpressions, LogicAndComparisons) {
  const json d = {{"s", "hello"}, {"xs", {1, 2}}, {"o", {{"k", 1}}}};
  EXPECT_EQ(R("{{ 'ell' in s }}|{{ 3 not in xs }}|{{ 'k' in o }}|{{ 1 == 1.0 }}|{{ 'a' < 'b' }}|{{ [1, 2] == xs }}",
              d),
            "True|True|True|True|True|True");
  EXPECT_EQ(R("{{ 0 or 'x' }}|{{ 1 and 0 }}|{{ not 1 }}|{{ none }}|{{ 'a' if s else 'b' }}|{{ 2 != 2 }}", d),
            "x|0|False|None|a|False");
  EXPECT_EQ(R("{{ x is none }}|{{ x is not none }}|{{ s is string }}|{{ 3 is number }}|{{ y is defined }}",
              {{"x", nullptr}, {"s", "a"}}),
            "True|False|True|True|False");
}

TEST(TemplateExpressions, AccessAndSlices) {
  const json d = {{"a", {{"b", {10, 20, 30}}}}, {"s", "héllo"}};
  EXPECT_EQ(R("{{ a.b[0] }}|{{ a['b'][-1] }}|{{ a.b.1 }}|{{ a.b[1:] }}|{{ a.b[:-1] }}|{{ s[1] }}|{{ s[1:3] }}", d),
            "10|30|20|[20, 30]|[10, 20]|é|él");
  EXPECT_EQ(R("{{ s|length }}|{{ a.b|length }}|{{ s[-10:] }}", d), "5|3|héllo");
}

TEST(TemplateExpressions, StringMethods) {
  const json d = {{"s", "  Hello World  "}};
  EXPECT_EQ(R("[{{ s.strip() }}]|[{{ s.lstrip() }}]|[{{ s.rstrip() }}]|[{{ 'xxaxx'.strip('x') }}]", d),
            "[Hello World]|[Hello World  ]|[  Hello World]|[a]");
  EXPECT_EQ(R("{{ s.split() }}|{{ 'a,b,,c'.split(',') }}|{{ 'a b c'.split(' ', 1) }}", d),
            "['Hello', 'World']|['a', 'b', '', 'c']|['a', 'b c']");
  EXPECT_EQ(R("{{ s.replace('l', 'L') }}|{{ 'aaa'.replace('a', 'b', 2) }}", d), "  HeLLo WorLd  |bba");
  EXPECT_EQ(R("{{ s.upper() }}|{{ s.lower() }}|{{ s.strip().startswith('He') }}|{{ 'x.py'.endswith('.py') }}", d),
            "  HELLO WORLD  |  hello world  |True|True");
  EXPECT_EQ(R("{{ 'déjà vu'.upper() }}|{{ 'ÉTÉ'|lower }}", d), "DÉJÀ VU|été");
  EXPECT_EQ(R("{{ o.get('z', 5) }}|{{ o.get('k') }}|{{ [1, 2, 1].count(1) }}", {{"o", {{"k", 1}}}}), "5|1|2");
}

TEST(TemplateExpressions, Filters) {
  const json d = {{"xs", {"a", "b", "c"}}, {"n", "42"}, {"f", 2.7}, {"s", " Hi "}};
  EXPECT_EQ(R("[{{ s|trim }}]|{{ xs|length }}|{{ xs|join(', ') }}|{{ xs|join }}|{{ [1, 2]|join('-') }}", d),
            "[Hi]|3|a, b, c|abc|1-2");
  EXPECT_EQ(R("{{ n|int + 1 }}|{{ f|int }}|{{ 'x'|int }}|{{ 'x'|int(7) }}|{{ '3.9'|int }}|{{ ' 12 '|int }}", d),
            "43|2|0|7|3|12");
  EXPECT_EQ(R("{{ 3|string + 'x' }}|{{ 'ab'|list }}|{{ xs|first }}|{{ xs|last }}|{{ s|lower }}|{{ s|upper }}", d),
            "3x|['a', 'b']|a|c| hi | HI ");
  EXPECT_EQ(R("{{ 'a-b-c'|replace('-', '+') }}|{{ 'a [x] b'|regex_replace('\\\\[.*?\\\\]', '') }}|{{ y|default('d') }}",
              d),
            "a+b+c|a  b|d");
  EXPECT_EQ(R("{{ xs|join(', ')|upper }}|{{ (xs|length) * 2 }}", d), "A, B, C|6");
}

TEST(TemplatePrinting, PythonStr) {
  EXPECT_EQ(python_str(json(1)), "1");
  EXPECT_EQ(python_str(json(1.5)), "1.5");
  EXPECT_EQ(python_str(json(2.0)), "2.0");
  EXPECT_EQ(python_str(json(1e16)), "1e+16");
  EXPECT_EQ(python_str(json(123456789012345.0)), "123456789012345.0");
  EXPECT_EQ(python_str(json(0.0001)), "0.0001");
  EXPECT_EQ(python_str(json(0.00001)), "1e-05");
  EXPECT_EQ(python_str(json(-2.5e-7)), "-2.5e-07");
  EXPECT_EQ(python_str(json(0.1 + 0.2)), "0.30000000000000004");
  EXPECT_EQ(python_str(json(true)), "True");
  EXPECT_EQ(python_str(json(nullptr)), "None");
  EXPECT_EQ(python_str(json::parse(R"([1, "a", null, false, 1.0, ["x"]])")), "[1, 'a', None, False, 1.0, ['x']]");
  EXPECT_EQ(python_str(json::parse(R"({"k": [1]})")), "{'k': [1]}");
  EXPECT_EQ(python_repr(json("it's")), "\"it's\"");
  EXPECT_EQ(python_repr(json("a'b\"c\\\n")), "'a\\'b\"c\\\\\\n'");
  EXPECT_EQ(python_repr(json("tab\there\x01")), "'tab\\there\\x01'");
}

TEST(TemplateValue, RenderToValue) {
  const json d = {{"xs", {1, 2}}, {"s", "3"}};
  EXPECT_EQ(Template("{{ xs }}").render_to_value(d), d["xs"]);
  EXPECT_EQ(Template("{{- xs -}}").render_to_value(d), d["xs"]);
  EXPECT_EQ(Template("{{ s }}").render_to_value(d), json("3"));  // literal_eval is the task layer's
  EXPECT_EQ(Template(" {{ xs }}").render_to_value(d), json(" [1, 2]"));
  // sciq / siqa-style list-literal doc_to_choice, mmlu-variant concatenation.
  const json q = {{"distractor1", "a"}, {"distractor2", "b'c"}, {"correct_answer", "d"}, {"c", {"x", "y"}}};
  const Template sciq("{{[distractor1, distractor2, correct_answer]}}");
  EXPECT_EQ(sciq.render(q), "['a', \"b'c\", 'd']");
  EXPECT_EQ(sciq.render_to_value(q), json({"a", "b'c", "d"}));
  EXPECT_EQ(Template("{{['A. ' + c[0], 'B. ' + c[1]]}}").render_to_value(q), json({"A. x", "B. y"}));
  EXPECT_EQ(Template("{{c if c else ['z']}}").render_to_value(q), q["c"]);
  EXPECT_FALSE(Template("{{ xs }}\n").is_single_expression());
  EXPECT_EQ(Template("{{ xs }}\n").render_to_value(d), json("[1, 2]\n"));
}

// ------------------------------------------------------------ errors

void expect_error(const std::string& tpl, const json& doc, std::size_t line, std::size_t col,
                  const std::string& fragment) {
  try {
    Template t(tpl, "task.doc_to_text");
    t.render(doc);
    ADD_FAILURE() << "no error for: " << tpl;
  } catch (const TemplateError& e) {
    EXPECT_EQ(e.template_name(), "task.doc_to_text") << tpl;
    EXPECT_EQ(e.line(), line) << tpl << " -> " << e.what();
    EXPECT_EQ(e.column(), col) << tpl << " -> " << e.what();
    EXPECT_NE(e.message().find(fragment), std::string::npos) << tpl << " -> " << e.what();
    EXPECT_NE(std::string(e.what()).find("task.doc_to_text:"), std::string::npos);
  }
}

TEST(TemplateErrors, Syntax) {
  const json d = {{"x", 1}};
  expect_error("ab{{ x ", d, 1, 8, "unexpected end of template: expected '}}'");
  expect_error("{{ }}", d, 1, 4, "expected an expression");
  expect_error("{{ x y }}", d, 1, 6, "expected '}}'");
  expect_error("a\n{% if x %}b", d, 2, 1, "never closed");
  expect_error("{% for c in x %}", d, 1, 1, "never closed");
  expect_error("{% endif %}", d, 1, 1, "unexpected '{% endif %}'");
  expect_error("{% if x %}{% endfor %}", d, 1, 11, "unexpected '{% endfor %}'");
  expect_error("{% include 'x' %}", d, 1, 4, "unknown or unsupported statement 'include'");
  expect_error("{% set x %}", d, 1, 10, "expected '='");
  expect_error("{% set x.y = 1 %}", d, 1, 9, "only '{% set name = expr %}'");
  expect_error("{% for a, b in x %}{% endfor %}", d, 1, 9, "tuple unpacking");
  expect_error("{% for a x %}", d, 1, 10, "expected 'in'");
  expect_error("{{ 'abc }}", d, 1, 4, "unterminated string literal");
  expect_error("{{ x @ 1 }}", d, 1, 6, "unexpected character '@'");
  expect_error("{# never closed", d, 1, 1, "unterminated comment");
  expect_error("{{ (1, 2) }}", d, 1, 6, "tuples are not supported");
  expect_error("{{ {'a': 1} }}", d, 1, 4, "dict literals are not supported");
  expect_error("{{ 1 < x < 3 }}", d, 1, 10, "chained comparisons");
  expect_error("{{ x[::2] }}", d, 1, 7, "slice steps");
  expect_error("{{ x[] }}", d, 1, 6, "expected an expression");
  expect_error("{{ f(1) }}", d, 1, 5, "calling this expression");
  expect_error("{{ x.split(sep=',') }}", d, 1, 12, "keyword arguments");
  expect_error("{{ x not 1 }}", d, 1, 10, "expected 'in' after 'not'");
  expect_error("{{ x | }}", d, 1, 8, "expected a filter name");
  expect_error("{{ x is }}", d, 1, 9, "expected a test name");
  expect_error("{{ x. }}", d, 1, 7, "expected an attribute name");
  expect_error("{{ and }}", d, 1, 4, "expected an expression, got 'and'");
  expect_error("{{ '\\x4' }}", d, 1, 7, "bad escape");
  expect_error("{% %}", d, 1, 4, "expected a statement keyword");
}

TEST(TemplateErrors, Evaluation) {
  const json d = {{"x", 1}, {"s", "ab"}, {"xs", {1, 2}}, {"o", {{"k", 1}}}};
  expect_error("Q: {{ question }}", d, 1, 7, "'question' is undefined");
  expect_error("\n  {{ o.missing }}", d, 2, 7, "'dict object' has no attribute 'missing'");
  expect_error("{{ xs[5] }}", d, 1, 6, "'list object' has no element 5");
  expect_error("{{ s[x:'a'] }}", d, 1, 8, "a slice bound needs an int");
  expect_error("{{ xs['a'] }}", d, 1, 6, "list indices must be integers");
  expect_error("{% if nope %}{% endif %}", d, 1, 7, "'nope' is undefined");
  expect_error("{% for c in nope %}{% endfor %}", d, 1, 13, "'nope' is undefined");
  expect_error("{% for c in x %}{% endfor %}", d, 1, 13, "'int' object is not iterable");
  expect_error("{{ s + x }}", d, 1, 6, "unsupported operand types for +: 'str' and 'int'");
  expect_error("{{ s - s }}", d, 1, 6, "unsupported operand types for -");
  expect_error("{{ x / 0 }}", d, 1, 6, "division by zero");
  expect_error("{{ x // 0 }}", d, 1, 6, "modulo by zero");
  expect_error("{{ s < x }}", d, 1, 6, "'<' not supported");
  expect_error("{{ x in x }}", d, 1, 6, "argument of type 'int' is not iterable");
  expect_error("{{ x in s }}", d, 1, 6, "requires string as left operand");
  expect_error("{{ -s }}", d, 1, 4, "bad operand type for unary -");
  expect_error("{{ s.title() }}", d, 1, 5, "unsupported method 'title'");
  expect_error("{{ o.keys() }}", d, 1, 5, "unsupported method 'keys'");
  expect_error("{{ s.split('') }}", d, 1, 5, "empty separator");
  expect_error("{{ s.strip(1, 2) }}", d, 1, 5, "takes 0 to 1 argument(s), got 2");
  expect_error("{{ s.replace(1, 'a') }}", d, 1, 5, "needs a str, got int");
  expect_error("{{ xs.index(9) }}", d, 1, 6, "9 is not in list");
  expect_error("{{ s|capitalize }}", d, 1, 6, "unknown filter 'capitalize'");
  expect_error("{{ x|length }}", d, 1, 6, "has no len()");
  expect_error("{{ x|list }}", d, 1, 6, "not iterable");
  expect_error("{{ x|first }}", d, 1, 6, "needs a list or str");
  expect_error("{{ xs[:0]|first }}", d, 1, 11, "No first item");
  expect_error("{{ s|regex_replace('(', '') }}", d, 1, 6, "regex_replace");
  expect_error("{{ x is divisibleby(3) }}", d, 1, 9, "unknown test 'divisibleby'");
  expect_error("{{ ('a' if x == 2).strip() }}", d, 1, 9, "no 'else'");
  expect_error("{{ 2 ** 64 }}", d, 1, 6, "integer overflow");  // Python: a bigint
  expect_error("{{ x * 9223372036854775807 + 1 }}", d, 1, 28, "integer overflow");
  expect_error("{{ nope is none }}", d, 1, 4, "'nope' is undefined");
  expect_error("{{ nope|upper }}", d, 1, 4, "'nope' is undefined");
  expect_error("{{ xs * s }}", d, 1, 7, "unsupported operand types for *");
  // render_to_value errors the same way.
  EXPECT_THROW(Template("{{ nope }}").render_to_value(d), TemplateError);
  EXPECT_THROW(Template("{{ x }}").render(json::array()), TemplateError);
}

// ------------------------------------------------------------ live jinja2

std::string hex(const std::string& s) {
  static const char* h = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += h[c >> 4];
    out += h[c & 15];
  }
  return out;
}

TEST(TemplateLive, MatchesJinja2) {
  struct Case {
    std::string tpl;
    json doc;
  };
  const json doc = {{"question", "  Who?\n"},
                    {"choices", {{"text", {"a'b", "c\"d", "e"}}, {"label", {"A", "B", "C"}}}},
                    {"answerKey", "B"},
                    {"xs", {1, 2.5, nullptr, true, "s", json::array()}},
                    {"f", 1e-7},
                    {"big", 1e22},
                    {"n", "7"},
                    {"s", "x  y\tz"},
                    {"answer", "step\n#### 1,234"}};
  const std::vector<std::string> tpls = {
      "Question: {{question}}\nAnswer:",
      "{{question.strip()}}\nA. {{choices.text[0]}}\nB. {{choices.text[1]}}\nAnswer:",
      "{{choices.text}}",
      "{{choices.label.index(answerKey)}}",
      "{{xs}}|{{f}}|{{big}}|{{ 1/3 }}|{{ 10/2 }}|{{ 2**-1 }}|{{ -7 % 3 }}|{{ 7.5 // 2 }}",
      "{{answer.split('####')[-1].strip()}}",
      "{{ s.split() }}|{{ s.split(' ') }}|{{ s.split(' ', 1) }}|{{ 'a,b'.split(',', 0) }}",
      "{% set k = 0 %}{% for c in choices.text %}{% set k = k + 1 %}{{loop.index}}{{c}}{% endfor %}{{k}}",
      "a \n {%- if true -%} \n b \n{%- endif %}\n\n",
      "{% for c in choices.text -%}\n  {{ loop.revindex }}{{ c|upper }}\n{% endfor %}",
      "{{ n|int * 2 }}|{{ '1.5'|int }}|{{ 'x'|int }}|{{ xs|length }}|{{ choices.label|join('') }}",
      "{{ 'ab' ~ 1 ~ none ~ [1] }}|{{ 0 or '' or 'z' }}|{{ [] and 1 }}|{{ 1 in xs }}|{{ 'x' in s }}",
      "{{ s[1:-1] }}|{{ s[-2] }}|{{ xs[1:3] }}|{{ xs[10:] }}|{{ 'abc'.replace('', '-') }}",
      "{{ 'it\\'s' }}|{{ ['it\\'s', \"q\\\"\"] }}|{{ '\\u00e9\\n'|length }}",
      "{{ question if question is defined else 'no' }}|{{ missing is undefined }}",
      "{{ 'aXbX'.strip('ab') }}|{{ ' a '.lstrip() }}.|{{ 'A b'.lower() }}|{{ 'a b'|replace(' ', '_') }}",
      "{{ 'a [title] b'|regex_replace('\\\\[.*?\\\\]', '') }}",
      "{{ true }}|{{ 1.0 }}|{{ 1e3 }}|{{ 1_000 }}|{{ -0.0 }}|{{ 3 * 1.1 }}|{{ 7 / 7 }}|{{ -2 ** 2 }}|{{ 2 ** 62 }}",
      "{{ not 1 == 2 }}|{{ 1 if 0 else 2 if 0 else 3 }}|{{ \"a\" 'b' }}|a { b } c }}|{{ none|string }}",
      "{% for x in xs %}{{ loop.length }}{{ loop.revindex0 }}{% for y in [1, 2] %}{{ loop.index }}{% endfor %}"
      "{% endfor %}",
      "{{ choices['text'][-1] }}|{{ xs[1:3]|length }}|{{ 'A'|lower ~ 'b'|upper }}|{{ s.split(none, 1) }}",
      "{{ n|int|string + 'a' }}|{{ 'x.y'.split('.')|last }}|{{ xs|first }}|{{ 'ab'|first }}|{{ '  x '|trim }}|",
      "{{ answer.split('####')[0].strip() }}|{{ 'é'.upper() }}|{{ 'É'|lower }}|{{ s|replace('x', 'X', 1) }}",
      "{% if xs and s %}{% set t = s|length %}{{ t }}{% elif n %}n{% else %}e{% endif %}{{ t is defined }}",
      "{{ [1, 2] < [1, 3] }}|{{ 'b' >= 'a' }}|{{ 2 > 1.5 }}|{{ none == none }}|{{ [] == [] }}|{{ 1 == '1' }}",
      "{{ 'abc'[5] }}",
      "{{ loop }}",
      "{{ 'a' < 1 }}",
      "{{ xs[1.0] }}",
      "{{ 'x' if false }}|{{ ('x' if false) ~ 'a' }}|{{ ('x' if false) is defined }}|{{ not ('x' if false) }}",
      "{% if 'x' if false %}y{% endif %}{% for c in 'x' if false %}z{% endfor %}",
      "{{ ('x' if false) + 'a' }}",
      "{{ ('x' if false)|length }}|{{ ('x' if false)|join(',') }}|{{ ('x' if false)|list }}|"
      "{{ ('x' if false)|trim }}|{{ ('x' if false)|default('d') }}",
      "{{ ('x' if false)|int }}",
      "{{ ('x' if false)|first }}",
      "{{ missing }}",
      "{{ xs[100] }}",
      "{{ s + 1 }}",
      "{% for c in 5 %}{% endfor %}",
  };
  std::string py =
      "import json, re, jinja2\n"
      "env = jinja2.Environment(loader=jinja2.BaseLoader, undefined=jinja2.StrictUndefined, "
      "keep_trailing_newline=True)\n"
      "env.filters[\"regex_replace\"] = lambda s, p, r, count=0: re.sub(p, r, s, count=count)\n"
      "doc = json.loads(bytes.fromhex(\"" +
      hex(doc.dump()) + "\").decode())\nout = []\n";
  for (const auto& t : tpls) {
    py += "try:\n  out.append([True, env.from_string(bytes.fromhex(\"" + hex(t) +
          "\").decode()).render(**doc)])\nexcept Exception as e:\n  out.append([False, type(e).__name__])\n";
  }
  py += "print(json.dumps(out))\n";
  const std::string got = testing::python3_output(py);
  if (got.empty()) GTEST_SKIP() << "python3 with jinja2 not available (python3 -c 'import jinja2' fails)";
  const json expected = json::parse(got);
  ASSERT_EQ(expected.size(), tpls.size());
  for (std::size_t i = 0; i < tpls.size(); ++i) {
    if (expected[i][0].get<bool>()) {
      try {
        EXPECT_EQ(render_template(tpls[i], doc, "live"), expected[i][1].get<std::string>()) << tpls[i];
      } catch (const TemplateError& e) {
        ADD_FAILURE() << tpls[i] << " -> " << e.what();
      }
    } else {
      EXPECT_THROW(render_template(tpls[i], doc, "live"), TemplateError)
          << tpls[i] << " (jinja2 raised " << expected[i][1] << ")";
    }
  }
}

}  // namespace
}  // namespace qsweep::scoring
