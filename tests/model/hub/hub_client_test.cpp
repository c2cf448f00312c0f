// HubClient against the loopback fake Hub: resolve, listing, the HF cache
// layout, resume, retries, checksums, auth, redirects, offline, reuse,
// hostile listings and the rows API.

#include "model/hub/hub_client.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/model/hub/hub_fixture.h"

namespace qsweep::model {
namespace {

namespace fs = std::filesystem;
using testing::read_file;

class HubClientTest : public testing::HubFixture {
 protected:
  bool fetch(HubClient& c, const std::vector<std::string>& want, HubError* err,
             std::vector<FetchedFile>* out = nullptr, TransferHooks hooks = {}) {
    RepoInfo info;
    if (!c.repo_info(source(), &info, err)) return false;
    std::vector<FetchedFile> local;
    return c.fetch_files(source(), info, want, hooks, out ? out : &local, err);
  }
  void expect_no_token(const std::string& s) { EXPECT_EQ(s.find(k_token), std::string::npos) << s; }
};

TEST_F(HubClientTest, ResolvesRevisionAndFollowsMain) {
  HubClient c(*http, env(), retry());
  std::string got;
  HubError err;
  ASSERT_TRUE(c.resolve_revision(source(), &got, &err)) << err.message;
  EXPECT_EQ(got, sha);
  std::string sha2 = hub.commit("tiny/model", {{"config.json", {"{\"v\": 2}", false}}});
  ASSERT_TRUE(c.resolve_revision(source(), &got, &err)) << err.message;
  EXPECT_EQ(got, sha2);
  ASSERT_TRUE(c.resolve_revision(source("hf://tiny/model@" + sha), &got, &err));
  EXPECT_EQ(got, sha) << "a full sha resolves to itself";
  auto api = hub.requests()[0];
  EXPECT_EQ(api.path, "/api/models/tiny/model/revision/main");
  EXPECT_EQ(api.query.at("blobs"), "true");
}

TEST_F(HubClientTest, ListsFilesWithLfsMetadata) {
  HubClient c(*http, env(), retry());
  RepoInfo info;
  HubError err;
  ASSERT_TRUE(c.repo_info(source(), &info, &err)) << err.message;
  EXPECT_EQ(info.sha, sha);
  ASSERT_EQ(info.files.size(), files.size());
  const RepoFile* w = info.find("model.safetensors");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->lfs_sha256, testing::sha256_hex(weights));
  EXPECT_EQ(w->size, 300000);
  EXPECT_EQ(info.find("config.json")->etag(), testing::git_blob_id(files["config.json"].content));
  EXPECT_EQ(
      select_model_files(info.paths()),
      (std::vector<std::string>{"config.json", "model.safetensors", "tokenizer_config.json"}));
}

TEST_F(HubClientTest, DownloadsIntoTheHfCacheLayout) {
  HubClient c(*http, env(), retry());
  HubError err;
  std::vector<FetchedFile> got;
  ASSERT_TRUE(fetch(c, {"config.json", "model.safetensors", "sub/extra.json"}, &err, &got))
      << err.message;
  ASSERT_EQ(got.size(), 3u);
  std::string lfs = testing::sha256_hex(weights);
  std::string oid = testing::git_blob_id(files["config.json"].content);
  EXPECT_EQ(read_file(repo_dir() / "blobs" / lfs), weights);
  EXPECT_EQ(read_file(repo_dir() / "blobs" / oid), files["config.json"].content);
  fs::path snap = repo_dir() / "snapshots" / sha;
  EXPECT_TRUE(fs::is_symlink(snap / "model.safetensors"));
  EXPECT_EQ(fs::read_symlink(snap / "model.safetensors"), fs::path("../../blobs/" + lfs));
  EXPECT_EQ(fs::read_symlink(snap / "sub" / "extra.json").string().substr(0, 15),
            "../../../blobs/");
  EXPECT_EQ(read_file(repo_dir() / "refs" / "main"), sha)
      << "no trailing newline, like huggingface_hub";
  EXPECT_EQ(got[1].sha256, lfs);
  EXPECT_EQ(got[1].size, 300000u);
  EXPECT_FALSE(got[1].reused);
  EXPECT_FALSE(fs::exists(repo_dir() / "blobs" / (lfs + ".incomplete")));
  // Requests went to the pinned commit, not to "main".
  EXPECT_EQ(gets_of("model.safetensors").at(0).path,
            "/tiny/model/resolve/" + sha + "/model.safetensors");
}

TEST_F(HubClientTest, ResumesWithRangeAfterADroppedConnection) {
  hub.drop_once_after("model.safetensors", 100000);
  HubClient c(*http, env(), retry());
  HubError err;
  std::vector<uint64_t> progress;
  TransferHooks hooks;
  hooks.on_bytes = [&](uint64_t done, uint64_t) { progress.push_back(done); };
  std::vector<FetchedFile> got;
  ASSERT_TRUE(fetch(c, {"model.safetensors"}, &err, &got, hooks)) << err.message;
  auto gets = gets_of("model.safetensors");
  ASSERT_EQ(gets.size(), 2u);
  EXPECT_EQ(gets[0].header("Range"), "");
  EXPECT_EQ(gets[1].header("Range"), "bytes=100000-");
  EXPECT_EQ(read_file(got[0].local), weights);
  EXPECT_EQ(sleeps.size(), 1u);
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), 300000u);
}

