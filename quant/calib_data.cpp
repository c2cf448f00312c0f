#include "quant/calib_data.h"

#include "model/util/python_random.h"

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace qsweep::quant {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string strip(const std::string& s) {
  const char* ws = " \t\n\r\f\v";
  const size_t a = s.find_first_not_of(ws);
  if (a == std::string::npos) return {};
  return s.substr(a, s.find_last_not_of(ws) - a + 1);
}

CalibDocument doc_of(const json& v, const std::string& field, const std::string& where) {
  CalibDocument d;
  if (v.is_string()) {
    d.text = v.get<std::string>();
    return d;
  }
  const json* f = v.is_object() && v.contains(field) ? &v[field] : nullptr;
  if (f && f->is_string()) {
    d.text = f->get<std::string>();
    return d;
  }
  if (f && f->is_array() && !f->empty()) {
    for (size_t i = 0; i < f->size(); ++i) {
      const json& m = (*f)[i];
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string() ||
          !m.contains("content") || !m["content"].is_string())
        throw std::runtime_error(where + ": " + field + "[" + std::to_string(i) +
                                 "] is not a {\"role\": string, \"content\": string} message");
      d.messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
    }
    return d;
  }
  throw std::runtime_error(where + ": expected an object whose field '" + field +
                           "' is a string or a list of messages (set the calibrate stage's "
                           "`text_field`)");
}

std::vector<size_t> shuffled(size_t n, std::mt19937_64& rng) {
  std::vector<size_t> idx(n);
  for (size_t i = 0; i < n; ++i) idx[i] = i;
  for (size_t i = n; i > 1; --i) {
    std::uniform_int_distribution<size_t> d(0, i - 1);
    std::swap(idx[i - 1], idx[d(rng)]);
  }
  return idx;
}

}  // namespace

std::string check_calib_config(const CalibConfig& c) {
  if (c.preset != "autoawq" && c.preset != "gptq" && c.preset != "llmcompressor" &&
      c.preset != "smoothquant")
    return "params.preset: unknown sampling preset '" + c.preset +
           "' (autoawq, gptq, llmcompressor, smoothquant)";
  if (c.n_samples < 1) return "params.n_samples: must be >= 1";
  if (c.seq_len < 1) return "params.seq_len: must be >= 1";
  return {};
}

