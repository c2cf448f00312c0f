#include "model/tokenizer/chat_template.h"

#include <openssl/evp.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "model/tokenizer/utf8.h"
#include "model/util/python_str.h"

namespace qsweep::model {
#include "model/tokenizer/chat_template_known.inc"
}  // namespace qsweep::model

namespace qsweep::model {

namespace {

constexpr const char* k_alternate =
    "Conversation roles must alternate user/assistant/user/assistant/...";

std::string normalize_template(std::string s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') continue;
    out += s[i];
  }
  const size_t b = out.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  const size_t e = out.find_last_not_of(" \t\r\n");
  return out.substr(b, e - b + 1);
}

// {% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %} raise
void check_alternation(const std::vector<ChatMessage>& msgs, size_t first) {
  for (size_t i = first; i < msgs.size(); ++i) {
    if ((msgs[i].role == "user") != ((i - first) % 2 == 0)) throw std::runtime_error(k_alternate);
  }
}

void require_messages(const std::vector<ChatMessage>& m, ChatFamily f) {
  // The template reads messages[0]['role']: Jinja fails on an empty list.
  if (m.empty()) {
    throw std::runtime_error(std::string("the ") + chat_family_name(f) +
                             " chat template needs at least one message");
  }
}

std::string render_llama2(const std::vector<ChatMessage>& m, const std::string& bos,
                          const std::string& eos) {
  require_messages(m, ChatFamily::kLlama2);
  const bool has_system = m[0].role == "system";
  const size_t first = has_system ? 1 : 0;
  check_alternation(m, first);
  std::string out;
  for (size_t i = first; i < m.size(); ++i) {
    std::string content = m[i].content;
    if (i == first && has_system) {
      content = "<<SYS>>\n" + m[0].content + "\n<</SYS>>\n\n" + m[i].content;
    }
    if (m[i].role == "user") {
      out += bos + "[INST] " + python_strip(content) + " [/INST]";
    } else if (m[i].role == "assistant") {
      out += " " + python_strip(content) + " " + eos;
    }
  }
  return out;  // the template has no generation prompt
}

std::string render_llama3(const std::vector<ChatMessage>& m, bool gen, const std::string& bos) {
  std::string out;
  for (size_t i = 0; i < m.size(); ++i) {
    if (i == 0) out += bos;
    out += "<|start_header_id|>" + m[i].role + "<|end_header_id|>\n\n" +
           python_strip(m[i].content) + "<|eot_id|>";
  }
  if (gen) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

std::string render_gemma(const std::vector<ChatMessage>& m, bool gen, const std::string& bos) {
  require_messages(m, ChatFamily::kGemma);
  std::string out = bos;
  std::string first_user_prefix;
  size_t first = 0;
  if (m[0].role == "system") {
    first_user_prefix = m[0].content + "\n\n";
    first = 1;
  }
  check_alternation(m, first);
  for (size_t i = first; i < m.size(); ++i) {
    const std::string role = m[i].role == "assistant" ? "model" : m[i].role;
    out += "<start_of_turn>" + role + "\n" + (i == first ? first_user_prefix : std::string());
    out += python_strip(m[i].content);
    out += "<end_of_turn>\n";
  }
  if (gen) out += "<start_of_turn>model\n";
  return out;
}

// Messages the official templates would render as tool turns, which qsweep
// does not implement.
void reject_tool_messages(const std::vector<ChatMessage>& m, ChatFamily f) {
  for (const auto& msg : m) {
    if (msg.role == "tool" || msg.role == "ipython") {
      throw std::runtime_error(std::string("the ") + chat_family_name(f) +
                               " chat template: tool messages are not supported (role '" +
                               msg.role + "')");
    }
  }
}

// meta-llama/Llama-3.1-8B-Instruct without tools: the system block always
// appears (date lines + the trimmed system message, or nothing), then one
// header turn per message with its content trimmed.
std::string render_llama31(const std::vector<ChatMessage>& m, bool gen, const std::string& bos,
                           const std::string& date_string) {
  require_messages(m, ChatFamily::kLlama31);
  reject_tool_messages(m, ChatFamily::kLlama31);
  size_t first = 0;
  std::string system_message;
  if (m[0].role == "system") {
    system_message = python_strip(m[0].content);
    first = 1;
  }
  std::string out = bos + "<|start_header_id|>system<|end_header_id|>\n\n";
  out += "Cutting Knowledge Date: December 2023\n";
  out += "Today Date: " + date_string + "\n\n";
  out += system_message + "<|eot_id|>";
  for (size_t i = first; i < m.size(); ++i) {
    out += "<|start_header_id|>" + m[i].role + "<|end_header_id|>\n\n" +
           python_strip(m[i].content) + "<|eot_id|>";
  }
  if (gen) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

// google/gemma-7b-it: a system role is rejected, roles alternate from the
// first message, assistant is written as model.
std::string render_gemma1(const std::vector<ChatMessage>& m, bool gen, const std::string& bos) {
  require_messages(m, ChatFamily::kGemma1);
  if (m[0].role == "system") throw std::runtime_error("System role not supported");
  check_alternation(m, 0);
  std::string out = bos;
  for (const auto& msg : m) {
    const std::string role = msg.role == "assistant" ? "model" : msg.role;
    out += "<start_of_turn>" + role + "\n" + python_strip(msg.content) + "<end_of_turn>\n";
  }
  if (gen) out += "<start_of_turn>model\n";
  return out;
}

std::string render_vicuna(const std::vector<ChatMessage>& m, bool gen, const std::string& eos) {
  require_messages(m, ChatFamily::kVicuna);
  std::string out;
  size_t first = 0;
  if (m[0].role == "system") {
    out += m[0].content + " ";
    first = 1;
  } else {
    out +=
        "A chat between a curious user and an artificial intelligence assistant. The assistant "
        "gives helpful, detailed, and polite answers to the user's questions. ";
  }
  for (size_t i = first; i < m.size(); ++i) {
    if (m[i].role == "user") {
      out += "USER: " + m[i].content + " ";
    } else {
      out += "ASSISTANT: " + m[i].content + eos;
    }
  }
  if (gen) out += "ASSISTANT:";
  return out;
}

std::string render_chatml(const std::vector<ChatMessage>& m, bool gen) {
  std::string out;
  for (size_t i = 0; i < m.size(); ++i) {
    if (i == 0 && m[0].role != "system") {
      out += "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n";
    }
    out += "<|im_start|>" + m[i].role + "\n" + m[i].content + "<|im_end|>\n";
  }
  if (gen) out += "<|im_start|>assistant\n";
  return out;
}

std::string config_token(const nlohmann::json& j, const char* key) {
  if (!j.contains(key)) return {};
  const auto& v = j[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    return v["content"].get<std::string>();
  }
  return {};
}

}  // namespace

std::string ChatTemplate::turn_end() const {
  switch (family_) {
    case ChatFamily::kLlama3:
    case ChatFamily::kLlama31:
      return "<|eot_id|>";
    case ChatFamily::kGemma:
    case ChatFamily::kGemma1:
      return "<end_of_turn>";
    case ChatFamily::kChatML:
      return "<|im_end|>";
    case ChatFamily::kLlama2:
    case ChatFamily::kVicuna:
      return eos_;
  }
  return eos_;
}

const char* chat_family_name(ChatFamily f) {
  switch (f) {
    case ChatFamily::kLlama2:
      return "llama2";
    case ChatFamily::kLlama3:
      return "llama3";
    case ChatFamily::kGemma:
      return "gemma";
    case ChatFamily::kVicuna:
      return "vicuna_v1.1";
    case ChatFamily::kChatML:
      return "chatml";
    case ChatFamily::kLlama31:
      return "llama3.1";
    case ChatFamily::kGemma1:
      return "gemma1";
  }
  return "?";
}

std::optional<ChatFamily> parse_chat_family(std::string_view n) {
  if (n == "llama2") return ChatFamily::kLlama2;
  if (n == "llama3" || n == "llama3_1") return ChatFamily::kLlama3;
  if (n == "gemma" || n == "gemma3") return ChatFamily::kGemma;
  if (n == "vicuna_v1.1" || n == "vicuna") return ChatFamily::kVicuna;
  if (n == "chatml") return ChatFamily::kChatML;
  if (n == "llama3.1" || n == "llama3.1-instruct") return ChatFamily::kLlama31;
  if (n == "gemma1" || n == "gemma-it") return ChatFamily::kGemma1;
  return std::nullopt;
}

std::string chat_family_names() {
  return "llama2, llama3, gemma, vicuna_v1.1, chatml, llama3.1, gemma1";
}

std::string chat_template_sha256(const std::string& jinja) {
  const std::string n = normalize_template(jinja);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), n.data(), n.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), md, &len) != 1) {
    throw std::runtime_error("chat template: SHA-256 failed (OpenSSL)");
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

std::optional<ChatFamily> recognize_chat_template(const std::string& jinja) {
  const std::string n = normalize_template(jinja);
  for (const auto& k : known_templates::k_known) {
    if (normalize_template(k.text) == n) return k.family;
  }
  return recognize_chat_template_sha256(chat_template_sha256(n));
}

std::optional<ChatFamily> recognize_chat_template_sha256(std::string_view sha256) {
  for (const auto& k : known_templates::k_known_hashes) {
    if (sha256 == k.sha256) return k.family;
  }
  return std::nullopt;
}

ChatTemplate ChatTemplate::from_config(const std::string& config_path,
                                       std::optional<ChatFamily> family_if_absent) {
  std::ifstream f(config_path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + config_path);
  std::ostringstream ss;
  ss << f.rdbuf();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(config_path + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw std::runtime_error(config_path + ": not a JSON object");
  const std::string bos = config_token(j, "bos_token"), eos = config_token(j, "eos_token");
  const auto unknown = [&] {
    return std::runtime_error("chat template of " + config_path +
                              " is not one qsweep can render (families: " + chat_family_names() +
                              "); pass chat_template: <family> explicitly");
  };
  if (j.contains("chat_template") && !j["chat_template"].is_null()) {
    const auto& t = j["chat_template"];
    std::string text;
    if (t.is_string()) {
      text = t.get<std::string>();
    } else if (t.is_array()) {  // [{"name": "default", "template": ...}, ...]
      for (const auto& e : t) {
        if (e.is_object() && e.value("name", "") == "default" && e.contains("template") &&
            e["template"].is_string()) {
          text = e["template"].get<std::string>();
        }
      }
      if (text.empty()) throw unknown();
    } else {
      throw unknown();
    }
    const auto fam = recognize_chat_template(text);
    if (!fam) throw unknown();
    return ChatTemplate(*fam, bos, eos);
  }
  if (!family_if_absent) {
    throw std::runtime_error(config_path + " has no chat_template; pass chat_template: <family> (" +
                             chat_family_names() + ")");
  }
  return ChatTemplate(*family_if_absent, bos, eos);
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages,
                                 bool add_generation_prompt) const {
  switch (family_) {
    case ChatFamily::kLlama2:
      return render_llama2(messages, bos_, eos_);
    case ChatFamily::kLlama3:
      return render_llama3(messages, add_generation_prompt, bos_);
    case ChatFamily::kGemma:
      return render_gemma(messages, add_generation_prompt, bos_);
    case ChatFamily::kVicuna:
      return render_vicuna(messages, add_generation_prompt, eos_);
    case ChatFamily::kChatML:
      return render_chatml(messages, add_generation_prompt);
    case ChatFamily::kLlama31:
      return render_llama31(messages, add_generation_prompt, bos_, date_string_);
    case ChatFamily::kGemma1:
      return render_gemma1(messages, add_generation_prompt, bos_);
  }
  return {};
}

}  // namespace qsweep::model
