// Offline readers of the Open LLM Leaderboard v2 data (scoring/leaderboard.h,
// docs/leaderboard_v2.md): BBH with its settings file, GPQA from its
// encrypted zip (in memory), MuSR in the viewer and Hub formats.
#include <zip.h>

#include <memory>
#include <stdexcept>

#include "model/tokenizer/utf8.h"
#include "model/util/text_file.h"
#include "scoring/leaderboard.h"
#include "scoring/readers.h"
#include "scoring/task.h"

namespace qsweep::scoring {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const json& kwarg(const TaskConfig& task, const char* key) {
  if (!task.dataset_kwargs.is_object() || !task.dataset_kwargs.contains(key))
    throw std::runtime_error(task.file + ": data_format " + task.data_format + " needs dataset_kwargs." + key);
  return task.dataset_kwargs.at(key);
}

std::string str_at(const json& o, const char* key, const std::string& where) {
  if (!o.is_object() || !o.contains(key) || !o.at(key).is_string())
    throw std::runtime_error(where + ": field '" + key + "' is missing or not a string");
  return o.at(key).get<std::string>();
}

/// One member of an open archive, read into memory.
std::string read_member(zip_t* za, const std::string& name, const std::string& where) {
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_stat(za, name.c_str(), 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE))
    throw std::runtime_error(where + ": no member '" + name + "' (dataset_kwargs.zip_members)");
  zip_file_t* f = zip_fopen(za, name.c_str(), 0);
  if (!f) throw std::runtime_error(where + ": cannot open member '" + name + "': " + zip_strerror(za) +
                                   " (dataset_kwargs.zip_password?)");
  std::string data(st.size, '\0');
  const zip_int64_t n = zip_fread(f, data.data(), st.size);
  const std::string err = n < 0 ? zip_file_strerror(f) : "";
  zip_fclose(f);
  if (n < 0 || static_cast<zip_uint64_t>(n) != st.size)
    throw std::runtime_error(where + ": reading member '" + name + "' failed: " + err +
                             " (wrong dataset_kwargs.zip_password?)");
  return data;
}

}  // namespace

std::string subtask_of_file(const TaskConfig& task, const fs::path& file) {
  const std::string stem = file.stem().string();
  if (task.dataset_kwargs.is_object() && task.dataset_kwargs.contains("subtask_names")) {
    const json& m = task.dataset_kwargs.at("subtask_names");
    if (m.is_object() && m.contains(stem) && m.at(stem).is_string()) return m.at(stem).get<std::string>();
  }
  return stem;
}

std::vector<std::string> parse_python_str_list(std::string_view s) {
  std::size_t i = 0;
  auto fail = [&](const std::string& what) -> void {
    throw std::invalid_argument("Python list literal, offset " + std::to_string(i) + ": " + what);
  };
  auto ws = [&] {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  };
  auto hex = [&](std::size_t n) {
    if (i + n > s.size()) fail("short escape");
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < n; ++k) {
      const char c = s[i + k];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= c - '0';
      else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
      else fail("bad hex escape");
    }
    i += n;
    return v;
  };
  auto one_string = [&](std::string& out) {
    const char q = s[i++];
    while (true) {
      if (i >= s.size()) fail("unterminated string");
      const char c = s[i++];
      if (c == q) return;
      if (c == '\n') fail("newline in string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i >= s.size()) fail("unterminated escape");
      const char e = s[i++];
      switch (e) {
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case '\n': break;  // line continuation
        case 'x': model::utf8::append(out, hex(2)); break;
        case 'u': model::utf8::append(out, hex(4)); break;
        case 'U': model::utf8::append(out, hex(8)); break;
        default: out += '\\', out += e;  // Python keeps unknown escapes
      }
    }
  };
  std::vector<std::string> items;
  ws();
  if (i >= s.size() || s[i] != '[') fail("expected '['");
  ++i;
  ws();
  while (true) {
    if (i < s.size() && s[i] == ']') {
      ++i;
      break;
    }
    if (i >= s.size() || (s[i] != '\'' && s[i] != '"')) fail("expected a quoted string");
    std::string item;
    while (i < s.size() && (s[i] == '\'' || s[i] == '"')) {  // "a" "b" concatenates
      one_string(item);
      ws();
    }
    items.push_back(std::move(item));
    if (i < s.size() && s[i] == ',') {
      ++i;
      ws();
      continue;
    }
    if (i < s.size() && s[i] == ']') {
      ++i;
      break;
    }
    fail("expected ',' or ']'");
  }
  ws();
  if (i != s.size()) fail("text after the list");
  return items;
}

