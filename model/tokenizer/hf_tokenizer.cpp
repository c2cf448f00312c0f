#include "model/tokenizer/hf_tokenizer.h"

#include "model/util/text_file.h"

#include "model/tokenizer/component_json.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "model/tokenizer/tokenizer_json_reader.h"
#include "model/tokenizer/utf8.h"

namespace qsweep::model {

namespace {

using nlohmann::json;


json parse_json(const std::string& text, const std::string& name) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw std::runtime_error(name + ": not valid JSON (truncated or corrupt?): " + e.what());
  }
}

std::string type_of(const json& j) {
  std::string t = component_type(j);
  return t.empty() ? "(no type)" : t;
}

std::string get_str(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

// A tokenizer_config.json token entry: "text" or {"content": "text", ...}.
std::string config_token(const json& j, const char* key) {
  if (!j.contains(key)) return {};
  const json& v = j[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    return v["content"].get<std::string>();
  }
  return {};
}

}  // namespace

std::unique_ptr<HfTokenizer> HfTokenizer::load(const std::string& path) {
  auto tok = parse(read_text_file(path), path);
  const auto cfg_path = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  if (std::filesystem::exists(cfg_path)) {
    const json cfg = parse_json(read_text_file(cfg_path.string()), cfg_path.string());
    tok->set_bos_eos(config_token(cfg, "bos_token"), config_token(cfg, "eos_token"),
                     cfg_path.string());
  }
  return tok;
}

std::unique_ptr<HfTokenizer> HfTokenizer::parse(const std::string& json_text,
                                                const std::string& name) {
  TokenizerJson doc = read_tokenizer_json(json_text, name);
  json& j = doc.rest;
  if (!j.is_object()) throw std::runtime_error(name + ": not a tokenizer.json (not a JSON object)");
  if (!j.contains("model") || !j["model"].is_object()) {
    throw std::runtime_error(name + ": not a tokenizer.json (no \"model\" object)");
  }
  for (const char* key : {"truncation", "padding"}) {
    if (j.contains(key) && !j[key].is_null()) {
      throw std::runtime_error(name + ": \"" + key +
                               "\" settings are not supported by qsweep (set it to null)");
    }
  }
  std::unique_ptr<HfTokenizer> tok(new HfTokenizer);

  // Model.
  json& m = j["model"];
  const std::string model_type = m.contains("type") ? type_of(m) : std::string("BPE");
  if (model_type != "BPE") {
    throw std::runtime_error(name + ": model " + model_type +
                             " is not supported by qsweep (supported models: BPE)");
  }
  const std::string what = name + ": model BPE";
  if (m.contains("dropout") && m["dropout"].is_number() && m["dropout"].get<double>() != 0.0) {
    throw std::runtime_error(what + ": BPE dropout is not supported by qsweep");
  }
  if (!doc.has_vocab) throw std::runtime_error(what + ": missing \"vocab\" object");
  if (!doc.has_merges) throw std::runtime_error(what + ": missing \"merges\" array");
  BpeModel::Options opt;
  if (m.contains("unk_token") && m["unk_token"].is_string())
    opt.unk_token = m["unk_token"].get<std::string>();
  opt.fuse_unk = bool_field(m, "fuse_unk", false);
  opt.byte_fallback = bool_field(m, "byte_fallback", false);
  opt.ignore_merges = bool_field(m, "ignore_merges", false);
  opt.continuing_subword_prefix = get_str(m, "continuing_subword_prefix");
  opt.end_of_word_suffix = get_str(m, "end_of_word_suffix");
  tok->model_ = std::make_unique<BpeModel>(std::move(doc.vocab), doc.merges, opt, what);
  doc.merges = {};

  // Pipeline components.
  tok->normalizer_ = make_normalizer(j.value("normalizer", json()), name);
  tok->pre_tokenizer_ = make_pre_tokenizer(j.value("pre_tokenizer", json()), name);
  tok->decoder_ = make_decoder(j.value("decoder", json()), name);

  // Added tokens.
  std::vector<AddedToken> added;
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    if (!j["added_tokens"].is_array())
      throw std::runtime_error(name + ": \"added_tokens\" is not an array");
    for (const auto& a : j["added_tokens"]) {
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() ||
          !a.contains("content") || !a["content"].is_string()) {
        throw std::runtime_error(name + ": added token " + a.dump() + " lacks id or content");
      }
      AddedToken t;
      t.id = a["id"].get<TokenId>();
      t.content = a["content"].get<std::string>();
      t.single_word = bool_field(a, "single_word", false);
      t.lstrip = bool_field(a, "lstrip", false);
      t.rstrip = bool_field(a, "rstrip", false);
      t.special = bool_field(a, "special", false);
      t.normalized = bool_field(a, "normalized", !t.special);
      added.push_back(std::move(t));
    }
  }
  tok->added_ = std::make_unique<AddedVocabulary>(std::move(added), tok->normalizer_.get());

  // Post-processor: TemplateProcessing (single), ByteLevel (offsets only:
  // nothing to do for ids), Sequence of those.
  bool have_template = false;
  std::function<void(const json&)> post = [&](const json& p) {
    if (p.is_null()) return;
    const std::string t = type_of(p);
    const std::string pwhat = name + ": post_processor " + t;
    if (t == "Sequence") {
      if (!p.contains("processors") || !p["processors"].is_array()) {
        throw std::runtime_error(pwhat + ": missing \"processors\" array");
      }
      for (const auto& q : p["processors"]) post(q);
    } else if (t == "ByteLevel") {
      // Trims offsets only.
    } else if (t == "TemplateProcessing") {
      if (have_template) throw std::runtime_error(pwhat + ": more than one template");
      have_template = true;
      if (!p.contains("single") || !p["single"].is_array()) {
        throw std::runtime_error(pwhat + ": missing \"single\" template");
      }
      const json specials = p.value("special_tokens", json::object());
      for (const auto& item : p["single"]) {
        if (item.contains("Sequence")) {
          tok->template_.push_back({true, {}});
        } else if (item.contains("SpecialToken") && item["SpecialToken"].contains("id")) {
          const std::string sid = item["SpecialToken"]["id"].get<std::string>();
          if (!specials.contains(sid) || !specials[sid].contains("ids")) {
            throw std::runtime_error(pwhat + ": special token " + sid + " has no ids");
          }
          tok->template_.push_back({false, specials[sid]["ids"].get<std::vector<TokenId>>()});
        } else {
          throw std::runtime_error(pwhat + ": unknown template item " + item.dump());
        }
      }
    } else {
      throw std::runtime_error(pwhat +
                               " is not supported by qsweep (supported post-processors: "
                               "TemplateProcessing, ByteLevel, Sequence)");
    }
  };
  post(j.value("post_processor", json()));
  for (const auto& item : tok->template_) {
    if (!item.is_sequence && !item.ids.empty()) {
      tok->bos_id_ = item.ids.front();
      break;
    }
  }
  return tok;
}

