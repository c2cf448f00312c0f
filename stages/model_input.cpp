#include "stages/model_input.h"

#include <stdexcept>
#include <vector>

#include "scoring/task.h"

namespace qsweep {

namespace fs = std::filesystem;

fs::path find_model_dir(const fs::path& root) {
  std::error_code ec;
  if (fs::is_regular_file(root / "config.json", ec)) return root;
  if (!fs::is_directory(root, ec))
    throw std::runtime_error("input checkpoint: not a folder: " + root.string());
  std::vector<fs::path> found;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file(ec) && it->path().filename() == "config.json")
      found.push_back(it->path().parent_path());
  if (found.size() != 1)
    throw std::runtime_error(
        "input checkpoint: " + root.string() +
        (found.empty() ? " holds no config.json" : " holds several model folders (config.json)"));
  return found.front();
}

const InputArtifact& single_input(const StageContext& ctx, const std::string& name,
                                  const std::string& what) {
  auto it = ctx.inputs.find(name);
  if (it == ctx.inputs.end() || it->second.items.size() != 1)
    throw std::runtime_error(ctx.node_id + " needs exactly one input `" + name + "` (" + what +
                             ")");
  return it->second.items.front();
}

fs::path find_data_file(const fs::path& path, const std::string& file) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return path;
  if (!file.empty()) {
    const fs::path p = path / file;
    if (!fs::is_regular_file(p, ec))
      throw std::runtime_error("dataset input: " + path.string() + " holds no file '" + file + "'");
    return p;
  }
  std::vector<fs::path> found;
  for (auto it = fs::recursive_directory_iterator(path, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string ext = it->path().extension().string();
    if (it->is_regular_file(ec) && (ext == ".jsonl" || ext == ".json" || ext == ".txt"))
      found.push_back(it->path());
  }
  if (found.size() != 1)
    throw std::runtime_error("dataset input: " + path.string() + " holds " +
                             std::to_string(found.size()) +
                             " .jsonl/.json/.txt files; name one with params.file");
  return found.front();
}

std::string check_task_file_input(const std::string& input, const std::filesystem::path& path) {
  if (input != "task") return {};
  try {
    scoring::load_task_file(path);
  } catch (const std::exception& e) {
    return e.what();
  }
  return {};
}

}  // namespace qsweep
