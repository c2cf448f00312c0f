#include "model/tokenizer/pre_tokenizer.h"

#include "model/tokenizer/component_json.h"

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "model/tokenizer/byte_level.h"
#include "model/tokenizer/pattern.h"

namespace qsweep::model {

namespace {

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts)
      : parts_(std::move(parts)) {}
  void pre_tokenize(std::vector<std::string>& pieces) const override {
    for (const auto& p : parts_) p->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// HF SplitDelimiterBehavior applied to the (range, is_match) cover of a text;
// returns the ranges to keep.
std::vector<Pattern::Piece> apply_behavior(std::vector<Pattern::Piece> m, Behavior b) {
  std::vector<Pattern::Piece> out;
  switch (b) {
    case Behavior::kIsolated:
      return m;
    case Behavior::kRemoved:
      for (const auto& p : m) {
        if (!p.is_match) out.push_back(p);
      }
      return out;
    case Behavior::kMergedWithPrevious: {
      bool prev_match = false;
      for (const auto& p : m) {
        if (p.is_match && !prev_match && !out.empty()) {
          out.back().end = p.end;
        } else {
          out.push_back({p.start, p.end, false});
        }
        prev_match = p.is_match;
      }
      return out;
    }
    case Behavior::kMergedWithNext: {
      bool prev_match = false;
      for (auto it = m.rbegin(); it != m.rend(); ++it) {
        if (it->is_match && !prev_match && !out.empty()) {
          out.back().start = it->start;
        } else {
          out.push_back({it->start, it->end, false});
        }
        prev_match = it->is_match;
      }
      return {out.rbegin(), out.rend()};
    }
    case Behavior::kContiguous: {
      bool prev_match = false;
      for (const auto& p : m) {
        if (p.is_match == prev_match && !out.empty()) {
          out.back().end = p.end;
        } else {
          out.push_back({p.start, p.end, false});
        }
        prev_match = p.is_match;
      }
      return out;
    }
  }
  return out;
}

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern pattern, Behavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<std::string>& pieces) const override {
    std::vector<std::string> out;
    out.reserve(pieces.size());
    for (const std::string& s : pieces) {
      auto m = pattern_.find_matches(s);
      if (invert_) {
        for (auto& p : m) p.is_match = !p.is_match;
      }
      for (const auto& p : apply_behavior(std::move(m), behavior_)) {
        if (p.end > p.start) out.emplace_back(s, p.start, p.end - p.start);
      }
    }
    pieces = std::move(out);
  }

 private:
  Pattern pattern_;
  Behavior behavior_;
  bool invert_;
};

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex, const std::string& what)
      : add_prefix_space_(add_prefix_space) {
    if (use_regex) {
      split_ = std::make_unique<SplitPreTokenizer>(
          Pattern(
              nlohmann::json{{"Regex",
                              "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|"
                              "\\s+(?!\\S)|\\s+"}},
              what),
          Behavior::kIsolated, false);
    }
  }
  void pre_tokenize(std::vector<std::string>& pieces) const override {
    if (add_prefix_space_) {
      for (auto& s : pieces) {
        if (s.empty() || s[0] != ' ') s.insert(s.begin(), ' ');
      }
    }
    if (split_) split_->pre_tokenize(pieces);
    for (auto& s : pieces) s = byte_level::encode(s);
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<SplitPreTokenizer> split_;  ///< null: use_regex false
};

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j, const std::string& file) {
  if (j.is_null()) return nullptr;
  const std::string type = component_type(j);
  const std::string what = file + ": pre_tokenizer " + (type.empty() ? "(no type)" : type);
  if (type == "Sequence") {
    auto parts = sequence_parts<PreTokenizer>(
        j, "pretokenizers", what, [&](const nlohmann::json& p) { return make_pre_tokenizer(p, file); });
    return std::make_unique<SequencePreTokenizer>(std::move(parts));
  }
  if (type == "Split") {
    if (!j.contains("pattern")) throw std::runtime_error(what + ": missing \"pattern\"");
    const std::string b = j.contains("behavior") && j["behavior"].is_string()
                              ? j["behavior"].get<std::string>()
                              : std::string();
    Behavior behavior;
    if (b == "Removed")
      behavior = Behavior::kRemoved;
    else if (b == "Isolated")
      behavior = Behavior::kIsolated;
    else if (b == "MergedWithPrevious")
      behavior = Behavior::kMergedWithPrevious;
    else if (b == "MergedWithNext")
      behavior = Behavior::kMergedWithNext;
    else if (b == "Contiguous")
      behavior = Behavior::kContiguous;
    else
      throw std::runtime_error(what + ": unknown behavior \"" + b + "\"");
    return std::make_unique<SplitPreTokenizer>(Pattern(j["pattern"], what), behavior,
                                               bool_field(j, "invert", false));
  }
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPreTokenizer>(bool_field(j, "add_prefix_space", true),
                                                   bool_field(j, "use_regex", true), what);
  }
  throw std::runtime_error(what +
                           " is not supported by qsweep (supported pre-tokenizers: "
                           "Sequence, Split, ByteLevel)");
}

}  // namespace qsweep::model
