#include "model/tokenizer/normalizer.h"

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <vector>

#include "model/tokenizer/pattern.h"

namespace qsweep::model {

namespace {

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts)
      : parts_(std::move(parts)) {}
  void normalize(std::string& s) const override {
    for (const auto& p : parts_) p->normalize(s);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

// Prepends a string to a non-empty text (HF: only when not empty).
class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prepend) : prepend_(std::move(prepend)) {}
  void normalize(std::string& s) const override {
    if (!s.empty()) s.insert(0, prepend_);
  }

 private:
  std::string prepend_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(std::string& s) const override { s = pattern_.replace_all(s, content_); }

 private:
  Pattern pattern_;
  std::string content_;
};

std::string str_field(const nlohmann::json& j, const char* key, const std::string& what) {
  if (!j.contains(key) || !j[key].is_string()) {
    throw std::runtime_error(what + ": missing string field \"" + key + "\"");
  }
  return j[key].get<std::string>();
}

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j, const std::string& file) {
  if (j.is_null()) return nullptr;
  const std::string type = j.is_object() && j.contains("type") && j["type"].is_string()
                               ? j["type"].get<std::string>()
                               : std::string();
  const std::string what = file + ": normalizer " + (type.empty() ? "(no type)" : type);
  if (type == "Sequence") {
    if (!j.contains("normalizers") || !j["normalizers"].is_array()) {
      throw std::runtime_error(what + ": missing \"normalizers\" array");
    }
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (const auto& p : j["normalizers"]) {
      auto n = make_normalizer(p, file);
      if (n) parts.push_back(std::move(n));
    }
    return std::make_unique<SequenceNormalizer>(std::move(parts));
  }
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(str_field(j, "prepend", what));
  if (type == "Replace") {
    if (!j.contains("pattern")) throw std::runtime_error(what + ": missing \"pattern\"");
    return std::make_unique<ReplaceNormalizer>(Pattern(j["pattern"], what),
                                               str_field(j, "content", what));
  }
  throw std::runtime_error(what +
                           " is not supported by qsweep (supported normalizers: Sequence, "
                           "Prepend, Replace)");
}

}  // namespace qsweep::model