std::vector<json> read_leaderboard_bbh(const TaskConfig& task, const fs::path& dataset_dir, const fs::path& file) {
  const json data = model::read_json_file(file);
  const fs::path settings_path = dataset_dir / kwarg(task, "subtask_settings").get<std::string>();
  const std::string sw = settings_path.string();
  const json settings = file == settings_path ? data : model::read_json_file(settings_path);
  if (!settings.is_object() || !settings.contains("subtasks") || !settings.at("subtasks").is_object())
    throw std::runtime_error(sw + ": expected {subtasks: {NAME: {description, choices, fewshot}}}");
  const json& subtasks = settings.at("subtasks");
  auto doc = [&](const std::string& subtask, const json& ex, const std::string& where) {
    const json& st = subtasks.at(subtask);
    const std::string swhere = sw + ": subtasks." + subtask;
    if (!st.contains("choices") || !st.at("choices").is_array())
      throw std::runtime_error(swhere + ": field 'choices' is missing or not a list");
    return json{{"subtask", subtask},
                {"input", str_at(ex, "input", where)},
                {"target", str_at(ex, "target", where)},
                {"description", str_at(st, "description", swhere)},
                {"choices", st.at("choices")}};
  };
  std::vector<json> docs;
  if (data.is_object() && data.contains("examples")) {
    const std::string subtask = subtask_of_file(task, file);
    if (!subtasks.contains(subtask))
      throw std::runtime_error(file.string() + ": subtask '" + subtask + "' has no entry in " + sw);
    const json& ex = data.at("examples");
    if (!ex.is_array()) throw std::runtime_error(file.string() + ": field 'examples' is not a list");
    for (std::size_t i = 0; i < ex.size(); ++i)
      docs.push_back(doc(subtask, ex[i], file.string() + ": examples[" + std::to_string(i) + "]"));
    return docs;
  }
  if (file != settings_path)
    throw std::runtime_error(file.string() + ": expected {examples: [...]} or the settings file " + sw);
  // The settings file: its few-shot docs, subtasks in file order.
  nlohmann::ordered_json ordered = nlohmann::ordered_json::parse(model::read_text_file(file));
  for (const auto& [name, st] : ordered.at("subtasks").items()) {
    const json few = json::parse(st.at("fewshot").dump());
    if (!few.is_array()) throw std::runtime_error(sw + ": subtasks." + name + ".fewshot is not a list");
    for (std::size_t i = 0; i < few.size(); ++i)
      docs.push_back(doc(name, few[i], sw + ": subtasks." + name + ".fewshot[" + std::to_string(i) + "]"));
  }
  return docs;
}

