#include "model/backend/openai_backend.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <thread>

#include "model/engine/rolling.h"

namespace qsweep::model {

using json = nlohmann::json;

namespace {

constexpr int k_openai_backend_version = 1;

// Retryable: no response, a timeout, 408, 429 and 5xx.
bool retryable(const HttpResponse& r) {
  if (!r.error.empty()) return !r.aborted;
  return r.status == 408 || r.status == 429 || r.status >= 500;
}

std::string error_text(const HttpResponse& r) {
  if (!r.error.empty()) return r.error;
  std::string msg = "HTTP " + std::to_string(r.status);
  try {  // OpenAI-style {"error": {"message": ...}}
    const json e = json::parse(r.error_body);
    if (e.contains("error") && e["error"].is_object() && e["error"].contains("message"))
      return msg + ": " + e["error"]["message"].get<std::string>();
  } catch (const std::exception&) {
  }
  return msg + (r.error_body.empty() ? "" : ": " + r.error_body.substr(0, 300));
}

}  // namespace

OpenAIBackend::OpenAIBackend(OpenAIBackendOptions opts, std::shared_ptr<HttpClient> http, const Tokenizer* tok)
    : opts_(std::move(opts)), http_(std::move(http)), tok_(tok) {
  if (opts_.endpoints.empty()) throw std::runtime_error("openai backend: no endpoint");
  for (auto& e : opts_.endpoints)
    while (!e.empty() && e.back() == '/') e.pop_back();
  opts_.concurrency = std::max(1, opts_.concurrency);
  opts_.max_attempts = std::max(1, opts_.max_attempts);
  in_flight_.assign(opts_.endpoints.size(), 0);
  const json models = get("/models");
  if (!models.contains("data") || !models["data"].is_array() || models["data"].empty())
    throw std::runtime_error("openai backend: " + opts_.endpoints[0] + "/models lists no model");
  model_ = opts_.model;
  const json* entry = nullptr;
  for (const auto& m : models["data"])
    if (model_.empty() || m.value("id", std::string()) == model_) {
      entry = &m;
      break;
    }
  if (!entry) {
    std::string have;
    for (const auto& m : models["data"]) have += (have.empty() ? "" : ", ") + m.value("id", std::string());
    throw std::runtime_error("openai backend: the server at " + opts_.endpoints[0] + " does not serve '" +
                             model_ + "' (it serves: " + have + ")");
  }
  model_ = (*entry)["id"].get<std::string>();
  // A `qsweep serve` says whether it batches prompt scoring; unbatched
  // answers are bitwise reproducible, so they get a journal of their own.
  unbatched_ = entry->contains("max_batch_tokens") && (*entry)["max_batch_tokens"] == 0;
  max_length_ = opts_.max_length > 0 ? opts_.max_length : entry->value("max_model_len", 2048);
  try {
    version_ = get("/../version").value("version", std::string());
  } catch (const std::exception&) {
    version_ = "unknown";  // not every OpenAI-compatible server reports one
  }
  if (tok_) enc_.emplace(*tok_, opts_.add_bos_token, max_length_);
}

std::string OpenAIBackend::fingerprint() const {
  // Where the server runs is not part of it (endpoints serving the same
  // model share answers); what it serves and its version are.
  return "openai/v" + std::to_string(k_openai_backend_version) + " model=" + model_ + " server=" + version_ +
         " add_bos_token=" + (opts_.add_bos_token ? "1" : "0") + " max_length=" + std::to_string(max_length_) +
         (opts_.chat ? " chat=1" : "") + (unbatched_ ? " unbatched=1" : "");
}

std::string OpenAIBackend::describe() const {
  return "OpenAI-compatible server (" + std::to_string(opts_.endpoints.size()) + " endpoint(s), " +
         opts_.endpoints[0] + "), model=" + model_ + ", server version " + version_ +
         ", add_bos_token=" + (opts_.add_bos_token ? "True" : "False") + ", max_length=" + std::to_string(max_length_);
}

const HflmEncoder& OpenAIBackend::enc() const {
  if (!enc_)
    throw std::runtime_error("openai backend: loglikelihood and token-id requests need the model's tokenizer "
                             "(the infer node's checkpoint folder)");
  return *enc_;
}

size_t OpenAIBackend::acquire() {
  std::unique_lock<std::mutex> lk(mu_);
  size_t best = 0;
  cv_.wait(lk, [&] {
    int low = opts_.concurrency;
    for (size_t k = 0; k < in_flight_.size(); ++k) {  // least busy, round-robin among equals
      const size_t e = (next_ + k) % in_flight_.size();
      if (in_flight_[e] < low) low = in_flight_[e], best = e;
    }
    return low < opts_.concurrency;
  });
  ++in_flight_[best];
  next_ = best + 1;
  return best;
}

void OpenAIBackend::release(size_t e) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    --in_flight_[e];
  }
  cv_.notify_one();
}