void HfTokenizer::set_bos_eos(const std::string& bos, const std::string& eos,
                              const std::string& what) {
  auto lookup = [&](const std::string& t, const char* role) {
    const TokenId id = token_to_id(t);
    if (id < 0)
      throw std::runtime_error(what + ": " + role + " \"" + t + "\" is not in the vocabulary");
    return id;
  };
  if (!bos.empty()) bos_id_ = lookup(bos, "bos_token");
  if (!eos.empty()) eos_id_ = lookup(eos, "eos_token");
}

std::vector<TokenId> HfTokenizer::encode(std::string_view text_in, bool add_special_tokens) const {
  std::string repaired;
  std::string_view text = text_in;
  if (!utf8::valid(text)) {
    repaired = utf8::lossy(text);
    text = repaired;
  }
  std::vector<TokenId> ids;
  std::vector<std::string> pieces;
  for (auto& seg : added_->extract_and_normalize(text)) {
    if (seg.id >= 0) {
      ids.push_back(seg.id);
      continue;
    }
    pieces.clear();
    pieces.push_back(std::move(seg.text));
    if (pre_tokenizer_) pre_tokenizer_->pre_tokenize(pieces);
    for (const auto& p : pieces) model_->tokenize(p, &ids);
  }
  if (!add_special_tokens || template_.empty()) return ids;
  std::vector<TokenId> out;
  out.reserve(ids.size() + 2);
  for (const auto& item : template_) {
    if (item.is_sequence) {
      out.insert(out.end(), ids.begin(), ids.end());
    } else {
      out.insert(out.end(), item.ids.begin(), item.ids.end());
    }
  }
  return out;
}

std::string HfTokenizer::decode(const std::vector<TokenId>& ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (TokenId id : ids) {
    std::string t;
    if (const AddedToken* a = added_->by_id(id)) {
      t = a->content;
    } else if (const std::string* s = model_->id_to_token(id)) {
      t = *s;
    } else {
      continue;  // unknown id
    }
    if (skip_special_tokens && added_->is_special(t)) continue;
    tokens.push_back(std::move(t));
  }
  if (!decoder_) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
    return out;
  }
  decoder_->decode_chain(tokens);
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

TokenId HfTokenizer::token_to_id(std::string_view token) const {
  const TokenId a = added_->token_to_id(token);
  return a >= 0 ? a : model_->token_to_id(token);
}

std::string HfTokenizer::id_to_token(TokenId id) const {
  if (const AddedToken* a = added_->by_id(id)) return a->content;
  if (const std::string* s = model_->id_to_token(id)) return *s;
  return {};
}

size_t HfTokenizer::vocab_size() const {
  return static_cast<size_t>(std::max(model_->max_id(), added_->max_id()) + 1);
}

}  // namespace qsweep::model
