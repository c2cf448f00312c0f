#include "model/backend/hflm_encoding.h"

#include <algorithm>
#include <stdexcept>

#include "model/util/python_str.h"

namespace qsweep::model {

std::vector<int> HflmEncoder::encode(const std::string& s) const {
  const auto ids = tok_.encode(s, add_bos_);
  return {ids.begin(), ids.end()};
}

int HflmEncoder::prefix_token() const {
  if (tok_.bos_id() >= 0) return tok_.bos_id();
  if (tok_.eos_id() >= 0) return tok_.eos_id();
  throw std::runtime_error("the tokenizer has neither a BOS nor an EOS token to start a request with");
}

std::pair<std::vector<int>, std::vector<int>> HflmEncoder::encode_pair(const std::string& context,
                                                                       const std::string& continuation,
                                                                       ContextIds* memo) const {
  if (context.empty()) return {{prefix_token()}, encode(continuation)};
  const std::string_view kept = python_rstrip(context);
  std::vector<int> whole = encode(context + continuation);
  // A question's choices share their context: encode it once per call.
  std::vector<int> ctx;
  if (memo) {
    auto it = memo->find(context);
    if (it == memo->end()) it = memo->emplace(context, encode(std::string(kept))).first;
    ctx = it->second;
  } else {
    ctx = encode(std::string(kept));
  }
  // lm-eval slices whole[len(ctx):] without checking that ctx is a prefix of
  // whole; neither do we (a merge across the boundary changes the split).
  std::vector<int> cont(whole.begin() + std::min(ctx.size(), whole.size()), whole.end());
  return {std::move(ctx), std::move(cont)};
}

std::vector<int> HflmEncoder::generation_prompt(const TextGeneration& r) const {
  std::vector<int> prompt = encode(r.context);
  const int max_ctx = r.reserve_generation_room ? std::max(1, max_length_ - r.max_gen_toks)
                                                : std::max(1, max_length_ - 1);
  if (int(prompt.size()) > max_ctx) prompt.erase(prompt.begin(), prompt.end() - max_ctx);
  if (prompt.empty()) prompt.push_back(prefix_token());
  return prompt;
}

std::vector<std::string> HflmEncoder::stop_strings(const std::vector<std::string>& until, size_t* longest) {
  std::vector<std::string> stops;
  *longest = 0;
  for (const auto& s : until)
    if (!s.empty()) {
      stops.push_back(s);
      *longest = std::max(*longest, s.size());
    }
  return stops;
}

std::function<bool(const std::vector<int>&)> HflmEncoder::stop_check(const Tokenizer& tok,
                                                                    const std::vector<std::string>& stops,
                                                                    size_t longest) {
  const size_t window = longest + 8;
  return [&tok, &stops, window](const std::vector<int>& gen) {
    if (stops.empty()) return false;
    const size_t from = gen.size() > window ? gen.size() - window : 0;
    const std::string text = tok.decode({gen.begin() + long(from), gen.end()}, false);
    for (const auto& s : stops)
      if (text.find(s) != std::string::npos) return true;
    return false;
  };
}

std::string HflmEncoder::cut_at_stops(std::string s, const std::vector<std::string>& stops) {
  for (const auto& term : stops) s = s.substr(0, s.find(term));
  return s;
}

}  // namespace qsweep::model