json OpenAIBackend::request(const std::string& method, const std::string& path, const json* body) {
  std::string last;
  double delay = opts_.backoff_s;
  for (int attempt = 1;; ++attempt) {
    const size_t e = acquire();
    HttpRequest req;
    req.url = opts_.endpoints[e] + path;
    if (path.rfind("/../", 0) == 0) {  // a server-level path ("/version") beside the /v1 root
      const std::string& b = opts_.endpoints[e];
      req.url = b.substr(0, b.rfind('/')) + path.substr(3);
    }
    req.method = method;
    req.headers["Accept"] = "application/json";
    if (body) {
      req.headers["Content-Type"] = "application/json";
      req.body = body->dump(-1, ' ', false, json::error_handler_t::replace);
    }
    if (!opts_.api_key_env.empty())
      if (const char* k = std::getenv(opts_.api_key_env.c_str()); k && *k) req.bearer_token = k;
    req.max_redirects = 0;
    req.connect_timeout_s = 10;
    req.stall_timeout_s = opts_.timeout_s;
    req.timeout_s = opts_.timeout_s;
    std::string text;
    ++sent_;
    const HttpResponse r = http_->send(req, [&](const char* d, size_t n) {
      text.append(d, n);
      return true;
    });
    release(e);
    if (r.ok()) {
      try {
        return json::parse(text);
      } catch (const std::exception& ex) {
        throw std::runtime_error(method + " " + req.url + ": the response is not JSON: " + ex.what());
      }
    }
    last = method + " " + req.url + ": " + error_text(r);
    if (!retryable(r) || attempt >= opts_.max_attempts)
      throw std::runtime_error(last + (retryable(r) ? " (gave up after " + std::to_string(attempt) + " attempts)" : ""));
    ++retried_;
    std::this_thread::sleep_for(std::chrono::duration<double>(delay));
    delay = std::min(30.0, delay * 2);
  }
}

json OpenAIBackend::get(const std::string& path) { return request("GET", path, nullptr); }
json OpenAIBackend::post(const std::string& path, const json& body) { return request("POST", path, &body); }

