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

enum class ChatFamily { kLlama2, kLlama3, kGemma, kVicuna, kChatML };

struct ChatMessage {
  std::string role;  ///< "system", "user", "assistant"
  std::string content;
};

/// The family's name ("llama2", "llama3", "gemma", "vicuna_v1.1", "chatml").
const char* chat_family_name(ChatFamily f);
/// Parses a family name; also accepts "llama3_1", "gemma3", "vicuna".
std::optional<ChatFamily> parse_chat_family(std::string_view name);
/// All family names, comma separated (for messages).
std::string chat_family_names();

/// The family whose known template text equals `jinja`, or nullopt.
std::optional<ChatFamily> recognize_chat_template(const std::string& jinja);

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

  ChatFamily family() const { return family_; }
  const std::string& bos_token() const { return bos_; }
  const std::string& eos_token() const { return eos_; }

 private:
  ChatFamily family_;
  std::string bos_, eos_;
};

/// Python's str.strip() (Jinja `trim`): removes leading and trailing
/// whitespace as Python's str.isspace() defines it.
std::string python_strip(std::string_view s);

}  // namespace qsweep::model
