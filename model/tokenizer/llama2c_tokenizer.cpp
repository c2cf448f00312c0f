#include "model/tokenizer/llama2c_tokenizer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "model/tokenizer/hf_tokenizer_writer.h"

namespace qsweep::model {

std::unique_ptr<Llama2cTokenizer> Llama2cTokenizer::load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::unique_ptr<Llama2cTokenizer> t(new Llama2cTokenizer);
  auto fail = [&](const std::string& why) {
    throw std::runtime_error(path + ": not a llama2.c tokenizer file: " + why);
  };
  if (data.size() < 4) fail("shorter than its 4-byte header");
  int32_t max_len;
  std::memcpy(&max_len, data.data(), 4);
  if (max_len <= 0 || max_len > 1 << 16) fail("max_token_length " + std::to_string(max_len));
  t->max_token_length_ = max_len;
  size_t off = 4;
  while (off < data.size()) {
    const size_t id = t->pieces_.size();
    if (data.size() - off < 8) fail("record " + std::to_string(id) + " is truncated");
    float score;
    int32_t len;
    std::memcpy(&score, data.data() + off, 4);
    std::memcpy(&len, data.data() + off + 4, 4);
    off += 8;
    if (len < 0 || static_cast<size_t>(len) > data.size() - off) {
      fail("record " + std::to_string(id) + " has length " + std::to_string(len) + " past the end");
    }
    t->pieces_.emplace_back(data.data() + off, len);
    t->scores_.push_back(score);
    off += len;
  }
  if (t->pieces_.size() < 259) {
    fail(std::to_string(t->pieces_.size()) +
         " records; at least 259 (specials + 256 bytes) expected");
  }
  for (size_t i = 0; i < t->pieces_.size(); ++i) {
    t->lookup_.emplace(t->pieces_[i], static_cast<TokenId>(i));  // first id of a piece wins
  }
  return t;
}

std::vector<TokenId> Llama2cTokenizer::encode(std::string_view text,
                                              bool add_special_tokens) const {
  std::vector<TokenId> t;
  if (add_special_tokens) t.push_back(bos_id());
  if (!text.empty()) {
    auto it = lookup_.find(" ");
    t.push_back(it == lookup_.end() ? -1 : it->second);  // run.c pushes the lookup result as is
    if (t.back() < 0) t.pop_back();
  }
  // Code points (run.c groups a lead byte with up to 3 continuation bytes).
  for (size_t i = 0; i < text.size();) {
    size_t n = 1;
    while (i + n < text.size() && n < 4 && (static_cast<unsigned char>(text[i + n]) & 0xC0) == 0x80)
      ++n;
    const std::string cp(text.substr(i, n));
    auto it = lookup_.find(cp);
    if (it != lookup_.end()) {
      t.push_back(it->second);
    } else {
      for (unsigned char b : cp) t.push_back(static_cast<TokenId>(b) + 3);
    }
    i += n;
  }
  // Greedy merges. pair_[i] caches the (score, id) of merging t[i] and t[i+1].
  // As in run.c, a leading BOS takes part in the scan (it never merges).
  struct PairInfo {
    float score;
    TokenId id;  ///< -1: the concatenation is not a piece
  };
  auto pair_info = [&](size_t i) -> PairInfo {
    auto it = lookup_.find(pieces_[t[i]] + pieces_[t[i + 1]]);
    return it == lookup_.end() ? PairInfo{0, -1} : PairInfo{scores_[it->second], it->second};
  };
  std::vector<PairInfo> pairs;
  for (size_t i = 0; i + 1 < t.size(); ++i) pairs.push_back(pair_info(i));
  while (true) {
    float best_score = -1e10f;
    int best_idx = -1;
    for (size_t i = 0; i < pairs.size(); ++i) {
      if (pairs[i].id >= 0 && pairs[i].score > best_score) {
        best_score = pairs[i].score;
        best_idx = static_cast<int>(i);
      }
    }
    if (best_idx < 0) break;
    t[best_idx] = pairs[best_idx].id;
    t.erase(t.begin() + best_idx + 1);
    pairs.erase(pairs.begin() + best_idx);
    if (best_idx > 0) pairs[best_idx - 1] = pair_info(best_idx - 1);
    if (static_cast<size_t>(best_idx) < pairs.size()) pairs[best_idx] = pair_info(best_idx);
  }
  return t;
}

std::string Llama2cTokenizer::decode(const std::vector<TokenId>& ids,
                                     bool skip_special_tokens) const {
  std::string out;
  TokenId prev = bos_id();  // every llama2.c sequence starts after BOS
  for (TokenId id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= pieces_.size()) continue;
    const bool special = id == bos_id() || id == eos_id();
    if (special && skip_special_tokens) {
      prev = id;
      continue;
    }
    std::string_view piece = pieces_[id];
    if (prev == bos_id() && !piece.empty() && piece[0] == ' ') piece.remove_prefix(1);
    unsigned int byte;
    char tail;
    if (piece.size() == 6 &&
        std::sscanf(std::string(piece).c_str(), "<0x%02X%c", &byte, &tail) == 2 && tail == '>') {
      out += static_cast<char>(byte);
    } else {
      out.append(piece);
    }
    prev = id;
  }
  return out;
}

TokenId Llama2cTokenizer::token_to_id(std::string_view token) const {
  auto it = lookup_.find(std::string(token));
  return it == lookup_.end() ? -1 : it->second;
}

std::string Llama2cTokenizer::id_to_token(TokenId id) const {
  return id >= 0 && static_cast<size_t>(id) < pieces_.size() ? pieces_[id] : std::string();
}

void write_hf_tokenizer(const Llama2cTokenizer& tok, const std::string& dir) {
  ScoredVocab v;
  v.pieces = tok.pieces();
  v.scores = tok.scores();
  // ids 0..2 (<unk>, BOS, EOS) and 3..258 (bytes) never merge; llama2.c
  // encode never emits <unk> (every byte has a token), so no unk token.
  v.mergeable.assign(v.pieces.size(), true);
  for (size_t i = 0; i < 259 && i < v.pieces.size(); ++i) v.mergeable[i] = false;
  v.bos_id = tok.bos_id();
  v.eos_id = tok.eos_id();
  v.space = " ";
  write_hf_tokenizer_files(v, dir);
}

}  // namespace qsweep::model
