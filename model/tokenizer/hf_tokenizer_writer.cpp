#include "model/tokenizer/hf_tokenizer_writer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <tuple>
#include <unordered_map>

#include "model/tokenizer/utf8.h"

namespace qsweep::model {

using nlohmann::json;

json bpe_tokenizer_json(const ScoredVocab& v) {
  const size_t n = v.pieces.size();
  if (v.scores.size() != n || v.mergeable.size() != n) {
    throw std::runtime_error("bpe_tokenizer_json: pieces, scores and mergeable differ in size");
  }
  std::unordered_map<std::string, TokenId> ids;
  for (size_t i = 0; i < n; ++i) {
    if (!utf8::valid(v.pieces[i])) {
      throw std::runtime_error("piece " + std::to_string(i) +
                               " is not valid UTF-8: it cannot be written to tokenizer.json");
    }
    ids.emplace(v.pieces[i], static_cast<TokenId>(i));
  }
  auto mergeable_id = [&](const std::string& s) -> TokenId {
    auto it = ids.find(s);
    return it != ids.end() && v.mergeable[it->second] ? it->second : -1;
  };
  struct M {
    float score;
    TokenId merged, a, b;
  };
  std::vector<M> merges;
  for (size_t id = 0; id < n; ++id) {
    if (!v.mergeable[id]) continue;
    const std::string& p = v.pieces[id];
    for (size_t k = 1; k < p.size(); ++k) {
      const TokenId a = mergeable_id(p.substr(0, k));
      if (a < 0) continue;
      const TokenId b = mergeable_id(p.substr(k));
      if (b >= 0) merges.push_back({v.scores[id], static_cast<TokenId>(id), a, b});
    }
  }
  std::sort(merges.begin(), merges.end(), [](const M& x, const M& y) {
    return std::tie(y.score, x.merged, x.a, x.b) < std::tie(x.score, y.merged, y.a, y.b);
  });

  json vocab = json::object();
  for (size_t i = 0; i < n; ++i) vocab[v.pieces[i]] = i;
  json jm = json::array();
  for (const M& m : merges) jm.push_back(json::array({v.pieces[m.a], v.pieces[m.b]}));

  json added = json::array();
  for (TokenId id : {v.unk_id, v.bos_id, v.eos_id}) {
    if (id < 0) continue;
    added.push_back({{"id", id},
                     {"content", v.pieces[id]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  std::sort(added.begin(), added.end(),
            [](const json& a, const json& b) { return a["id"] < b["id"]; });

  json normalizer, decoders = json::array();
  if (v.space == " ") {
    normalizer = {{"type", "Prepend"}, {"prepend", " "}};
  } else {
    normalizer = {
        {"type", "Sequence"},
        {"normalizers",
         json::array(
             {{{"type", "Prepend"}, {"prepend", v.space}},
              {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", v.space}}})}};
    decoders.push_back({{"type", "Replace"}, {"pattern", {{"String", v.space}}}, {"content", " "}});
  }
  decoders.push_back({{"type", "ByteFallback"}});
  decoders.push_back({{"type", "Fuse"}});
  decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});

  json post = nullptr;
  if (v.bos_id >= 0) {
    const std::string bos = v.pieces[v.bos_id];
    post = {{"type", "TemplateProcessing"},
            {"single", json::array({{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}},
                                    {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
            {"pair", json::array({{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}},
                                  {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                  {{"SpecialToken", {{"id", bos}, {"type_id", 1}}}},
                                  {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}})},
            {"special_tokens", {{bos, {{"id", bos}, {"ids", {v.bos_id}}, {"tokens", {bos}}}}}}};
  }
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", normalizer},
          {"pre_tokenizer", nullptr},
          {"post_processor", post},
          {"decoder", {{"type", "Sequence"}, {"decoders", decoders}}},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", v.unk_id >= 0 ? json(v.pieces[v.unk_id]) : json(nullptr)},
            {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr},
            {"fuse_unk", v.unk_id >= 0},
            {"byte_fallback", true},
            {"ignore_merges", false},
            {"vocab", vocab},
            {"merges", jm}}}};
}

void write_hf_tokenizer_files(const ScoredVocab& v, const std::string& dir) {
  const json tj = bpe_tokenizer_json(v);
  json cfg = {{"tokenizer_class", "PreTrainedTokenizerFast"},
              {"add_bos_token", v.bos_id >= 0},
              {"add_eos_token", false},
              {"clean_up_tokenization_spaces", false},
              {"model_max_length", 1 << 20}};
  if (v.bos_id >= 0) cfg["bos_token"] = v.pieces[v.bos_id];
  if (v.eos_id >= 0) cfg["eos_token"] = v.pieces[v.eos_id];
  if (v.unk_id >= 0) cfg["unk_token"] = v.pieces[v.unk_id];
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  for (const auto& [name, j] : {std::pair<std::string, const json*>{"tokenizer.json", &tj},
                                {"tokenizer_config.json", &cfg}}) {
    const auto path = std::filesystem::path(dir) / name;
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << j->dump(1) << "\n";
    if (!f) throw std::runtime_error("cannot write " + path.string());
  }
}

}  // namespace qsweep::model
