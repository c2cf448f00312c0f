#pragma once
// Writes a synthetic sweep experiment: `n_models` x `n_recipes` quantize nodes
// and n_models x n_recipes x n_tasks score nodes (each consuming its
// quantize node), all `command` stages running `true`.

#include <filesystem>
#include <fstream>
#include <string>

namespace qsweep::bench {

inline void write_sweep(const std::filesystem::path& file, int n_models, int n_recipes, int n_tasks) {
  std::ofstream f(file);
  f << "version: 1\nname: synthetic\nmodels:\n";
  for (int i = 0; i < n_models; ++i) f << "  m" << i << ": {source: hf://org/m" << i << "}\n";
  f << "recipes:\n";
  for (int i = 0; i < n_recipes; ++i) f << "  r" << i << ": {bits: " << (i % 2 ? 4 : 8) << ", group: " << 32 * (i + 1) << "}\n";
  f << "tasks:\n";
  for (int i = 0; i < n_tasks; ++i) f << "  t" << i << ": {shots: " << i % 5 << "}\n";
  f << R"(stages:
  - name: quantize
    kind: command
    matrix: {model: "*", recipe: "*"}
    params:
      argv: [true, "${model.source}", "${recipe.bits}", "${recipe.group}", "${output_dir}"]
  - name: score
    kind: command
    matrix: {model: "*", recipe: "*", task: "*"}
    inputs: {q: "quantize[${model},${recipe}]"}
    params:
      argv: [true, "${inputs.q}", "${task}", "${task.shots}", "${output_dir}"]
)";
}

}  // namespace qsweep::bench
