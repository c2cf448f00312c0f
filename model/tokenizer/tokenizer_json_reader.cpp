#include "model/tokenizer/tokenizer_json_reader.h"

#include <stdexcept>

namespace qsweep::model {

namespace {

using nlohmann::json;

// Builds the DOM of everything but model.vocab / model.merges, which it
// collects into `out`.
class Sax {
 public:
  Sax(TokenizerJson* out, const std::string& name) : out_(out), name_(name) {}

  bool null() { return value(json(nullptr)); }
  bool boolean(bool v) { return value(json(v)); }
  bool number_integer(json::number_integer_t v) { return integer(v) || value(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) {
    return integer(static_cast<int64_t>(v)) || value(json(v));
  }
  bool number_float(json::number_float_t v, const std::string&) {
    if (mode_ == Mode::kVocab) fail("vocab id of " + key_ + " is not an integer");
    return value(json(v));
  }
  bool string(std::string& s) {
    if (mode_ == Mode::kMerges) {
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
        fail("merge \"" + s + "\" is not two tokens");
      }
      out_->merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      return true;
    }
    if (mode_ == Mode::kMergePair) {
      pair_.push_back(std::move(s));
      return true;
    }
    if (mode_ == Mode::kVocab) fail("vocab id of " + key_ + " is not an integer");
    return value(json(std::move(s)));
  }
  bool binary(json::binary_t&) { return fail("binary values are not JSON text"); }

  bool start_object(std::size_t) {
    if (mode_ == Mode::kMerges || mode_ == Mode::kMergePair) return fail("a merge is an object");
    if (mode_ == Mode::kVocab) fail("vocab id of " + key_ + " is not an integer");
    if (at_model_key("vocab")) {
      value(json::object());  // placeholder
      mode_ = Mode::kVocab;
      out_->has_vocab = true;
      return true;
    }
    json* v = value(json::object()) ? last_ : nullptr;
    stack_.push_back(v);
    keys_.emplace_back();
    return true;
  }
  bool key(std::string& k) {
    if (mode_ == Mode::kVocab) {
      key_ = std::move(k);
    } else {
      keys_.back() = std::move(k);
    }
    return true;
  }
  bool end_object() {
    if (mode_ == Mode::kVocab) {
      mode_ = Mode::kNone;
      return true;
    }
    stack_.pop_back();
    keys_.pop_back();
    return true;
  }
  bool start_array(std::size_t) {
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kMergePair;
      pair_.clear();
      return true;
    }
    if (mode_ == Mode::kMergePair) return fail("a merge holds a nested array");
    if (mode_ == Mode::kVocab) fail("vocab id of " + key_ + " is not an integer");
    if (at_model_key("merges")) {
      value(json::array());  // placeholder
      mode_ = Mode::kMerges;
      out_->has_merges = true;
      return true;
    }
    json* v = value(json::array()) ? last_ : nullptr;
    stack_.push_back(v);
    keys_.emplace_back();
    return true;
  }
  bool end_array() {
    if (mode_ == Mode::kMergePair) {
      if (pair_.size() != 2) fail("a merge is not two tokens");
      out_->merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
      mode_ = Mode::kMerges;
      return true;
    }
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kNone;
      return true;
    }
    stack_.pop_back();
    keys_.pop_back();
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
    throw std::runtime_error(name_ + ": not valid JSON (truncated or corrupt?): " + e.what());
  }

 private:
  enum class Mode { kNone, kVocab, kMerges, kMergePair };

  [[noreturn]] bool fail(const std::string& why) {
    throw std::runtime_error(name_ + ": model: " + why);
  }
  // True inside model.vocab: the id of key_.
  bool integer(int64_t v) {
    if (mode_ == Mode::kVocab) {
      if (v < 0 || v > INT32_MAX) fail("vocab id of " + key_ + " is out of range");
      out_->vocab.emplace_back(std::move(key_), static_cast<TokenId>(v));
      return true;
    }
    if (mode_ != Mode::kNone) fail("a merge holds a number");
    return false;
  }
  // True when the next value is the member `k` of the top-level "model".
  bool at_model_key(const char* k) const {
    return stack_.size() == 2 && keys_.size() == 2 && keys_[0] == "model" && keys_[1] == k;
  }
  // Stores v in the current container (or as the root); last_ points at it.
  bool value(json v) {
    if (mode_ != Mode::kNone)
      fail("unexpected " + std::string(v.type_name()) + " in vocab or merges");
    if (stack_.empty()) {
      out_->rest = std::move(v);
      last_ = &out_->rest;
      return true;
    }
    json* parent = stack_.back();
    if (parent->is_array()) {
      parent->push_back(std::move(v));
      last_ = &parent->back();
    } else {
      last_ = &((*parent)[keys_.back()] = std::move(v));
    }
    return true;
  }

  TokenizerJson* out_;
  const std::string& name_;
  std::vector<json*> stack_;       ///< open containers of the DOM
  std::vector<std::string> keys_;  ///< per open container: the current key ("" in arrays)
  json* last_ = nullptr;           ///< the value stored last
  Mode mode_ = Mode::kNone;
  std::string key_;                ///< kVocab: the token whose id comes next
  std::vector<std::string> pair_;  ///< kMergePair: the tokens so far
};

}  // namespace

TokenizerJson read_tokenizer_json(const std::string& text, const std::string& name) {
  TokenizerJson out;
  Sax sax(&out, name);
  json::sax_parse(text, &sax);
  return out;
}

}  // namespace qsweep::model
