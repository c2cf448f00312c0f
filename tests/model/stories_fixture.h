#pragma once
// stories260K imported once per test process as a Hugging Face folder with
// its tokenizer, loaded into an engine (2 threads): the real model of the
// backend and serving tests. NEED_STORIES() skips a test when ../shared/data
// is absent.

#include <memory>

#include "model/engine/engine.h"
#include "model/tokenizer/llama2c_tokenizer.h"
#include "model/tokenizer/tokenizer.h"
#include "tests/quant/stories260k.h"
#include "tests/testutil.h"

namespace qsweep::model {

struct Stories {
  std::filesystem::path dir;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<Tokenizer> tok;
};

// One imported copy per test process.
inline Stories* stories() {
  static testing::TempDir* dir = nullptr;
  static Stories s;
  if (!dir) {
    dir = new testing::TempDir;
    if (!testing::import_stories260k(dir->path())) return nullptr;
    write_hf_tokenizer(*Llama2cTokenizer::load(
                           (testing::stories260k_bin().parent_path() / "tok512.bin").string()),
                       dir->path().string());
    s.dir = dir->path();
    s.engine = Engine::load(dir->path(), {.threads = 2});
    s.tok = load_tokenizer(dir->path().string());
  }
  return s.engine ? &s : nullptr;
}

inline std::vector<int> ids(const Tokenizer& t, const std::string& s, bool special = false) {
  const auto v = t.encode(s, special);
  return {v.begin(), v.end()};
}

#define NEED_STORIES()                                               \
  Stories* st = stories();                                           \
  if (!st) GTEST_SKIP() << qsweep::testing::k_stories260k_skip;      \
  (void)st

}  // namespace qsweep::model