TEST_F(HubClientTest, RetriesTooManyRequestsHonouringRetryAfter) {
  hub.fail_with("config.json", 429, 2, "7");
  HubClient c(*http, env(), retry());
  HubError err;
  ASSERT_TRUE(fetch(c, {"config.json"}, &err)) << err.message;
  EXPECT_EQ(sleeps, (std::vector<double>{7, 7}));
  EXPECT_EQ(gets_of("config.json").size(), 3u);
}

TEST_F(HubClientTest, RetriesServerErrorsWithExponentialBackoff) {
  hub.fail_with("api", 500, 1);
  hub.fail_with("config.json", 503, 3);
  HubClient c(*http, env(), retry());
  HubError err;
  ASSERT_TRUE(fetch(c, {"config.json"}, &err)) << err.message;
  EXPECT_EQ(sleeps, (std::vector<double>{1, 1, 2, 4}));
}

TEST_F(HubClientTest, GivesUpAfterMaxAttemptsAsRetryable) {
  hub.fail_with("config.json", 500, 100);
  RetryPolicy p = retry();
  p.max_attempts = 3;
  HubClient c(*http, env(), p);
  HubError err;
  ASSERT_FALSE(fetch(c, {"config.json"}, &err));
  EXPECT_TRUE(err.retryable);
  EXPECT_NE(err.message.find("giving up after 3 attempts"), std::string::npos) << err.message;
}

TEST_F(HubClientTest, WrongSha256IsAnErrorAndNothingIsPublished) {
  hub.lie_about_sha256("model.safetensors");
  HubClient c(*http, env(), retry());
  HubError err;
  ASSERT_FALSE(fetch(c, {"model.safetensors"}, &err));
  EXPECT_NE(err.message.find("checksum mismatch"), std::string::npos) << err.message;
  EXPECT_FALSE(err.retryable);
  EXPECT_FALSE(fs::exists(repo_dir() / "snapshots" / sha / "model.safetensors"));
  std::error_code ec;
  for (auto& e : fs::directory_iterator(repo_dir() / "blobs", ec))
    ADD_FAILURE() << "left behind: " << e.path();
}

TEST_F(HubClientTest, SmallGitFilesAreCheckedByBlobId) {
  hub.lie_about_sha256("config.json");
  HubClient c(*http, env(), retry());
  HubError err;
  ASSERT_FALSE(fetch(c, {"config.json"}, &err));
  EXPECT_NE(err.message.find("checksum mismatch: the Hub lists git blob id"), std::string::npos)
      << err.message;
  EXPECT_FALSE(fs::exists(repo_dir() / "snapshots" / sha / "config.json"));
  std::string hex, e;
  testing::write_file(dir / "f", "hello\n");
  ASSERT_TRUE(git_blob_id_file(dir / "f", &hex, &e));
  EXPECT_EQ(hex, "ce013625030ba8dba906f756967f9e9ca394464a") << "git hash-object of 'hello\\n'";
}

