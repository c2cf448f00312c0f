#pragma once
// Calibration sets: documents read from a dataset file, tokenized and sampled
// the way each reference tool does it (SPECS.md A1.1, A2.5, A3.1):
//
//   autoawq        AutoAWQ get_calib_dataset: shuffle the documents (seed),
//                  strip, encode with special tokens (BOS), skip empty ones
//                  and ones longer than seq_len tokens, keep the first
//                  n_samples documents, concatenate them and cut the stream
//                  into floor(total / seq_len) blocks of seq_len.
//   gptq           IST-DASLab datautils (C4 style), bit-exact in its choices:
//                  random.seed(seed); n_samples times random.randint over all
//                  documents until one is longer than seq_len tokens, then a
//                  random seq_len window of it (CPython's generator,
//                  model/util/python_random.h).
//   llmcompressor  llm-compressor examples: shuffle (seed), the first
//                  n_samples documents, each encoded and truncated to seq_len.
//   smoothquant    mit-han-lab/smoothquant generate_act_scales: shuffle
//                  (seed), n_samples documents each truncated to seq_len.
//
// Randomness: `gptq` draws exactly what the IST code draws from the same
// documents and tokenization. The shuffles of autoawq / llmcompressor /
// smoothquant use a std::mt19937_64 Fisher-Yates shuffle: their procedures
// are the references', the documents drawn are not (HF datasets' shuffle is
// numpy's PCG64 permutation), so the same seed picks other documents.
//
// Dataset files: .jsonl (one JSON object per line, text in `text_field`),
// .json (an array of such objects, or of strings), anything else plain text
// with documents separated by blank lines. A `text_field` holding a list of
// {role, content} messages (ultrachat's `messages`) is a conversation: it is
// rendered with the model's chat template and encoded without adding special
// tokens, as llm-compressor's examples do (apply_chat_template(tokenize=False),
// then tokenizer(text, add_special_tokens=False)).

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/tokenizer/chat_template.h"
#include "model/tokenizer/tokenizer.h"

namespace qsweep::quant {

struct CalibConfig {
  std::string preset = "autoawq";  ///< autoawq | gptq | llmcompressor | smoothquant
  int n_samples = 128;
  int seq_len = 512;
  uint64_t seed = 42;
  std::string text_field = "text";
};

/// "" or an error naming the field.
std::string check_calib_config(const CalibConfig& c);

/// One document: plain text, or a conversation (messages non-empty).
struct CalibDocument {
  std::string text;
  std::vector<model::ChatMessage> messages;
  bool is_chat() const { return !messages.empty(); }
};

/// The documents of a dataset file (throws naming the file and line on
/// malformed JSON, a missing text field, or a field that is neither a string
/// nor a list of {role, content} messages).
std::vector<CalibDocument> read_documents(const std::filesystem::path& file,
                                          const std::string& text_field);

struct CalibSet {
  std::vector<std::vector<int>> seqs;  ///< token ids, each 1..seq_len long
  int documents_used = 0;
  int64_t tokens = 0;
};

/// Builds the calibration set. `chat` renders conversations (required when
/// any document is one). Throws when the documents cannot give one (none long
/// enough for `gptq`, too little text for one `autoawq` block).
CalibSet build_calibration(const std::vector<CalibDocument>& docs, const model::Tokenizer& tok,
                           const CalibConfig& cfg, const model::ChatTemplate* chat = nullptr);

}  // namespace qsweep::quant
