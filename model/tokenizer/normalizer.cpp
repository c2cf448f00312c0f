#include "model/tokenizer/normalizer.h"

#include "model/tokenizer/component_json.h"

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

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j, const std::string& file) {
  if (j.is_null()) return nullptr;
  const std::string type = component_type(j);
  const std::string what = file + ": normalizer " + (type.empty() ? "(no type)" : type);
  if (type == "Sequence") {
    auto parts = sequence_parts<Normalizer>(
        j, "normalizers", what, [&](const nlohmann::json& p) { return make_normalizer(p, file); });
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