TEST_F(HubClientTest, UnauthorizedNamesHfTokenAndNeverTheToken) {
  hub.require_token(k_token);
  HubClient anonymous(*http, env(), retry());
  HubError err;
  ASSERT_FALSE(fetch(anonymous, {"config.json"}, &err));
  EXPECT_NE(err.message.find("set HF_TOKEN to a token with access to tiny/model"),
            std::string::npos)
      << err.message;
  EXPECT_FALSE(err.retryable);

  model::HubEnv wrong = env();
  wrong.token = "hf_WrongTokenWrongToken";
  HubClient w(*http, wrong, retry());
  ASSERT_FALSE(fetch(w, {"config.json"}, &err));
  EXPECT_EQ(err.message.find(wrong.token), std::string::npos) << err.message;
  EXPECT_NE(err.message.find("HF_TOKEN"), std::string::npos) << err.message;

  model::HubEnv good = env();
  good.token = k_token;
  HubClient g(*http, good, retry());
  ASSERT_TRUE(fetch(g, {"config.json"}, &err)) << err.message;
  EXPECT_EQ(hub.requests().back().header("Authorization"), std::string("Bearer ") + k_token);
}

TEST_F(HubClientTest, NotFoundSaysWhatIsMissing) {
  HubClient c(*http, env(), retry());
  RepoInfo info;
  HubError err;
  ASSERT_FALSE(c.repo_info(source("hf://tiny/nope"), &info, &err));
  EXPECT_NE(err.message.find("no such repo"), std::string::npos) << err.message;
  ASSERT_FALSE(c.repo_info(source("hf://tiny/model@v9"), &info, &err));
  EXPECT_NE(err.message.find("no such revision"), std::string::npos) << err.message;
  ASSERT_TRUE(c.repo_info(source(), &info, &err));
  info.files.push_back({"ghost.json", 3, "abc", ""});
  std::vector<FetchedFile> got;
  ASSERT_FALSE(c.fetch_files(source(), info, {"ghost.json"}, {}, &got, &err));
  EXPECT_NE(err.message.find("no such file"), std::string::npos) << err.message;
  EXPECT_FALSE(err.retryable);
}

TEST_F(HubClientTest, RedirectToCdnDropsAuthorization) {
  hub.require_token(k_token);
  hub.redirect_lfs_to_cdn(true);
  model::HubEnv e = env();
  e.token = k_token;
  HubClient c(*http, e, retry());
  HubError err;
  std::vector<FetchedFile> got;
  ASSERT_TRUE(fetch(c, {"model.safetensors"}, &err, &got)) << err.message;
  EXPECT_EQ(read_file(got[0].local), weights);
  auto cdn = hub.cdn_requests();
  ASSERT_EQ(cdn.size(), 1u);
  EXPECT_EQ(cdn[0].header("Authorization"), "") << "the token must not reach another host";
  EXPECT_EQ(gets_of("model.safetensors").at(0).header("Authorization"),
            std::string("Bearer ") + k_token);
}

TEST_F(HubClientTest, ExpiredCdnUrlIsFetchedAgainThroughTheHub) {
  hub.redirect_lfs_to_cdn(true);
  hub.fail_with("cdn", 403, 1);
  HubClient c(*http, env(), retry());
  HubError err;
  std::vector<FetchedFile> got;
  ASSERT_TRUE(fetch(c, {"model.safetensors"}, &err, &got)) << err.message;
  EXPECT_EQ(gets_of("model.safetensors").size(), 2u);
  hub.fail_with("cdn", 403, 100);
  ASSERT_FALSE(fetch(c, {"pytorch_model.bin"}, &err));
  EXPECT_NE(err.message.find("HTTP 403 from http://127.0.0.1:"), std::string::npos) << err.message;
  EXPECT_EQ(err.message.find("gated"), std::string::npos) << "the CDN said no, not the Hub";
  EXPECT_EQ(err.message.find("expires="), std::string::npos) << "no signed query in messages";
}

TEST_F(HubClientTest, ResumeThroughTheCdn) {
  hub.redirect_lfs_to_cdn(true);
  HubClient c(*http, env(), retry());
  // A previous run left the first 1000 bytes.
  fs::create_directories(repo_dir() / "blobs");
  std::ofstream(repo_dir() / "blobs" / (testing::sha256_hex(weights) + ".incomplete"),
                std::ios::binary)
      << weights.substr(0, 1000);
  HubError err;
  std::vector<FetchedFile> got;
  ASSERT_TRUE(fetch(c, {"model.safetensors"}, &err, &got)) << err.message;
  EXPECT_EQ(read_file(got[0].local), weights);
  EXPECT_EQ(hub.cdn_requests().at(0).header("Range"), "bytes=1000-");
}

