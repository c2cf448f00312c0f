// `qsweep serve`'s API (model/serve/openai_server.h) and the OpenAI-compatible
// backend (model/backend/openai_backend.h), without sockets: the backend's
// HTTP client is routed to an in-process OpenAIServer over stories260K, so
// the same protocol code is exercised as over TCP (tests/e2e/serve_test.cpp
// does it over TCP); a scripted client checks retries, errors and secrets.

#include <gtest/gtest.h>

#include <cstdlib>
#include <deque>
#include <mutex>

#include "model/backend/embedded_backend.h"
#include "model/backend/openai_backend.h"
#include "model/serve/openai_server.h"
#include "tests/model/stories_fixture.h"

namespace qsweep::model {
namespace {

using json = nlohmann::json;

// An HttpClient answering from an OpenAIServer: the server's side of
// cmd_serve.cpp (routes, error bodies) in process.
class InProcessClient : public HttpClient {
 public:
  explicit InProcessClient(OpenAIServer& s) : s_(s) {}
  HttpResponse send(const HttpRequest& req, const BodySink& sink) override {
    HttpResponse r;
    std::string body;
    const std::string path = req.url.substr(req.url.find('/', 8));
    {
      std::lock_guard<std::mutex> lk(mu_);
      paths.push_back(req.method + " " + path);
    }
    try {
      if (req.method == "GET" && path == "/v1/models") body = s_.models().dump();
      else if (req.method == "GET" && path == "/version") body = json{{"version", "qsweep-test"}}.dump();
      else if (req.method == "POST" && path == "/v1/completions") body = s_.completions(json::parse(req.body)).dump();
      else if (req.method == "POST" && path == "/v1/chat/completions") body = s_.chat_completions(json::parse(req.body)).dump();
      else throw ApiError(404, "NotFoundError", "no route");
      r.status = 200;
      sink(body.data(), body.size());
    } catch (const ApiError& e) {
      r.status = e.status();
      r.error_body = e.body().dump();
    }
    return r;
  }
  std::mutex mu_;
  std::vector<std::string> paths;

