#include "model/tokenizer/added_vocabulary.h"

#include <algorithm>

#include "model/tokenizer/normalizer.h"

namespace qsweep::model {

void AddedVocabulary::Trie::add(const std::string& key, int token) {
  if (key.empty()) return;
  first_byte[static_cast<unsigned char>(key[0])] = true;
  int node = 0;
  for (unsigned char c : key) {
    const uint64_t e = (static_cast<uint64_t>(node) << 8) | c;
    auto it = edges.find(e);
    if (it == edges.end()) {
      const int child = static_cast<int>(terminal.size());
      terminal.push_back(-1);
      edges.emplace(e, child);
      node = child;
    } else {
      node = it->second;
    }
  }
  // The first token with a given content wins (HF keeps one id per content).
  if (terminal[node] < 0) terminal[node] = token;
}

int AddedVocabulary::Trie::longest_at(std::string_view text, size_t pos, size_t* len) const {
  if (!first_byte[static_cast<unsigned char>(text[pos])]) return -1;
  int node = 0, best = -1;
  for (size_t i = pos; i < text.size(); ++i) {
    auto it = edges.find((static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(text[i]));
    if (it == edges.end()) break;
    node = it->second;
    if (terminal[node] >= 0) {
      best = terminal[node];
      *len = i + 1 - pos;
    }
  }
  return best;
}

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer)
    : tokens_(std::move(tokens)), normalizer_(normalizer) {
  // HF builds its tries from the special tokens first, then the others.
  std::vector<int> order(tokens_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::stable_partition(order.begin(), order.end(), [&](int i) { return tokens_[i].special; });
  for (int i : order) {
    const AddedToken& t = tokens_[i];
    if (t.normalized) {
      std::string c = t.content;
      if (normalizer_) normalizer_->normalize(c);
      normalized_trie_.add(c, i);
    } else {
      raw_trie_.add(t.content, i);
    }
  }
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& t = tokens_[i];
    by_id_[t.id] = static_cast<int>(i);
    by_content_[t.content] = t.id;
    if (t.special) special_.insert(t.content);
    max_id_ = std::max(max_id_, t.id);
  }
  ends_with_word_ = std::make_unique<Regex>("\\w$", "added tokens");
  starts_with_word_ = std::make_unique<Regex>("^\\w", "added tokens");
  trailing_space_ = std::make_unique<Regex>("\\s*$", "added tokens");
  leading_space_ = std::make_unique<Regex>("^\\s*", "added tokens");
}

std::vector<AddedVocabulary::Split> AddedVocabulary::find_matches(std::string_view s,
                                                                  const Trie& trie) const {
  std::vector<Split> out;
  size_t start_offset = 0;  // end of the last emitted split
  size_t pos = 0;           // where the leftmost-longest search resumes
  while (pos < s.size()) {
    size_t len = 0;
    const int tok = trie.longest_at(s, pos, &len);
    if (tok < 0) {
      ++pos;
      continue;
    }
    size_t start = pos, stop = pos + len;
    pos = stop;  // a discarded match is not searched again, as with aho-corasick
    const AddedToken& t = tokens_[tok];
    if (t.single_word) {
      const bool start_space = start == 0 || !ends_with_word_->search(s.substr(0, start));
      const bool stop_space = stop == s.size() || !starts_with_word_->search(s.substr(stop));
      if (!start_space || !stop_space) continue;
    }
    if (t.lstrip) {
      const auto m = trailing_space_->find_all(s.substr(0, start));
      const size_t new_start = m.empty() ? start : m.front().first;
      start = std::max(new_start, start_offset);
    }
    if (t.rstrip) {
      const auto m = leading_space_->find_all(s.substr(stop));
      if (!m.empty()) stop += m.front().second;
      pos = stop;
    }
    if (start_offset < start) out.push_back({start_offset, start, -1});
    out.push_back({start, stop, tok});
    start_offset = stop;
  }
  if (start_offset != s.size()) out.push_back({start_offset, s.size(), -1});
  return out;
}

std::vector<AddedVocabulary::Segment> AddedVocabulary::extract_and_normalize(
    std::string_view text) const {
  std::vector<Segment> out;
  for (const Split& a : find_matches(text, raw_trie_)) {
    if (a.token >= 0) {
      out.push_back({std::string(text.substr(a.start, a.end - a.start)), tokens_[a.token].id});
      continue;
    }
    std::string piece(text.substr(a.start, a.end - a.start));
    if (normalizer_) normalizer_->normalize(piece);
    for (const Split& b : find_matches(piece, normalized_trie_)) {
      if (b.end == b.start) continue;
      out.push_back(
          {piece.substr(b.start, b.end - b.start), b.token >= 0 ? tokens_[b.token].id : -1});
    }
  }
  return out;
}

const AddedToken* AddedVocabulary::by_id(TokenId id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

TokenId AddedVocabulary::token_to_id(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  return it == by_content_.end() ? -1 : it->second;
}

}  // namespace qsweep::model