TEST_F(HubClientTest, OfflineUsesThePopulatedCache) {
  {
    HubClient online(*http, env(), retry());
    HubError err;
    ASSERT_TRUE(fetch(online, {"config.json", "model.safetensors"}, &err)) << err.message;
  }
  size_t before = hub.requests().size();
  model::HubEnv e = env();
  e.offline = true;
  HubClient c(*http, e, retry());
  std::string got_sha;
  HubError err;
  ASSERT_TRUE(c.resolve_revision(source(), &got_sha, &err)) << err.message;
  EXPECT_EQ(got_sha, sha);
  RepoInfo info;
  ASSERT_TRUE(c.repo_info(source(), &info, &err)) << err.message;
  EXPECT_TRUE(info.from_cache);
  EXPECT_EQ(info.paths(), (std::vector<std::string>{"config.json", "model.safetensors"}));
  std::vector<FetchedFile> got;
  ASSERT_TRUE(c.fetch_files(source(), info, {"config.json", "model.safetensors"}, {}, &got, &err))
      << err.message;
  EXPECT_TRUE(got[0].reused && got[1].reused);
  EXPECT_EQ(hub.requests().size(), before) << "offline makes no request";
}

TEST_F(HubClientTest, OfflineWithEmptyCacheFailsClearly) {
  model::HubEnv e = env();
  e.offline = true;
  HubClient c(*http, e, retry());
  std::string got_sha;
  HubError err;
  ASSERT_FALSE(c.resolve_revision(source(), &got_sha, &err));
  EXPECT_NE(err.message.find("HF_HUB_OFFLINE"), std::string::npos) << err.message;
  EXPECT_NE(err.message.find("tiny/model@main"), std::string::npos) << err.message;
  EXPECT_TRUE(hub.requests().empty());
}

TEST_F(HubClientTest, ReusesAnExistingHfCacheSnapshot) {
  // Lay out the cache as huggingface_hub would have after a user's download.
  std::string lfs = testing::sha256_hex(weights);
  fs::create_directories(repo_dir() / "blobs");
  fs::create_directories(repo_dir() / "snapshots" / sha);
  fs::create_directories(repo_dir() / "refs");
  testing::write_file(repo_dir() / "blobs" / lfs, weights);
  testing::write_file(repo_dir() / "refs" / "main", sha);
  fs::create_symlink("../../blobs/" + lfs, repo_dir() / "snapshots" / sha / "model.safetensors");
  HubClient c(*http, env(), retry());
  HubError err;
  std::vector<FetchedFile> got;
  ASSERT_TRUE(fetch(c, {"model.safetensors"}, &err, &got)) << err.message;
  EXPECT_TRUE(got[0].reused);
  EXPECT_EQ(hub.file_gets(), 0) << "no file GET for a cached file";
  EXPECT_EQ(got[0].sha256, lfs);
}

TEST_F(HubClientTest, HostileListingsAreRejected) {
  for (std::string bad : {"../x", "/etc/passwd", "a\\b", "ok/../../escape"}) {
    testing::FakeHub evil;
    evil.commit("tiny/model", {{"config.json", {"{}", false}}});
    evil.add_listed_name("tiny/model", bad);
    model::HubEnv e = env();
    e.endpoint = evil.url();
    HubClient c(*http, e, retry());
    RepoInfo info;
    HubError err;
    ASSERT_FALSE(c.repo_info(source(), &info, &err)) << bad;
    EXPECT_NE(err.message.find("unsafe file name"), std::string::npos) << err.message;
  }
  EXPECT_FALSE(fs::exists(dir / "etc"));
}

TEST_F(HubClientTest, SnapshotLinksOutOfTheCacheAreNotTrusted) {
  testing::write_file(dir / "outside" / "secret.txt", "not a blob");
  fs::create_directories(repo_dir() / "snapshots" / sha);
  testing::write_file(repo_dir() / "refs" / "main", sha);
  fs::create_symlink(dir / "outside" / "secret.txt", repo_dir() / "snapshots" / sha / "config.json");
  model::HubEnv off = env();
  off.offline = true;
  HubClient offline(*http, off, retry());
  RepoInfo info;
  HubError err;
  ASSERT_TRUE(offline.repo_info(source(), &info, &err)) << err.message;
  EXPECT_TRUE(info.files.empty()) << "a link leaving the repo folder is not a cached file";
  HubClient c(*http, env(), retry());
  std::vector<FetchedFile> got;
  ASSERT_TRUE(fetch(c, {"config.json"}, &err, &got)) << err.message;
  EXPECT_FALSE(got[0].reused);
  EXPECT_EQ(read_file(got[0].local), files["config.json"].content);
  EXPECT_EQ(read_file(dir / "outside" / "secret.txt"), "not a blob");
}

