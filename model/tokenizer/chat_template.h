#pragma once
// Chat templates: renders a conversation as Hugging Face transformers'
// apply_chat_template renders the known Jinja templates of the families qsweep
// evaluates, with one built-in C++ renderer per family instead of a Jinja
// interpreter. A tokenizer_config.json `chat_template` is mapped to a family
// by exact comparison with the template texts qsweep knows (outer whitespace
// and CRLF ignored); an unknown template is an error, never a fallback.
//
// Families (name: template it renders):
//   llama2      the Llama-2-chat template: <s>[INST] <<SYS>>...<</SYS>> ... [/INST]
//   llama3      Llama 3 header tokens (the template of ../shared/data
//               tokenizers/llama3_1/tokenizer_config.json)
//   gemma       Gemma 3 turns, system merged into the first user turn
//   vicuna_v1.1 FastChat's vicuna_v1.1 conversation (USER: ... ASSISTANT:)
//   chatml      <|im_start|>role ... <|im_end|> with a default system prompt
//   llama3.1    the official meta-llama/Llama-3.1-{8B,70B,405B}-Instruct
//               template: a system block with "Cutting Knowledge Date:
//               December 2023" and "Today Date: <date_string>" (default
//               "26 Jul 2024", see set_date_string), then header turns; no tools
//   gemma1      the official google/gemma-{2b,7b}-it template: no system role,
//               roles alternate, assistant -> model
//
// The official Hub templates (llama3.1, gemma1) are third-party text that
// qsweep does not store: they are recognized by the SHA-256 of the normalized
// template (CRLF -> LF, outer whitespace stripped); the others by their text.
//
// Errors: functions here throw std::runtime_error; a conversation a template
// rejects (e.g. roles that do not alternate) throws with the template's own
// message, as raise_exception does in Jinja.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer/tokenizer.h"

namespace qsweep::model {

enum class ChatFamily { kLlama2, kLlama3, kGemma, kVicuna, kChatML, kLlama31, kGemma1 };

struct ChatMessage {
  std::string role;  ///< "system", "user", "assistant"
  std::string content;
};

/// The family's name ("llama2", "llama3", "gemma", "vicuna_v1.1", "chatml",
/// "llama3.1", "gemma1").
const char* chat_family_name(ChatFamily f);
/// Parses a family name; also accepts "llama3_1" (= llama3: the template of
/// ../shared/data/tokenizers/llama3_1), "gemma3", "vicuna",
/// "llama3.1-instruct", "gemma-it".
std::optional<ChatFamily> parse_chat_family(std::string_view name);
/// All family names, comma separated (for messages).
std::string chat_family_names();

/// The family whose known template text (or, for the official Hub templates,
/// whose SHA-256) equals that of `jinja` after normalization, or nullopt.
std::optional<ChatFamily> recognize_chat_template(const std::string& jinja);
/// Lower-case hex SHA-256 of the normalized template (CRLF -> LF, outer
/// spaces, tabs, CRs and newlines stripped): the key of the official templates.
std::string chat_template_sha256(const std::string& jinja);
/// The official template family whose SHA-256 (chat_template_sha256) is `sha256`.
std::optional<ChatFamily> recognize_chat_template_sha256(std::string_view sha256);

/// A family with the special token strings its template uses.
class ChatTemplate {
 public:
  ChatTemplate(ChatFamily family, std::string bos_token, std::string eos_token)
      : family_(family), bos_(std::move(bos_token)), eos_(std::move(eos_token)) {}

  /// Reads tokenizer_config.json: its `chat_template` must be a known one
  /// (else an error naming the file and the families); with no chat_template
  /// the family is `family_if_absent` (the model family) or, when that is
  /// empty, an error. bos/eos come from the config's bos_token / eos_token.
  static ChatTemplate from_config(const std::string& config_path,
                                  std::optional<ChatFamily> family_if_absent);

  /// The prompt text, exactly as apply_chat_template(messages, tokenize=False,
  /// add_generation_prompt=...) renders it.
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;
  /// The prompt's ids, as apply_chat_template(tokenize=True): the rendered
  /// text encoded without adding special tokens (the template has them).
  std::vector<TokenId> encode(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                              bool add_generation_prompt) const {
    return tok.encode(render(messages, add_generation_prompt), false);
  }

  /// The text that ends an assistant turn in this family ("<|eot_id|>",
  /// "<end_of_turn>", "<|im_end|>", or the EOS token for llama2 / vicuna):
  /// a generation stops there (FastChat's conversation stop string).
  std::string turn_end() const;

  ChatFamily family() const { return family_; }
  const std::string& bos_token() const { return bos_; }
  const std::string& eos_token() const { return eos_; }

  /// llama3.1 only: the "Today Date: " text, as apply_chat_template's
  /// `date_string` keyword (the template's default is "26 Jul 2024", which
  /// transformers renders unless the caller passes date_string).
  void set_date_string(std::string d) { date_string_ = std::move(d); }
  const std::string& date_string() const { return date_string_; }
  static constexpr const char* k_default_date_string = "26 Jul 2024";

 private:
  ChatFamily family_;
  std::string bos_, eos_;
  std::string date_string_ = k_default_date_string;
};

}  // namespace qsweep::model