std::vector<CalibDocument> read_documents(const fs::path& file, const std::string& field) {
  std::ifstream f(file, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read calibration dataset " + file.string());
  std::vector<CalibDocument> docs;
  const std::string ext = file.extension().string();
  if (ext == ".jsonl") {
    std::string line;
    for (int no = 1; std::getline(f, line); ++no) {
      if (strip(line).empty()) continue;
      json v;
      try {
        v = json::parse(line);
      } catch (const std::exception& e) {
        throw std::runtime_error(file.string() + ":" + std::to_string(no) +
                                 ": not valid JSON: " + e.what());
      }
      docs.push_back(doc_of(v, field, file.string() + ":" + std::to_string(no)));
    }
  } else if (ext == ".json") {
    json v;
    try {
      v = json::parse(f);
    } catch (const std::exception& e) {
      throw std::runtime_error(file.string() + ": not valid JSON: " + e.what());
    }
    if (!v.is_array())
      throw std::runtime_error(file.string() + ": expected a JSON array of documents");
    for (size_t i = 0; i < v.size(); ++i)
      docs.push_back(doc_of(v[i], field, file.string() + ": element " + std::to_string(i)));
  } else {
    std::ostringstream s;
    s << f.rdbuf();
    const std::string all = s.str();
    std::string cur;
    std::istringstream in(all);
    std::string line;
    while (std::getline(in, line)) {
      if (strip(line).empty()) {
        if (!strip(cur).empty()) docs.push_back({cur, {}});
        cur.clear();
      } else {
        cur += (cur.empty() ? "" : "\n") + line;
      }
    }
    if (!strip(cur).empty()) docs.push_back({cur, {}});
  }
  if (docs.empty())
    throw std::runtime_error("calibration dataset " + file.string() + " holds no documents");
  return docs;
}

CalibSet build_calibration(const std::vector<CalibDocument>& docs, const model::Tokenizer& tok,
                           const CalibConfig& cfg, const model::ChatTemplate* chat) {
  if (std::string e = check_calib_config(cfg); !e.empty()) throw std::runtime_error(e);
  // Text: stripped (not for smoothquant) and encoded with special tokens;
  // conversations: rendered and encoded without (the template has them).
  auto encode = [&](const CalibDocument& d, bool do_strip) -> std::vector<int> {
    if (d.is_chat()) {
      if (!chat)
        throw std::runtime_error("calibration documents are conversations but the model has no "
                                 "chat template (tokenizer_config.json chat_template); set "
                                 "`chat_template` to a family or use a text field");
      return chat->encode(tok, d.messages, false);
    }
    const std::string t = do_strip ? strip(d.text) : d.text;
    if (t.empty()) return {};
    return tok.encode(t, true);
  };
  std::mt19937_64 rng(cfg.seed);
  CalibSet out;
  const size_t L = size_t(cfg.seq_len);
  if (cfg.preset == "autoawq") {
    std::vector<int> stream;
    for (size_t i : shuffled(docs.size(), rng)) {
      if (out.documents_used >= cfg.n_samples) break;
      const std::vector<int> ids = encode(docs[i], true);
      if (ids.empty() || ids.size() > L) continue;
      stream.insert(stream.end(), ids.begin(), ids.end());
      ++out.documents_used;
    }
    const size_t blocks = stream.size() / L;
    if (blocks == 0)
      throw std::runtime_error("calibration (preset autoawq): the " +
                               std::to_string(out.documents_used) + " usable documents hold " +
                               std::to_string(stream.size()) + " tokens, fewer than one block of " +
                               std::to_string(L) + "; lower seq_len or add text");
    for (size_t b = 0; b < blocks; ++b)
      out.seqs.emplace_back(stream.begin() + b * L, stream.begin() + (b + 1) * L);
  } else if (cfg.preset == "gptq") {
    // IST-DASLab datautils (get_c4 / get_wikitext2 windows) with CPython's
    // generator: random.seed(seed); per sample, random.randint over every
    // document until one is longer than seq_len tokens, then a random window.
    model::PythonRandom pr(cfg.seed);
    std::vector<std::vector<int>> enc(docs.size());
    std::vector<char> done(docs.size(), 0);
    size_t n_done = 0, n_long = 0;
    for (int s = 0; s < cfg.n_samples; ++s) {
      const std::vector<int>* ids = nullptr;
      while (true) {
        const size_t i = size_t(pr.randint(0, int64_t(docs.size()) - 1));
        if (!done[i]) {
          enc[i] = encode(docs[i], false);
          done[i] = 1;
          ++n_done;
          if (enc[i].size() > L) ++n_long;
        }
        if (enc[i].size() > L) {
          ids = &enc[i];
          break;
        }
        if (n_done == docs.size() && n_long == 0)
          throw std::runtime_error("calibration (preset gptq): no document is longer than "
                                   "seq_len " + std::to_string(L) + " tokens; lower seq_len");
      }
      const size_t i = size_t(pr.randint(0, int64_t(ids->size() - L) - 1));
      out.seqs.emplace_back(ids->begin() + i, ids->begin() + i + L);
    }
    out.documents_used = int(n_long);
  } else {  // llmcompressor, smoothquant: the first n_samples shuffled documents, truncated
    for (size_t i : shuffled(docs.size(), rng)) {
      if (int(out.seqs.size()) >= cfg.n_samples) break;
      std::vector<int> ids = encode(docs[i], cfg.preset != "smoothquant");
      if (ids.empty()) continue;
      if (ids.size() > L) ids.resize(L);
      out.seqs.push_back(std::move(ids));
      ++out.documents_used;
    }
  }
  for (const auto& s : out.seqs) out.tokens += int64_t(s.size());
  return out;
}

}  // namespace qsweep::quant