TEST_F(HubClientTest, TokenNeverAppearsInErrors) {
  model::HubEnv e = env();
  e.token = k_token;
  std::vector<std::string> messages;
  {  // 401 with the token echoed back by a hostile server body
    testing::FakeHub h;
    h.commit("tiny/model", files);
    h.require_token("another");
    model::HubEnv e2 = e;
    e2.endpoint = h.url();
    HubClient c(*http, e2, retry());
    RepoInfo info;
    HubError err;
    EXPECT_FALSE(c.repo_info(source(), &info, &err));
    messages.push_back(err.message);
  }
  hub.fail_with("config.json", 500, 100);
  hub.lie_about_sha256("model.safetensors");
  RetryPolicy p = retry();
  p.max_attempts = 2;
  HubClient c(*http, e, p);
  HubError err;
  EXPECT_FALSE(fetch(c, {"config.json"}, &err));
  messages.push_back(err.message);
  EXPECT_FALSE(fetch(c, {"model.safetensors"}, &err));
  messages.push_back(err.message);
  RepoInfo info;
  EXPECT_FALSE(c.repo_info(source("hf://tiny/absent"), &info, &err));
  messages.push_back(err.message);
  std::vector<std::string> logs;
  TransferHooks hooks;
  hooks.log = [&](const std::string& l) { logs.push_back(l); };
  EXPECT_FALSE(fetch(c, {"config.json"}, &err, nullptr, hooks));
  for (const auto& m : messages) expect_no_token(m);
  for (const auto& l : logs) expect_no_token(l);
  EXPECT_FALSE(logs.empty());
}

TEST_F(HubClientTest, CancelKeepsThePartialFileForResume) {
  HubClient c(*http, env(), retry());
  HubError err;
  TransferHooks hooks;
  bool stop = false;
  hooks.on_bytes = [&](uint64_t done, uint64_t) {
    if (done > 0) stop = true;
  };
  hooks.should_abort = [&] { return stop; };
  ASSERT_FALSE(fetch(c, {"model.safetensors"}, &err, nullptr, hooks));
  EXPECT_NE(err.message.find("cancelled"), std::string::npos) << err.message;
  fs::path partial = repo_dir() / "blobs" / (testing::sha256_hex(weights) + ".incomplete");
  ASSERT_TRUE(fs::exists(partial));
  uint64_t have = fs::file_size(partial);
  EXPECT_GT(have, 0u);
  EXPECT_LT(have, 300000u);
  std::vector<FetchedFile> got;
  ASSERT_TRUE(fetch(c, {"model.safetensors"}, &err, &got)) << err.message;
  EXPECT_EQ(read_file(got[0].local), weights);
  EXPECT_EQ(gets_of("model.safetensors").back().header("Range"),
            "bytes=" + std::to_string(have) + "-");
}

TEST_F(HubClientTest, RowsApiPaginatesToJsonl) {
  std::vector<nlohmann::json> rows;
  for (int i = 0; i < 250; ++i)
    rows.push_back({{"question", "q" + std::to_string(i)}, {"answer", i}});
  hub.set_rows("openai/gsm8k", "main", "test", rows);
  hub.fail_with("rows", 429, 1, "2");
  HubClient c(*http, env(), retry());
  uint64_t n = 0;
  HubError err;
  ASSERT_TRUE(c.fetch_rows(source("hf://datasets/openai/gsm8k"), "main", "test",
                           dir / "out" / "test.jsonl", {}, &n, &err))
      << err.message;
  EXPECT_EQ(n, 250u);
  std::ifstream in(dir / "out" / "test.jsonl");
  std::string line;
  int i = 0;
  while (std::getline(in, line)) EXPECT_EQ(nlohmann::json::parse(line), rows[i++]);
  EXPECT_EQ(i, 250);
  std::vector<std::string> offsets;
  for (const auto& r : hub.requests())
    if (r.path == "/rows") offsets.push_back(r.query.at("offset") + "/" + r.query.at("length"));
  EXPECT_EQ(offsets, (std::vector<std::string>{"0/100", "0/100", "100/100", "200/100"}));
  EXPECT_EQ(sleeps, (std::vector<double>{2}));
  ASSERT_FALSE(c.fetch_rows(source("hf://datasets/openai/gsm8k"), "main", "nope", dir / "x.jsonl",
                            {}, &n, &err));
  EXPECT_NE(err.message.find("404"), std::string::npos) << err.message;
}

}  // namespace
}  // namespace qsweep::model
