#include "tests/model/tokenizer_corpus.h"

#include <openssl/evp.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <variant>

namespace qsweep::testing {

namespace {

using nlohmann::json;
using Key = std::variant<std::string, int>;

struct Source {
  const char* label;
  const char* rel;
  bool jsonl;
  int count;  ///< -1: all records
  std::vector<Key> field;
};

std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + p.string());
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

std::vector<CorpusEntry> build_tokenizer_corpus(const std::filesystem::path& data_dir,
                                                const std::filesystem::path& edge_cases) {
  // Mirrors corpus.SOURCES.
  const std::vector<Source> sources = {
      {"arc", "benchmarks/arc_challenge/test.json", false, 300, {"question"}},
      {"hellaswag", "benchmarks/hellaswag/val_subset1000.jsonl", true, 300, {"ctx"}},
      {"gsm8k", "benchmarks/gsm8k/test.jsonl", true, 300, {"question"}},
      {"mmlu_pro", "benchmarks/mmlu_pro/test.jsonl", true, 300, {"question"}},
      {"ifeval", "benchmarks/ifeval/input_data.jsonl", true, -1, {"prompt"}},
      {"mt_bench0", "benchmarks/mt_bench/question.jsonl", true, -1, {"turns", 0}},
      {"mt_bench1", "benchmarks/mt_bench/question.jsonl", true, -1, {"turns", 1}},
      {"math", "benchmarks/math/test.jsonl", true, 200, {"problem"}},
      {"truthfulqa", "benchmarks/truthfulqa/mc_task.json", false, 100, {"question"}},
  };
  std::vector<CorpusEntry> out;
  for (const Source& s : sources) {
    const auto path = data_dir / s.rel;
    const std::string text = slurp(path);
    std::vector<json> records;
    if (s.jsonl) {
      std::istringstream in(text);
      std::string line;
      while (std::getline(in, line)) {
        // Python: `if line.strip()` (whitespace-only lines are skipped).
        if (line.find_first_not_of(" \t\r\n\f\v") == std::string::npos) continue;
        records.push_back(json::parse(line));
      }
    } else {
      for (auto& r : json::parse(text)) records.push_back(std::move(r));
    }
    if (s.count >= 0 && records.size() > static_cast<size_t>(s.count)) records.resize(s.count);
    for (size_t i = 0; i < records.size(); ++i) {
      const json* v = &records[i];
      for (const Key& k : s.field) {
        v = std::holds_alternative<int>(k) ? &v->at(std::get<int>(k))
                                           : &v->at(std::get<std::string>(k));
      }
      out.push_back({std::string(s.label) + ":" + std::to_string(i), v->get<std::string>()});
    }
  }
  const json edges = json::parse(slurp(edge_cases));
  for (size_t i = 0; i < edges.size(); ++i) {
    out.push_back({"edge:" + std::to_string(i), edges[i].get<std::string>()});
  }
  return out;
}

std::string sha256_prefix16(const std::string& s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), md, &n, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < 8; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

}  // namespace qsweep::testing
