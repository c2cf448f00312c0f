#include "model/tokenizer/bpe_model.h"

#include <cstdio>
#include <queue>
#include <stdexcept>

#include "model/tokenizer/utf8.h"

namespace qsweep::model {

BpeModel::BpeModel(std::vector<std::pair<std::string, TokenId>> vocab,
                   const std::vector<std::pair<std::string, std::string>>& merges, Options options,
                   const std::string& what)
    : options_(std::move(options)) {
  vocab_.reserve(vocab.size() * 2);
  TokenId max_id = -1;
  for (auto& [tok, id] : vocab) {
    if (id < 0) throw std::runtime_error(what + ": negative id for token " + tok);
    max_id = std::max(max_id, id);
  }
  vocab_r_.resize(max_id + 1);
  has_id_.assign(max_id + 1, false);
  for (auto& [tok, id] : vocab) {
    vocab_r_[id] = tok;
    has_id_[id] = true;
    vocab_.emplace(std::move(tok), id);
  }
  merges_.reserve(merges.size() * 2);
  const std::string& prefix = options_.continuing_subword_prefix;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    const TokenId a_id = token_to_id(a), b_id = token_to_id(b);
    if (a_id < 0 || b_id < 0) {
      throw std::runtime_error(what + ": merge " + std::to_string(rank) + " (\"" + a + "\" \"" + b +
                               "\") names a token that is not in the vocabulary");
    }
    // With a continuing-subword prefix the right part loses it when merged.
    std::string merged = a;
    if (!prefix.empty() && b.compare(0, prefix.size(), prefix) == 0) {
      merged += b.substr(prefix.size());
    } else {
      merged += b;
    }
    const TokenId m_id = token_to_id(merged);
    if (m_id < 0) {
      throw std::runtime_error(what + ": merge " + std::to_string(rank) + " (\"" + a + "\" \"" + b +
                               "\") makes a token that is not in the vocabulary");
    }
    // A repeated pair keeps its last rank, as the HF builder's map does.
    merges_[pair_key(a_id, b_id)] = Merge{static_cast<uint32_t>(rank), m_id};
  }
  if (options_.unk_token) {
    unk_id_ = token_to_id(*options_.unk_token);
    if (unk_id_ < 0) {
      throw std::runtime_error(what + ": unk_token \"" + *options_.unk_token +
                               "\" is not in the vocabulary");
    }
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    byte_ids_[b] = options_.byte_fallback ? token_to_id(name) : -1;
  }
}

TokenId BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(std::string(token));
  return it == vocab_.end() ? -1 : it->second;
}

const std::string* BpeModel::id_to_token(TokenId id) const {
  if (id < 0 || static_cast<size_t>(id) >= vocab_r_.size() || !has_id_[id]) return nullptr;
  return &vocab_r_[id];
}

void BpeModel::tokenize(std::string_view word, std::vector<TokenId>* out) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    const TokenId id = token_to_id(word);
    if (id >= 0) {
      out->push_back(id);
      return;
    }
  }
  const bool cacheable = word.size() <= k_cache_max_word;
  if (cacheable) {
    std::shared_lock lock(cache_mu_);
    auto it = cache_.find(std::string(word));
    if (it != cache_.end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = out->size();
  merge_word(word, out);
  if (cacheable) {
    std::unique_lock lock(cache_mu_);
    if (cache_.size() < k_cache_capacity) {
      cache_.emplace(std::string(word), std::vector<TokenId>(out->begin() + first, out->end()));
    }
  }
}

namespace {
// One symbol of a word being merged: a doubly linked list in a vector.
// Invariant: len == 0 marks a symbol merged into its left neighbour.
struct Symbol {
  TokenId c;
  int prev;  ///< -1: first
  int next;  ///< -1: last
  uint32_t len;
};
struct Candidate {
  uint32_t rank;
  int pos;
  TokenId new_id;
  // priority_queue is a max-heap: "less" means lower priority, i.e. higher
  // rank, then higher position.
  bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};
}  // namespace

void BpeModel::merge_word(std::string_view w, std::vector<TokenId>* out) const {
  std::vector<Symbol> syms;
  syms.reserve(w.size());
  auto add = [&](TokenId c, uint32_t len) {
    const int n = static_cast<int>(syms.size());
    if (n > 0) syms.back().next = n;
    syms.push_back(Symbol{c, n - 1, -1, len});
  };
  TokenId unk = -1;  // pending unk symbol (for fuse_unk)
  uint32_t unk_len = 0;
  std::string s;
  for (size_t i = 0; i < w.size();) {
    const size_t n = utf8::char_len(w, i);
    const bool is_first = i == 0, is_last = i + n == w.size();
    s.clear();
    if (!is_first) s += options_.continuing_subword_prefix;
    s.append(w.substr(i, n));
    if (is_last) s += options_.end_of_word_suffix;
    i += n;
    auto it = vocab_.find(s);
    if (it != vocab_.end()) {
      if (unk >= 0) {
        add(unk, unk_len);
        unk = -1;
      }
      add(it->second, static_cast<uint32_t>(n));
      continue;
    }
    if (options_.byte_fallback) {
      bool all = true;
      for (unsigned char b : s) all = all && byte_ids_[b] >= 0;
      if (all) {
        // As in HF, a pending unk is not flushed before byte tokens.
        for (unsigned char b : s) add(byte_ids_[b], 1);
        continue;
      }
    }
    if (unk_id_ >= 0) {
      if (unk >= 0 && options_.fuse_unk) {
        unk_len += static_cast<uint32_t>(n);
      } else {
        if (unk >= 0) add(unk, unk_len);
        unk = unk_id_;
        unk_len = static_cast<uint32_t>(n);
      }
    }
  }
  if (unk >= 0) add(unk, unk_len);

  std::priority_queue<Candidate> queue;
  for (size_t i = 0; i + 1 < syms.size(); ++i) {
    auto it = merges_.find(pair_key(syms[i].c, syms[i + 1].c));
    if (it != merges_.end()) queue.push({it->second.rank, static_cast<int>(i), it->second.new_id});
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& cur = syms[top.pos];
    if (cur.len == 0 || cur.next == -1) continue;
    const Symbol right = syms[cur.next];
    // A stale entry: the pair at this position is no longer the one queued.
    auto it = merges_.find(pair_key(cur.c, right.c));
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;
    const int right_pos = cur.next;
    cur.c = top.new_id;
    cur.len += right.len;
    cur.next = right.next;
    syms[right_pos].len = 0;
    if (right.next >= 0) syms[right.next].prev = top.pos;
    if (cur.prev >= 0) {
      auto p = merges_.find(pair_key(syms[cur.prev].c, cur.c));
      if (p != merges_.end()) queue.push({p->second.rank, cur.prev, p->second.new_id});
    }
    if (cur.next >= 0) {
      auto p = merges_.find(pair_key(cur.c, syms[cur.next].c));
      if (p != merges_.end()) queue.push({p->second.rank, top.pos, p->second.new_id});
    }
  }
  for (const Symbol& sym : syms) {
    if (sym.len != 0) out->push_back(sym.c);
  }
}

}  // namespace qsweep::model