 private:
  OpenAIServer& s_;
};

TEST(OpenAIServer, EchoLogprobsAreTheEnginesScores) {
  NEED_STORIES();
  OpenAIServer s(*st->engine, *st->tok, nullptr, {.served_name = "stories"});
  const std::vector<int> p = ids(*st->tok, "Once upon a time there was", true);
  const json r = s.completions({{"model", "stories"}, {"prompt", p}, {"max_tokens", 0}, {"echo", true}, {"logprobs", 2}});
  const json& lp = r["choices"][0]["logprobs"];
  ASSERT_EQ(lp["token_logprobs"].size(), p.size());
  EXPECT_TRUE(lp["token_logprobs"][0].is_null());
  // Each token's logprob equals the engine's loglikelihood of it after its prefix.
  for (size_t i = 1; i < p.size(); ++i) {
    const auto want = st->engine->loglikelihood({p.begin(), p.begin() + long(i)}, {p[i]});
    EXPECT_NEAR(lp["token_logprobs"][i].get<double>(), want.logprob, 1e-4) << i;
    EXPECT_GE(lp["top_logprobs"][i].size(), 2u);
    EXPECT_EQ(lp["tokens"][i], st->tok->id_to_token(p[i]));
  }
  EXPECT_EQ(r["usage"]["prompt_tokens"], p.size());
  EXPECT_EQ(r["usage"]["completion_tokens"], 0);
  EXPECT_EQ(r["object"], "text_completion");
}

TEST(OpenAIServer, GreedyGenerationStopsAtStopStringsAndEqualsTheEngine) {
  NEED_STORIES();
  OpenAIServer s(*st->engine, *st->tok, nullptr, {.served_name = "stories"});
  const json r = s.completions({{"prompt", "Once upon a time"}, {"max_tokens", 30}});
  GenerateOptions g;
  g.max_tokens = 30;
  g.stop_ids = {st->tok->eos_id()};
  const auto want = st->engine->generate(ids(*st->tok, "Once upon a time", true), g);
  EXPECT_EQ(r["choices"][0]["text"], st->tok->decode(want, true));
  EXPECT_EQ(r["choices"][0]["finish_reason"], "length");
  const json s2 = s.completions({{"prompt", "Once upon a time"}, {"max_tokens", 30}, {"stop", "Lily"}});
  const std::string text = r["choices"][0]["text"];
  ASSERT_NE(text.find("Lily"), std::string::npos) << text;
  EXPECT_EQ(s2["choices"][0]["text"], text.substr(0, text.find("Lily")));
  EXPECT_EQ(s2["choices"][0]["finish_reason"], "stop");
  // A batch of prompts: one choice each, in order.
  const json b = s.completions({{"prompt", {"Once upon a time", "Lily saw"}}, {"max_tokens", 3}});
  ASSERT_EQ(b["choices"].size(), 2u);
  EXPECT_EQ(b["choices"][1]["index"], 1);
}

TEST(OpenAIServer, BadRequestsGetOpenAIStyleErrors) {
  NEED_STORIES();
  OpenAIServer s(*st->engine, *st->tok, nullptr, {.served_name = "stories"});
  auto err = [&](json req) -> std::pair<int, std::string> {
    try {
      s.completions(req);
    } catch (const ApiError& e) {
      EXPECT_EQ(e.body()["error"]["message"], e.what());
      return {e.status(), e.what()};
    }
    return {200, ""};
  };
  EXPECT_EQ(err({{"model", "gpt-4"}, {"prompt", "x"}}).first, 404);
  EXPECT_EQ(err({{"prompt", 3}}).first, 400);
  EXPECT_EQ(err(json::object()).second, "prompt is required");
  EXPECT_EQ(err({{"prompt", {1, 99999}}}).second, "token id 99999 is outside the vocabulary (0..511)");
  EXPECT_EQ(err({{"prompt", "x"}, {"max_tokens", -1}}).first, 400);
  EXPECT_EQ(err({{"prompt", "x"}, {"n", 2}}).second, "only n = 1 is supported");
  EXPECT_EQ(err({{"prompt", "x"}, {"logprobs", 21}}).first, 400);
  EXPECT_EQ(err({{"prompt", "x"}, {"max_tokens", 0}}).first, 400);  // nothing to do without echo
  const auto [code, msg] = err({{"prompt", std::vector<int>(600, 5)}, {"max_tokens", 1}});
  EXPECT_EQ(code, 400);
  EXPECT_NE(msg.find("maximum context length is 512 tokens"), std::string::npos) << msg;
  try {
    s.chat_completions({{"messages", {{{"role", "user"}, {"content", "hi"}}}}});
    ADD_FAILURE();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);  // stories260K has no chat template
  }
}

TEST(OpenAIServer, ChatCompletionsApplyTheChatTemplate) {
  NEED_STORIES();
  const ChatTemplate chat(*parse_chat_family("vicuna_v1.1"), "<s>", "</s>");
  OpenAIServer s(*st->engine, *st->tok, &chat, {.served_name = "stories"});
  const std::vector<ChatMessage> msgs = {{"user", "Tell me a story."}};
  const json r = s.chat_completions({{"messages", {{{"role", "user"}, {"content", "Tell me a story."}}}}, {"max_tokens", 12}});
  GenerateOptions g;
  g.max_tokens = 12;
  g.stop_ids = {st->tok->eos_id()};
  const auto p = chat.encode(*st->tok, msgs, true);
  const auto want = st->engine->generate({p.begin(), p.end()}, g);
  EXPECT_EQ(r["choices"][0]["message"]["content"], st->tok->decode(want, true));
  EXPECT_EQ(r["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(r["usage"]["prompt_tokens"], p.size());
}

TEST(OpenAIBackend, AnswersEqualTheEmbeddedBackend) {
  NEED_STORIES();
  OpenAIServer s(*st->engine, *st->tok, nullptr, {.served_name = "stories"});
  auto http = std::make_shared<InProcessClient>(s);
  OpenAIBackend remote({.endpoints = {"http://127.0.0.1:1/v1"}, .concurrency = 3}, http, st->tok.get());
  EmbeddedBackend local(*st->engine, *st->tok, {.reuse_prefix = false});
  EXPECT_EQ(remote.served_model(), "stories");
  EXPECT_EQ(remote.server_version(), "qsweep-test");
  EXPECT_EQ(remote.max_length(), 512);
  const std::vector<TextLoglikelihood> ll = {{"Lily saw a big", " dog"}, {"Lily saw a big ", "tree."},
                                             {"", "Once upon a time"}, {"Tom had a red", " ball and a blue kite"}};
  const auto a = remote.loglikelihood(ll), b = local.loglikelihood(ll);
  for (size_t i = 0; i < ll.size(); ++i) {
    EXPECT_NEAR(a[i].logprob, b[i].logprob, 1e-4) << i;
    EXPECT_EQ(a[i].is_greedy, b[i].is_greedy) << i;
    EXPECT_EQ(a[i].continuation_tokens, b[i].continuation_tokens) << i;
    EXPECT_EQ(a[i].context_tokens, b[i].context_tokens) << i;
  }
  const std::vector<std::string> texts = {"Once upon a time, there was a little girl named Lily.", ""};
  const auto ra = remote.loglikelihood_rolling(texts), rb = local.loglikelihood_rolling(texts);
  EXPECT_NEAR(ra[0].logprob, rb[0].logprob, 1e-4);
  EXPECT_EQ(ra[0].tokens, rb[0].tokens);
  EXPECT_EQ(ra[1].tokens, 0);
  const std::vector<TextGeneration> gen = {{.context = "Once upon a time", .until = {"."}, .max_gen_toks = 40},
                                           {.context = "Lily", .until = {}, .max_gen_toks = 10}};
  EXPECT_EQ(remote.generate_until(gen), local.generate_until(gen));
  EXPECT_NE(remote.fingerprint().find("model=stories server=qsweep-test"), std::string::npos);
}

// Bit for bit: the server scores a prompt in one forward pass of exactly the
// tokens the in-process engine feeds when it runs a request alone (no
// prefix reuse, one request per pass), so the sums are the same doubles.
TEST(OpenAIBackend, LoglikelihoodsAreBitIdenticalToTheEngineRunningEachRequestAlone) {
  NEED_STORIES();
  // max_batch_tokens 0: every prompt in a forward pass of its own.
  OpenAIServer s(*st->engine, *st->tok, nullptr, {.served_name = "stories", .max_batch_tokens = 0});
  auto http = std::make_shared<InProcessClient>(s);
  OpenAIBackend remote({.endpoints = {"http://127.0.0.1:1/v1"}}, http, st->tok.get());
  auto alone = Engine::load(st->dir, {.threads = 2, .max_batch_tokens = 1});
  EmbeddedBackend local(*alone, *st->tok, {.reuse_prefix = false});
  const std::vector<TextLoglikelihood> ll = {{"Lily saw a big", " dog"}, {"Lily saw a big", " cat"},
                                             {"", "Once upon a time"}, {"Tom had a red", " ball and a blue kite"}};
  const auto a = remote.loglikelihood(ll), b = local.loglikelihood(ll);
  for (size_t i = 0; i < ll.size(); ++i) {
    EXPECT_EQ(a[i].logprob, b[i].logprob) << i;
    EXPECT_EQ(a[i].is_greedy, b[i].is_greedy) << i;
  }
}

// Concurrent scoring requests share forward passes (fewer passes than
// prompts) and still agree with the engine.
TEST(OpenAIServer, ConcurrentPromptScoringIsBatched) {
  NEED_STORIES();
  OpenAIServer s(*st->engine, *st->tok, nullptr, {.served_name = "stories", .batch_wait_ms = 20});
  auto http = std::make_shared<InProcessClient>(s);
  OpenAIBackend remote({.endpoints = {"http://127.0.0.1:1/v1"}, .concurrency = 8}, http, st->tok.get());
  EmbeddedBackend local(*st->engine, *st->tok, {.reuse_prefix = false});
  std::vector<TextLoglikelihood> ll;
  for (const char* c : {" dog", " cat", " tree", " ball", " bird", " house", " girl", " boy"})
    ll.push_back({"Lily saw a big", c});
  const uint64_t before = s.passes;
  const auto a = remote.loglikelihood(ll), b = local.loglikelihood(ll);
  EXPECT_EQ(s.scored, 8u);
  EXPECT_LT(s.passes - before, 8u) << "no two prompts shared a forward pass";
  for (size_t i = 0; i < ll.size(); ++i) EXPECT_NEAR(a[i].logprob, b[i].logprob, 1e-4) << i;
}

// A scripted client: answers from a queue of (status, body) per request.
class ScriptedClient : public HttpClient {
 public:
  HttpResponse send(const HttpRequest& req, const BodySink& sink) override {
    std::lock_guard<std::mutex> lk(mu);
    urls.push_back(req.url);
    tokens.push_back(req.bearer_token);
    HttpResponse r;
    if (req.url.ends_with("/models")) {
      r.status = 200;
      const std::string b = R"({"data": [{"id": "m", "max_model_len": 64}]})";
      sink(b.data(), b.size());
      return r;
    }
    if (req.url.ends_with("/version")) {
      r.status = 404;
      return r;
    }
    if (script.empty()) {
      r.error = "Connection refused";
      return r;
    }
    auto [status, body] = script.front();
    script.pop_front();
    r.status = status;
    if (status == 0) r.error = body;
    else if (status == 200) sink(body.data(), body.size());
    else r.error_body = body;
    return r;
  }
  std::mutex mu;
  std::deque<std::pair<int, std::string>> script;
  std::vector<std::string> urls, tokens;
};

const char* k_text_reply =
    R"({"choices": [{"index": 0, "message": {"role": "assistant", "content": "hello. there"}, "finish_reason": "stop"}]})";

TEST(OpenAIBackend, RetriesOverloadAndServerErrorsThenSucceeds) {
  auto http = std::make_shared<ScriptedClient>();
  OpenAIBackend b({.endpoints = {"http://a/v1"}, .chat = true, .max_attempts = 4, .backoff_s = 0.01}, http, nullptr);
  EXPECT_EQ(b.server_version(), "unknown");
  http->script = {{429, "{}"}, {503, "busy"}, {200, k_text_reply}};
  const std::vector<TextGeneration> g = {{.context = "hi", .until = {"."}, .max_gen_toks = 5}};
  EXPECT_EQ(b.generate_until(g), std::vector<std::string>{"hello"});
  EXPECT_EQ(b.retries(), 2);
}

TEST(OpenAIBackend, GivesUpWithAClearMessageAndDoesNotRetryBadRequests) {
  auto http = std::make_shared<ScriptedClient>();
  OpenAIBackend b({.endpoints = {"http://a/v1"}, .chat = true, .max_attempts = 3, .backoff_s = 0.01}, http, nullptr);
  const std::vector<TextGeneration> g = {{.context = "hi", .until = {}, .max_gen_toks = 5}};
  try {  // the server died: connection refused every time
    b.generate_until(g);
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("POST http://a/v1/chat/completions: Connection refused (gave up after 3 attempts)"),
              std::string::npos)
        << e.what();
  }
  http->script = {{400, R"({"error": {"message": "max_tokens is too large"}})"}};
  const int before = b.requests_sent();
  try {
    b.generate_until(g);
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("HTTP 400: max_tokens is too large"), std::string::npos) << e.what();
  }
  EXPECT_EQ(b.requests_sent(), before + 1);  // not retried
  http->script = {{200, R"({"choices": []})"}};
  try {
    b.generate_until(g);
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/chat/completions: unexpected response"), std::string::npos) << e.what();
  }
}

TEST(OpenAIBackend, ApiKeyOnlyFromTheEnvironmentAndNeverShown) {
  setenv("QSWEEP_TEST_API_KEY", "sk-secret-123", 1);
  auto http = std::make_shared<ScriptedClient>();
  OpenAIBackend b({.endpoints = {"http://a/v1", "http://b/v1"}, .concurrency = 1, .api_key_env = "QSWEEP_TEST_API_KEY",
                   .chat = true, .max_attempts = 1},
                  http, nullptr);
  http->script = {{200, k_text_reply}, {200, k_text_reply}, {500, "sk-secret-123?"}};
  const std::vector<TextGeneration> g(2, {.context = "hi", .until = {"."}, .max_gen_toks = 5});
  b.generate_until(g);
  for (const auto& t : http->tokens) EXPECT_EQ(t, "sk-secret-123");
  EXPECT_EQ(b.fingerprint().find("sk-"), std::string::npos);
  EXPECT_EQ(b.describe().find("sk-"), std::string::npos);
  // Both endpoints served a request (least busy first).
  size_t a = 0, bb = 0;
  for (const auto& u : http->urls) a += u.starts_with("http://a/v1/chat"), bb += u.starts_with("http://b/v1/chat");
  EXPECT_EQ(a, 1u);
  EXPECT_EQ(bb, 1u);
  unsetenv("QSWEEP_TEST_API_KEY");
}

}  // namespace
}  // namespace qsweep::model
