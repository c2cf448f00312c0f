#include "pipeline/stage.h"

#include <cstdio>
#include <cstdlib>

namespace qsweep {

const char* param_type_name(ParamType t) {
  switch (t) {
    case ParamType::kString: return "string";
    case ParamType::kInt: return "int";
    case ParamType::kNumber: return "number";
    case ParamType::kBool: return "bool";
    case ParamType::kStringList: return "string list";
    case ParamType::kStringMap: return "string map";
    case ParamType::kAny: return "any";
  }
  return "unknown";
}

void StageRegistry::add(std::unique_ptr<Stage> s) {
  // Two stages of one kind is a programming error in the registration code,
  // not something a user can cause: abort with file:line (STYLE.md).
  if (!s || stages_.count(s->kind())) {
    std::fprintf(stderr, "%s:%d: StageRegistry::add: %s\n", __FILE__, __LINE__,
                 s ? ("kind '" + s->kind() + "' registered twice").c_str() : "null stage");
    std::abort();
  }
  std::string kind = s->kind();
  stages_.emplace(std::move(kind), std::move(s));
}

const Stage* StageRegistry::find(const std::string& kind) const {
  auto it = stages_.find(kind);
  return it == stages_.end() ? nullptr : it->second.get();
}

std::vector<std::string> StageRegistry::kinds() const {
  std::vector<std::string> r;
  for (const auto& [kind, s] : stages_) r.push_back(kind);
  return r;  // sorted: std::map order
}

}  // namespace qsweep
