#pragma once
// How lm-eval v0.4.4's HFLM turns text requests into token ids
// (lm_eval/models/huggingface.py, lm_eval/api/model.py), shared by every
// backend that tokenizes on the client side: the embedded engine and the
// OpenAI-compatible backend (which sends these ids to the server, as
// lm-eval's local-completions does with tokenized requests), so both score
// and generate from exactly the same tokens.
//   - encode(s) = tokenizer.encode(s, add_special_tokens = add_bos_token);
//   - encode_pair: the context's trailing whitespace (str.rstrip) moves to
//     the continuation; whole = encode(context + continuation), ctx =
//     encode(rstripped context), cont = whole[len(ctx):]; an empty context
//     scores encode(continuation) after [prefix_token] (BOS, else EOS);
//   - generation prompts keep their last max_length - max_gen_toks tokens
//     (reserve_generation_room) or their last max_length - 1;
//   - a generation is cut before the first occurrence of each stop string in
//     turn (s.split(term)[0]).

#include <functional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "model/backend/backend.h"
#include "model/tokenizer/tokenizer.h"

namespace qsweep::model {

class HflmEncoder {
 public:
  /// `tok` must outlive the encoder; max_length = the model's window.
  HflmEncoder(const Tokenizer& tok, bool add_bos_token, int max_length)
      : tok_(tok), add_bos_(add_bos_token), max_length_(max_length) {}

  using ContextIds = std::unordered_map<std::string, std::vector<int>>;  ///< context -> its ids
  std::vector<int> encode(const std::string& s) const;
  /// (context ids, continuation ids); memo (may be null) shares a question's context.
  std::pair<std::vector<int>, std::vector<int>> encode_pair(const std::string& context,
                                                            const std::string& continuation,
                                                            ContextIds* memo = nullptr) const;
  /// BOS if the tokenizer has one, else EOS (lm-eval prefix_token_id).
  int prefix_token() const;
  /// The prompt ids of a generation request (truncated as above; never empty).
  std::vector<int> generation_prompt(const TextGeneration& r) const;
  /// Non-empty stop strings and the longest one's length.
  static std::vector<std::string> stop_strings(const std::vector<std::string>& until, size_t* longest);
  /// A generation's stop test on the ids generated so far: true when the
  /// decoded tail contains a stop string. Every token decodes to at least one
  /// byte, so a stop string completed by the newest token lies within the
  /// last `longest` tokens; a window a few tokens wider (the first token of a
  /// decoded window may lose its leading space) finds it without decoding
  /// the whole generation at every step (lm-eval's stopping criterion looks
  /// back the same way). `tok` and `stops` must outlive the callback.
  static std::function<bool(const std::vector<int>&)> stop_check(const Tokenizer& tok,
                                                                 const std::vector<std::string>& stops,
                                                                 size_t longest);
  /// text cut before each stop string in turn.
  static std::string cut_at_stops(std::string text, const std::vector<std::string>& stops);
  int max_length() const { return max_length_; }
  bool add_bos_token() const { return add_bos_; }
  const Tokenizer& tokenizer() const { return tok_; }

 private:
  const Tokenizer& tok_;
  bool add_bos_;
  int max_length_;
};

}  // namespace qsweep::model