std::vector<json> read_gpqa_zip(const TaskConfig& task, const fs::path& file) {
  const json& members = kwarg(task, "zip_members");
  const json& password = kwarg(task, "zip_password");
  if (!members.is_array() || members.empty())
    throw std::runtime_error(task.file + ": dataset_kwargs.zip_members must be a non-empty list of member paths");
  if (!password.is_string()) throw std::runtime_error(task.file + ": dataset_kwargs.zip_password must be a string");
  int err = 0;
  std::unique_ptr<zip_t, void (*)(zip_t*)> za(zip_open(file.string().c_str(), ZIP_RDONLY, &err),
                                              [](zip_t* z) { zip_discard(z); });
  if (!za) {
    zip_error_t ze;
    zip_error_init_with_code(&ze, err);
    const std::string msg = zip_error_strerror(&ze);
    zip_error_fini(&ze);
    throw std::runtime_error(file.string() + ": cannot open zip: " + msg);
  }
  if (zip_set_default_password(za.get(), password.get<std::string>().c_str()) != 0)
    throw std::runtime_error(file.string() + ": cannot set the password");
  std::vector<json> docs;
  for (const auto& m : members) {
    if (!m.is_string()) throw std::runtime_error(task.file + ": dataset_kwargs.zip_members: not a string");
    const std::string name = m.get<std::string>();
    const std::string where = file.string() + ":" + name;
    const auto rows = parse_csv(read_member(za.get(), name, file.string()));
    if (rows.empty()) throw std::runtime_error(where + ": empty CSV");
    const std::string subtask = subtask_of_file(task, fs::path(name));
    const auto& header = rows[0];
    for (std::size_t r = 1; r < rows.size(); ++r) {
      if (rows[r].size() != header.size())
        throw std::runtime_error(where + ": row " + std::to_string(r + 1) + " has " + std::to_string(rows[r].size()) +
                                 " fields, the header " + std::to_string(header.size()));
      json d = json::object();
      for (std::size_t c = 0; c < header.size(); ++c)
        d[header[c]] = rows[r][c].empty() ? json(nullptr) : json(rows[r][c]);
      d["subtask"] = subtask;
      docs.push_back(std::move(d));
    }
  }
  return docs;
}

std::vector<json> read_musr(const TaskConfig& task, const fs::path& file) {
  const std::string subtask = subtask_of_file(task, file);
  const std::vector<json> rows = file.extension() == ".jsonl" ? read_jsonl(file) : read_json_array(file);
  std::vector<json> docs;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const json& row = rows[r];
    const std::string where = file.string() + ": record " + std::to_string(r);
    if (row.contains("narrative")) {  // Hub row
      json choices = row.at("choices");
      if (choices.is_string()) {
        try {
          choices = parse_python_str_list(choices.get<std::string>());
        } catch (const std::invalid_argument& e) {
          throw std::runtime_error(where + ": field 'choices': " + e.what());
        }
      }
      if (!choices.is_array()) throw std::runtime_error(where + ": field 'choices' is not a list");
      if (!row.contains("answer_index") || !row.at("answer_index").is_number_integer())
        throw std::runtime_error(where + ": field 'answer_index' is missing or not an int");
      docs.push_back({{"subtask", subtask},
                      {"narrative", str_at(row, "narrative", where)},
                      {"question", str_at(row, "question", where)},
                      {"choices", choices},
                      {"answer_index", row.at("answer_index")},
                      {"answer_choice", str_at(row, "answer_choice", where)}});
      continue;
    }
    // Viewer format: one story, its questions.
    const std::string narrative = str_at(row, "context", where);
    if (!row.contains("questions") || !row.at("questions").is_array())
      throw std::runtime_error(where + ": field 'questions' is missing or not a list (neither Hub nor viewer format)");
    const json& qs = row.at("questions");
    for (std::size_t q = 0; q < qs.size(); ++q) {
      const std::string qw = where + " questions[" + std::to_string(q) + "]";
      const json& choices = qs[q].at("choices");
      if (!choices.is_array()) throw std::runtime_error(qw + ": field 'choices' is not a list");
      if (!qs[q].contains("answer") || !qs[q].at("answer").is_number_integer())
        throw std::runtime_error(qw + ": field 'answer' is missing or not an int");
      const int a = qs[q].at("answer").get<int>();
      if (a < 0 || a >= static_cast<int>(choices.size())) throw std::runtime_error(qw + ": 'answer' outside the choices");
      docs.push_back({{"subtask", subtask},
                      {"narrative", narrative},
                      {"question", str_at(qs[q], "question", qw)},
                      {"choices", choices},
                      {"answer_index", a},
                      {"answer_choice", choices[a]}});
    }
  }
  return docs;
}

}  // namespace qsweep::scoring
