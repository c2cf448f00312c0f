#include "model/tokenizer/decoder.h"

#include "model/tokenizer/component_json.h"

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "model/tokenizer/byte_level.h"
#include "model/tokenizer/pattern.h"
#include "model/tokenizer/utf8.h"

namespace qsweep::model {

namespace {

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts)
      : parts_(std::move(parts)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& p : parts_) p->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) t = pattern_.replace_all(t, content_);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

// Runs of "<0xNN>" tokens become their bytes when those form valid UTF-8,
// else one U+FFFD per byte (HF ByteFallback).
class ByteFallbackDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string bytes;
    auto flush = [&] {
      if (bytes.empty()) return;
      if (utf8::valid(bytes)) {
        out.push_back(bytes);
      } else {
        for (size_t i = 0; i < bytes.size(); ++i) out.emplace_back("\xEF\xBF\xBD");
      }
      bytes.clear();
    };
    for (auto& t : tokens) {
      int b = -1;
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') b = hex_byte(t[3], t[4]);
      if (b >= 0) {
        bytes += static_cast<char>(b);
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }

 private:
  static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  static int hex_byte(char a, char b) {
    const int x = hex_digit(a), y = hex_digit(b);
    return x < 0 || y < 0 ? -1 : x * 16 + y;
  }
};

class FuseDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

// Removes up to `start` leading and `stop` trailing `content` characters from
// every token.
class StripDecoder : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    const size_t n = content_.size();
    for (auto& t : tokens) {
      size_t b = 0, e = t.size();
      for (size_t k = 0; k < start_ && e - b >= n && t.compare(b, n, content_) == 0; ++k) b += n;
      for (size_t k = 0; k < stop_ && e - b >= n && t.compare(e - n, n, content_) == 0; ++k) e -= n;
      t = t.substr(b, e - b);
    }
  }

 private:
  std::string content_;  ///< one character (UTF-8)
  size_t start_, stop_;
};

// Maps byte-level characters back to bytes over all tokens at once, then
// repairs invalid UTF-8 (from_utf8_lossy). A token with a character outside
// the byte alphabet (an added token such as "<|eot_id|>" is inside it; one
// with other characters is not) contributes its raw bytes.
class ByteLevelDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    std::string tok_bytes;
    for (const auto& t : tokens) {
      tok_bytes.clear();
      bool ok = true;
      for (size_t i = 0; i < t.size();) {
        size_t len;
        const uint32_t cp = utf8::decode(t, i, &len);
        i += len;
        const int b = byte_level::char_to_byte(cp);
        if (b < 0) {
          ok = false;
          break;
        }
        tok_bytes += static_cast<char>(b);
      }
      bytes += ok ? tok_bytes : t;
    }
    tokens.assign(1, utf8::lossy(bytes));
  }
};

}  // namespace

std::unique_ptr<Decoder> make_decoder(const nlohmann::json& j, const std::string& file) {
  if (j.is_null()) return nullptr;
  const std::string type = component_type(j);
  const std::string what = file + ": decoder " + (type.empty() ? "(no type)" : type);
  if (type == "Sequence") {
    auto parts = sequence_parts<Decoder>(j, "decoders", what,
                                         [&](const nlohmann::json& p) { return make_decoder(p, file); });
    return std::make_unique<SequenceDecoder>(std::move(parts));
  }
  if (type == "Replace") {
    if (!j.contains("pattern")) throw std::runtime_error(what + ": missing \"pattern\"");
    return std::make_unique<ReplaceDecoder>(Pattern(j["pattern"], what),
                                            str_field(j, "content", what));
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    return std::make_unique<StripDecoder>(
        str_field(j, "content", what), size_field(j, "start", what), size_field(j, "stop", what));
  }
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  throw std::runtime_error(what +
                           " is not supported by qsweep (supported decoders: Sequence, "
                           "Replace, ByteFallback, Fuse, Strip, ByteLevel)");
}

}  // namespace qsweep::model
