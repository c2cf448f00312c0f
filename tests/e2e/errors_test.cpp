// Bad experiment files: one clear message naming file:line:column, exit 2.

#include <filesystem>
#include <sstream>

#include <gmock/gmock.h>

#include "tests/e2e/e2e_util.h"

namespace qsweep::testing {
namespace {

using ::testing::HasSubstr;

struct BadInput {
  std::string name;
  std::string yaml;                          ///< exp.yaml
  std::map<std::string, std::string> files;  ///< other files next to it
  std::string where;                         ///< "exp.yaml:LINE:" (or another file)
  std::vector<std::string> says;             ///< substrings of the message
};

std::ostream& operator<<(std::ostream& o, const BadInput& b) { return o << b.name; }

const std::vector<BadInput>& cases() {
  static const std::vector<BadInput> v = {
      {"UnknownTopLevelKey",
       "version: 1\nname: bad\nrecipies:\n  r1: {bits: 8}\nstages: []\n",
       {}, "exp.yaml:3:1:", {"unknown key 'recipies'", "did you mean 'recipes'?"}},
      {"UnknownStageKey",
       "version: 1\nname: bad\nstages:\n  - name: a\n    kind: command\n    retrys: 2\n"
       "    params: {argv: [echo]}\n",
       {}, "exp.yaml:6:5:", {"unknown key 'stages[0].retrys'", "did you mean 'retries'?"}},
      {"WrongType",
       "version: 1\nname: bad\nstages:\n  - name: a\n    kind: command\n    retries: many\n"
       "    params: {argv: [echo]}\n",
       {}, "exp.yaml:6:14:", {"retries", "expected an integer, got 'many'"}},
      {"MissingName",
       "version: 1\nstages:\n  - name: a\n    kind: command\n    params: {argv: [echo]}\n",
       {}, "exp.yaml:1:1:", {"missing required key 'name'"}},
      {"MissingInputReference",
       "version: 1\nname: bad\nrecipes: {r1: {}}\nstages:\n"
       "  - name: fetch\n    kind: command\n    matrix: {recipe: \"*\"}\n    params: {argv: [echo]}\n"
       "  - name: use\n    kind: command\n    inputs: {x: \"fetch[nope]\"}\n    params: {argv: [echo]}\n",
       {}, "exp.yaml:11:17:", {"no node 'fetch[nope]'", "fetch[r1]"}},
      {"MisspeltInputReference",
       "version: 1\nname: bad\nrecipes: {r1: {}}\nstages:\n"
       "  - name: fetch\n    kind: command\n    matrix: {recipe: \"*\"}\n    params: {argv: [echo]}\n"
       "  - name: use\n    kind: command\n    inputs: {x: \"fetch[r2]\"}\n    params: {argv: [echo]}\n",
       {}, "exp.yaml:11:17:", {"no node 'fetch[r2]'", "did you mean 'fetch[r1]'?"}},
      {"MatrixValueNotInModels",
       "version: 1\nname: bad\nmodels:\n  tiny: {}\n  small: {}\nstages:\n"
       "  - name: a\n    kind: command\n    matrix: {model: [tiny, smal]}\n    params: {argv: [echo]}\n",
       {}, "exp.yaml:9:28:", {"'smal' is not defined under models", "did you mean 'small'?"}},
      {"DuplicateStageNames",
       "version: 1\nname: bad\nstages:\n  - name: a\n    kind: command\n    params: {argv: [echo]}\n"
       "  - name: a\n    kind: command\n    params: {argv: [echo]}\n",
       {}, "exp.yaml:7:11:", {"duplicate stage name 'a'", "first defined at"}},
      {"DuplicateModelNames",
       "version: 1\nname: bad\nmodels:\n  tiny: {a: 1}\n  tiny: {a: 2}\nstages: []\n",
       {}, "exp.yaml:5:3:", {"duplicate", "'tiny'"}},
      {"Cycle",
       "version: 1\nname: bad\nstages:\n"
       "  - name: a\n    kind: command\n    inputs: {x: b}\n    params: {argv: [echo]}\n"
       "  - name: b\n    kind: command\n    inputs: {x: a}\n    params: {argv: [echo]}\n",
       {}, "exp.yaml:4:5:", {"cycle", "a <- b"}},
      {"UndefinedVariable",
       "version: 1\nname: bad\nvars: {known: 1}\nstages:\n  - name: a\n    kind: command\n"
       "    params: {argv: [echo, \"${vars.nope}\"]}\n",
       {}, "exp.yaml:7:27:", {"undefined variable ${vars.nope}"}},
      {"YamlSyntaxError",
       "version: 1\nname: bad\nstages:\n  - name: a\n    kind: command\n"
       "    params: {argv: [echo}\n",
       {}, "exp.yaml:6:", {"YAML syntax error"}},
      {"MissingImport",
       "version: 1\nname: bad\nimports:\n  - recipes/missing.yaml\nstages: []\n",
       {}, "exp.yaml:4:5:", {"recipes/missing.yaml", "no such file"}},
      {"ImportCycle",
       "version: 1\nname: bad\nimports: [a.yaml]\nstages: []\n",
       {{"a.yaml", "imports: [b.yaml]\n"}, {"b.yaml", "recipes: {r1: {}}\nimports: [a.yaml]\n"}},
       "b.yaml:2:11:", {"import cycle", "a.yaml -> ", "b.yaml -> "}},
      {"UnknownStageKind",
       "version: 1\nname: bad\nstages:\n  - name: a\n    kind: comand\n    params: {argv: [echo]}\n",
       {}, "exp.yaml:5:11:", {"unknown value 'comand'", "did you mean 'command'?"}},
      {"UnknownCommandParam",
       "version: 1\nname: bad\nstages:\n  - name: a\n    kind: command\n    params:\n"
       "      argvv: [echo, hi]\n",
       {}, "exp.yaml:7:7:", {"unknown key 'stages.a.params.argvv'", "did you mean 'argv'?"}},
      {"UnsupportedVersion",
       "version: 2\nname: bad\nstages: []\n",
       {}, "exp.yaml:1:10:", {"version 2 is not supported"}},
      {"MalformedTaskFile",
       "version: 1\nname: bad\nstages:\n  - name: m\n    kind: command\n    params: {argv: [echo]}\n"
       "  - name: ev\n    kind: infer\n    inputs:\n      checkpoint: m\n      dataset: m\n"
       "      task: file:tasks/t.yaml\n",
       {{"tasks/t.yaml", "task: t\ntest_split: test\ndoc_to_txt: \"{{q}}\"\ndoc_to_target: a\n"}},
       "exp.yaml:12:13:", {"inputs.task: ", "tasks/t.yaml:3:1: unknown key 'doc_to_txt'", "did you mean 'doc_to_text'?"}},
      {"InferMultiturnWithoutChatTemplate",
       "version: 1\nname: bad\nstages:\n  - name: m\n    kind: command\n    params: {argv: [echo]}\n"
       "  - name: ev\n    kind: infer\n    inputs: {checkpoint: m, dataset: m}\n"
       "    params: {fewshot_as_multiturn: true}\n",
       {}, "exp.yaml:10:13:", {"params.fewshot_as_multiturn: needs apply_chat_template: true"}},
  };
  return v;
}

class BadInputCase : public E2ETest, public ::testing::WithParamInterface<BadInput> {};

TEST_P(BadInputCase, OneMessageWithFileLineAndExit2) {
  const BadInput& c = GetParam();
  write_file(exp(), c.yaml);
  for (const auto& [rel, text] : c.files) write_file(path(rel), text);
  for (const char* cmd : {"plan", "run"}) {
    ProcResult r = qsweep({cmd, exp().string()});
    EXPECT_EQ(r.exit_code, 2) << cmd << "\n" << describe(r);
    EXPECT_EQ(r.out, "") << cmd;
    // Exactly one diagnostic, with location, message and hint on one line.
    std::istringstream lines(r.err);
    std::string line, diag;
    int n = 0;
    while (std::getline(lines, line))
      if (line.find("error:") != std::string::npos) ++n, diag = line;
    EXPECT_EQ(n, 1) << cmd << ": expected one error line\n" << r.err;
    EXPECT_THAT(diag, HasSubstr(c.where)) << cmd;
    EXPECT_EQ(diag.rfind(dir_.path().string() + "/", 0), 0u) << "the location should start with the file: " << diag;
    for (const auto& s : c.says) EXPECT_THAT(diag, HasSubstr(s)) << cmd;
  }
  EXPECT_FALSE(std::filesystem::exists(cache() / "journal.jsonl")) << "a bad experiment started a run";
}

INSTANTIATE_TEST_SUITE_P(E2E, BadInputCase, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<BadInput>& i) { return i.param.name; });

}  // namespace
}  // namespace qsweep::testing
