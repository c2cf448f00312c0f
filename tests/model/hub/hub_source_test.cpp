// Hub sources, settings from the environment, file-name safety, globs and the
// model/dataset file selections.

#include "model/hub/hub_source.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "model/hub/http.h"
#include "model/hub/hub_cache.h"
#include "tests/testutil.h"

namespace qsweep::model {
namespace {

TEST(HubSource, ParsesHubModelsAndDatasets) {
  HubSource s;
  std::string err;
  ASSERT_TRUE(parse_source("hf://karpathy/tinyllamas", &s, &err)) << err;
  EXPECT_EQ(s.kind, HubSource::Kind::kHub);
  EXPECT_EQ(s.repo_type, RepoType::kModel);
  EXPECT_EQ(s.repo_id, "karpathy/tinyllamas");
  EXPECT_EQ(s.revision, "main");
  ASSERT_TRUE(parse_source("hf://models/meta-llama/Llama-3.1-8B@v1.0", &s, &err)) << err;
  EXPECT_EQ(s.repo_id, "meta-llama/Llama-3.1-8B");
  EXPECT_EQ(s.revision, "v1.0");
  ASSERT_TRUE(parse_source("hf://datasets/openai/gsm8k@refs/convert/parquet", &s, &err)) << err;
  EXPECT_EQ(s.repo_type, RepoType::kDataset);
  EXPECT_EQ(s.repo_id, "openai/gsm8k");
  EXPECT_EQ(s.revision, "refs/convert/parquet");
}

TEST(HubSource, ParsesUrlsAndLocalPaths) {
  HubSource s;
  std::string err;
  ASSERT_TRUE(parse_source("https://example.com/a/b.bin?x=1", &s, &err));
  EXPECT_EQ(s.kind, HubSource::Kind::kUrl);
  ASSERT_TRUE(parse_source("file:///data/models/x", &s, &err));
  EXPECT_EQ(s.kind, HubSource::Kind::kLocal);
  EXPECT_EQ(s.local_path, "/data/models/x");
  ASSERT_TRUE(parse_source("/data/models/../y", &s, &err));
  EXPECT_EQ(s.local_path, "/data/y");
}

TEST(HubSource, RejectsMalformedSources) {
  HubSource s;
  std::string err;
  EXPECT_FALSE(parse_source("hf://justaname", &s, &err));
  EXPECT_NE(err.find("ORG/NAME"), std::string::npos) << err;
  EXPECT_FALSE(parse_source("hf://a/b/c", &s, &err));
  EXPECT_FALSE(parse_source("hf://../etc", &s, &err));
  EXPECT_FALSE(parse_source("hf://a/b@", &s, &err));
  EXPECT_FALSE(parse_source("hf://a/b@../../x", &s, &err));
  EXPECT_FALSE(parse_source("models/x", &s, &err));
  EXPECT_NE(err.find("absolute"), std::string::npos) << err;
}

TEST(HubSource, RepoPathSafety) {
  std::string err;
  EXPECT_TRUE(check_repo_path("config.json", &err));
  EXPECT_TRUE(check_repo_path("stories260K/stories260K.bin", &err));
  for (std::string bad :
       std::vector<std::string>{"../x", "/etc/passwd", "a\\b", "a/../b", "a//b", "./a", "a/.", "",
                                "a/..", std::string("a\0b", 3), "a\nb"}) {
    EXPECT_FALSE(check_repo_path(bad, &err)) << bad;
    EXPECT_NE(err.find("unsafe file name"), std::string::npos);
  }
}

TEST(HubSource, Globs) {
  EXPECT_TRUE(glob_match("*.json", "config.json"));
  EXPECT_TRUE(glob_match("*.json", "sub/config.json"))
      << "a pattern without '/' matches base names";
  EXPECT_FALSE(glob_match("sub/*.json", "sub/deeper/x.json"));
  EXPECT_TRUE(glob_match("sub/**", "sub/deeper/x.json"));
  EXPECT_TRUE(glob_match("**/x.json", "x.json"));
  EXPECT_TRUE(glob_match("stories260K/*", "stories260K/tok512.bin"));
  EXPECT_TRUE(glob_match("model-0000?-of-00002.safetensors", "model-00001-of-00002.safetensors"));
  EXPECT_FALSE(glob_match("*.bin", "model.safetensors"));
}

TEST(HubSource, ModelSelectionPrefersSafetensors) {
  std::vector<std::string> listing = {"README.md",
                                      "config.json",
                                      "generation_config.json",
                                      "model-00001-of-00002.safetensors",
                                      "model-00002-of-00002.safetensors",
                                      "model.safetensors.index.json",
                                      "pytorch_model.bin",
                                      "tf_model.h5",
                                      "flax_model.msgpack",
                                      "tokenizer.json",
                                      "tokenizer_config.json",
                                      "tokenizer.model",
                                      "special_tokens_map.json",
                                      "original/consolidated.00.pth",
                                      "onnx/model.safetensors"};
  EXPECT_EQ(select_model_files(listing),
            (std::vector<std::string>{
                "config.json", "generation_config.json", "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors", "model.safetensors.index.json",
                "special_tokens_map.json", "tokenizer.json", "tokenizer.model",
                "tokenizer_config.json"}));
  EXPECT_EQ(select_model_files({"config.json", "pytorch_model.bin", "tf_model.h5"}),
            (std::vector<std::string>{"config.json", "pytorch_model.bin"}))
      << "without safetensors, the PyTorch weights";
  EXPECT_EQ(
      select_dataset_files({"README.md", "data/test.jsonl", "train.csv", "x.parquet", "a.py"}),
      (std::vector<std::string>{"data/test.jsonl", "train.csv", "x.parquet"}));
  std::vector<std::string> out;
  std::string err;
  EXPECT_FALSE(select_by_patterns(listing, {"*.gguf"}, &out, &err));
  EXPECT_NE(err.find("'*.gguf' matches no file"), std::string::npos) << err;
}

TEST(HubSource, CacheFolderNames) {
  EXPECT_EQ(repo_folder_name(RepoType::kModel, "karpathy/tinyllamas"),
            "models--karpathy--tinyllamas");
  EXPECT_EQ(repo_folder_name(RepoType::kDataset, "openai/gsm8k"), "datasets--openai--gsm8k");
}

TEST(Http, OriginsAndEncoding) {
  EXPECT_EQ(url_origin("https://huggingface.co/a/b"), "https://huggingface.co:443");
  EXPECT_EQ(url_origin("https://HuggingFace.co:443/x"), "https://huggingface.co:443");
  EXPECT_EQ(url_origin("http://127.0.0.1:8080?q"), "http://127.0.0.1:8080");
  EXPECT_EQ(url_origin("https://user@cdn-lfs.hf.co/x"), "https://cdn-lfs.hf.co:443");
  EXPECT_NE(url_origin("https://huggingface.co/x"), url_origin("https://cdn-lfs.huggingface.co/x"));
  EXPECT_EQ(url_origin("not a url"), "");
  EXPECT_EQ(url_encode("refs/pr/1", false), "refs%2Fpr%2F1");
  EXPECT_EQ(url_encode("a b/c.json", true), "a%20b/c.json");
}

// Sets environment variables for one test and restores them.
class EnvGuard {
 public:
  void set(const char* name, const char* value) {
    if (!saved_.count(name)) {
      const char* old = std::getenv(name);
      saved_[name] = old ? std::optional<std::string>(old) : std::nullopt;
    }
    if (value)
      ::setenv(name, value, 1);
    else
      ::unsetenv(name);
  }
  ~EnvGuard() {
    for (const auto& [k, v] : saved_) {
      if (v)
        ::setenv(k.c_str(), v->c_str(), 1);
      else
        ::unsetenv(k.c_str());
    }
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

TEST(HubEnv, FromEnvironment) {
  testing::TempDir dir;
  EnvGuard g;
  for (const char* v :
       {"HF_ENDPOINT", "HF_TOKEN", "HF_TOKEN_PATH", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE",
        "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_SERVER", "XDG_CACHE_HOME"})
    g.set(v, nullptr);
  g.set("HF_HOME", (dir / "hf").c_str());
  testing::write_file(dir / "hf" / "token", "hf_filetoken\n");
  HubEnv e = HubEnv::from_environment();
  EXPECT_EQ(e.endpoint, "https://huggingface.co");
  EXPECT_EQ(e.datasets_server, "https://datasets-server.huggingface.co");
  EXPECT_EQ(e.hub_cache, dir / "hf" / "hub");
  EXPECT_EQ(e.token, "hf_filetoken");
  EXPECT_FALSE(e.offline);

  g.set("HF_ENDPOINT", "http://mirror.local:8080/");
  g.set("HF_TOKEN", "hf_envtoken");
  g.set("HF_HUB_CACHE", (dir / "elsewhere").c_str());
  g.set("HF_HUB_OFFLINE", "1");
  e = HubEnv::from_environment();
  EXPECT_EQ(e.endpoint, "http://mirror.local:8080");
  EXPECT_EQ(e.token, "hf_envtoken");
  EXPECT_EQ(e.hub_cache, dir / "elsewhere");
  EXPECT_TRUE(e.offline);
  g.set("HF_HUB_OFFLINE", "0");
  EXPECT_FALSE(HubEnv::from_environment().offline);
}

}  // namespace
}  // namespace qsweep::model