void OpenAIBackend::parallel(size_t n, const std::function<void(size_t)>& fn) {
  const size_t threads = std::min(n, opts_.endpoints.size() * size_t(opts_.concurrency));
  std::atomic<size_t> next{0};
  std::exception_ptr first;
  std::mutex emu;
  auto work = [&] {
    for (size_t i; (i = next++) < n;) {
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lk(emu);
        if (!first) first = std::current_exception();
        next = n;  // stop handing out work
      }
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (first) std::rethrow_exception(first);
}

OpenAIBackend::TokenScores OpenAIBackend::score_prompt(const std::vector<int>& ids) {
  const json resp = post("/completions", {{"model", model_},
                                          {"prompt", ids},
                                          {"max_tokens", prompt_only() ? 0 : 1},
                                          {"temperature", 0},
                                          {"logprobs", 1},
                                          {"echo", true},
                                          {"seed", 1234}});
  TokenScores s;
  try {
    const json& lp = resp.at("choices").at(0).at("logprobs");
    const json& tl = lp.at("token_logprobs");
    const json& top = lp.at("top_logprobs");
    if (tl.size() < ids.size() || top.size() < ids.size())
      throw std::runtime_error("echo returned " + std::to_string(tl.size()) + " token logprobs for a prompt of " +
                               std::to_string(ids.size()) + " tokens (does the server support echo with logprobs?)");
    s.logprobs.resize(ids.size(), 0);
    s.greedy.resize(ids.size(), true);
    for (size_t i = 1; i < ids.size(); ++i) {
      s.logprobs[i] = tl[i].get<double>();
      double best = -1e300;
      for (const auto& [tok, v] : top[i].items()) best = std::max(best, v.get<double>());
      s.greedy[i] = s.logprobs[i] >= best;  // lm-eval: tok == max(top.values())
    }
  } catch (const std::exception& e) {
    throw std::runtime_error("POST /completions: unexpected response (" + std::string(e.what()) +
                             "): " + resp.dump().substr(0, 300));
  }
  return s;
}

bool OpenAIBackend::prompt_only() const { return version_.rfind("qsweep-", 0) == 0; }

LoglikelihoodAnswer OpenAIBackend::score_pair(std::vector<int> ctx, const std::vector<int>& cont) {
  // lm-eval TemplateAPI: (context + continuation)[-max_length:], one token
  // generated after it. A `qsweep serve` scores the prompt alone (max_tokens
  // 0), so the window is the embedded engine's: the last max_length + 1
  // tokens, the last of which is never an input.
  std::vector<int> ids = ctx;
  ids.insert(ids.end(), cont.begin(), cont.end());
  const size_t window = size_t(max_length_) + (prompt_only() ? 1 : 0);
  const size_t drop = ids.size() > window ? ids.size() - window : 0;
  ids.erase(ids.begin(), ids.begin() + long(drop));
  const size_t ctxlen = ctx.size() > drop ? ctx.size() - drop : 0;
  if (ctxlen == 0) throw std::runtime_error("loglikelihood: the continuation alone exceeds max_length");
  const TokenScores s = score_prompt(ids);
  LoglikelihoodAnswer a;
  a.is_greedy = true;
  for (size_t i = ctxlen; i < ids.size(); ++i) {
    a.logprob += s.logprobs[i];
    a.is_greedy = a.is_greedy && s.greedy[i];
  }
  a.context_tokens = int(ctxlen);
  a.continuation_tokens = int(cont.size());
  return a;
}

std::vector<LoglikelihoodAnswer> OpenAIBackend::loglikelihood(std::span<const TextLoglikelihood> reqs) {
  std::vector<std::pair<std::vector<int>, std::vector<int>>> pairs(reqs.size());
  HflmEncoder::ContextIds memo;
  for (size_t i = 0; i < reqs.size(); ++i) {
    pairs[i] = enc().encode_pair(reqs[i].context, reqs[i].continuation, &memo);
    if (pairs[i].second.empty())
      throw std::runtime_error("loglikelihood request " + std::to_string(i) +
                               ": the continuation encodes to no token (continuation \"" + reqs[i].continuation +
                               "\")");
    if (pairs[i].first.empty()) pairs[i].first.push_back(enc().prefix_token());
  }
  std::vector<LoglikelihoodAnswer> out(reqs.size());
  parallel(reqs.size(), [&](size_t i) { out[i] = score_pair(pairs[i].first, pairs[i].second); });
  return out;
}

std::vector<RollingAnswer> OpenAIBackend::loglikelihood_rolling(std::span<const std::string> texts) {
  struct Win {
    size_t text;
    std::vector<int> ctx, cont;
  };
  std::vector<Win> wins;
  std::vector<RollingAnswer> out(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::vector<int> ids = enc().encode(texts[i]);
    out[i].tokens = int(ids.size());
    if (ids.empty()) continue;
    for (const auto& w : rolling_windows(ids, enc().prefix_token(), max_length_)) {
      Win x{i, {}, {}};
      disjoint_window(w, &x.ctx, &x.cont);
      wins.push_back(std::move(x));
    }
  }
  std::vector<double> lp(wins.size());
  parallel(wins.size(), [&](size_t k) { lp[k] = score_pair(wins[k].ctx, wins[k].cont).logprob; });
  for (size_t k = 0; k < wins.size(); ++k) out[wins[k].text].logprob += lp[k];
  return out;
}

std::vector<std::string> OpenAIBackend::generate_until(std::span<const TextGeneration> reqs) {
  std::vector<std::string> out(reqs.size());
  parallel(reqs.size(), [&](size_t i) {
    const TextGeneration& r = reqs[i];
    if (r.max_gen_toks <= 0)
      throw std::runtime_error("generate_until request " + std::to_string(i) + ": max_gen_toks must be positive");
    size_t longest = 0;
    const std::vector<std::string> stops = HflmEncoder::stop_strings(r.until, &longest);
    json body = {{"model", model_},
                 {"max_tokens", r.max_gen_toks},
                 {"temperature", r.do_sample ? r.temperature : 0.0},
                 {"seed", r.seed}};
    if (!stops.empty()) body["stop"] = stops;
    std::string text;
    const std::string path = opts_.chat ? "/chat/completions" : "/completions";
    if (opts_.chat) body["messages"] = json::array({{{"role", "user"}, {"content", r.context}}});
    else body["prompt"] = enc().generation_prompt(r);
    const json resp = post(path, body);
    try {
      const json& c = resp.at("choices").at(0);
      text = opts_.chat ? c.at("message").at("content").get<std::string>() : c.at("text").get<std::string>();
    } catch (const json::exception& e) {
      throw std::runtime_error("POST " + path + ": unexpected response (" + e.what() + "): " + resp.dump().substr(0, 300));
    }
    out[i] = HflmEncoder::cut_at_stops(std::move(text), stops);
  });
  return out;
}

}  // namespace qsweep::model
