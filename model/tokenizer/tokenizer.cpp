#include "model/tokenizer/tokenizer.h"

#include <filesystem>
#include <stdexcept>

#include "model/tokenizer/hf_tokenizer.h"
#include "model/tokenizer/llama2c_tokenizer.h"
#include "model/tokenizer/sentencepiece_tokenizer.h"

namespace qsweep::model {

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path p(path);
  if (!fs::exists(p)) throw std::runtime_error("cannot open " + path + ": no such file or folder");
  fs::path file = p;
  if (fs::is_directory(p)) {
    file.clear();
    for (const char* name : {"tokenizer.json", "tokenizer.model", "tok512.bin", "tokenizer.bin"}) {
      if (fs::exists(p / name)) {
        file = p / name;
        break;
      }
    }
    if (file.empty()) {
      throw std::runtime_error(path +
                               ": no tokenizer.json, tokenizer.model, tok512.bin or "
                               "tokenizer.bin in this folder");
    }
  }
  const std::string ext = file.extension().string();
  if (ext == ".json") return HfTokenizer::load(file.string());
  if (ext == ".model") return SentencePieceTokenizer::load(file.string());
  if (ext == ".bin") return Llama2cTokenizer::load(file.string());
  throw std::runtime_error(file.string() +
                           ": unknown tokenizer file type (expected tokenizer.json, "
                           "tokenizer.model or a llama2.c .bin)");
}

}  // namespace qsweep::model
