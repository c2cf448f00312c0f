#include "model/serve/openai_server.h"

#include <algorithm>
#include <chrono>
#include <numeric>

#include "model/backend/hflm_encoding.h"

namespace qsweep::model {

using json = nlohmann::json;

namespace {

[[noreturn]] void bad(const std::string& param, const std::string& msg) {
  throw ApiError(400, "invalid_request_error", msg, param);
}

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool is_id_list(const json& p) {
  return p.is_array() && !p.empty() && std::all_of(p.begin(), p.end(), [](const json& x) { return x.is_number_integer(); });
}

}  // namespace

json ApiError::body() const {
  return {{"error", {{"message", what()}, {"type", type_}, {"param", param_.empty() ? json(nullptr) : json(param_)},
                     {"code", status_}}}};
}

OpenAIServer::Slot::Slot(OpenAIServer& s) : s_(s) {
  std::unique_lock<std::mutex> lk(s_.mu_);
  s_.cv_.wait(lk, [&] { return s_.running_ < s_.opts_.max_concurrent; });
  ++s_.running_;
}

OpenAIServer::Slot::~Slot() {
  {
    std::lock_guard<std::mutex> lk(s_.mu_);
    --s_.running_;
  }
  s_.cv_.notify_one();
}

OpenAIServer::OpenAIServer(const TokenEngine& engine, const Tokenizer& tok, const ChatTemplate* chat,
                           OpenAIServerOptions opts)
    : engine_(engine), tok_(tok), chat_(chat), opts_(std::move(opts)) {
  opts_.max_concurrent = std::max(1, opts_.max_concurrent);
  eos_ids_ = engine_.config().eos_token_ids;
  if (tok_.eos_id() >= 0 && std::find(eos_ids_.begin(), eos_ids_.end(), tok_.eos_id()) == eos_ids_.end())
    eos_ids_.push_back(tok_.eos_id());
  batcher_ = std::thread([this] { batch_loop(); });
}

OpenAIServer::~OpenAIServer() {
  {
    std::lock_guard<std::mutex> lk(bmu_);
    stop_ = true;
  }
  bcv_.notify_all();
  batcher_.join();
}

std::vector<float> OpenAIServer::prompt_logits(const std::vector<int>& ids) {
  if (ids.size() < 2) return {};
  ScoreJob job;
  job.ids.assign(ids.begin(), ids.end() - 1);
  std::unique_lock<std::mutex> lk(bmu_);
  queue_.push_back(&job);
  bcv_.notify_all();
  bdone_.wait(lk, [&] { return job.done; });
  if (job.error) std::rethrow_exception(job.error);
  return std::move(job.logits);
}

// Takes the queued prompts (after a short wait for more to arrive), runs as
// many as fit max_batch_tokens in one forward pass, hands each its rows.
void OpenAIServer::batch_loop() {
  const size_t V = size_t(engine_.config().vocab_size);
  for (;;) {
    std::vector<ScoreJob*> batch;
    {
      std::unique_lock<std::mutex> lk(bmu_);
      bcv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (stop_ && queue_.empty()) return;
      if (opts_.max_batch_tokens > 0 && opts_.batch_wait_ms > 0) {
        lk.unlock();
        std::this_thread::sleep_for(std::chrono::milliseconds(opts_.batch_wait_ms));
        lk.lock();
      }
      size_t tokens = 0, take = 0;
      while (take < queue_.size() &&
             (take == 0 || (opts_.max_batch_tokens > 0 &&
                            tokens + queue_[take]->ids.size() <= size_t(opts_.max_batch_tokens)))) {
        tokens += queue_[take]->ids.size();
        ++take;
      }
      batch.assign(queue_.begin(), queue_.begin() + long(take));
      queue_.erase(queue_.begin(), queue_.begin() + long(take));
    }
    std::vector<std::vector<int>> seqs;
    for (auto* j : batch) seqs.push_back(j->ids);
    std::exception_ptr err;
    std::vector<float> all;
    try {
      all = engine_.logits_batch(seqs);
    } catch (...) {
      err = std::current_exception();
    }
    ++passes;
    scored += batch.size();
    {
      std::lock_guard<std::mutex> lk(bmu_);
      size_t off = 0;
      for (auto* j : batch) {
        if (err) {
          j->error = err;
        } else {
          j->logits.assign(all.begin() + long(off * V), all.begin() + long((off + j->ids.size()) * V));
          off += j->ids.size();
        }
        j->done = true;
      }
    }
    bdone_.notify_all();
  }
}

json OpenAIServer::models() const {
  return {{"object", "list"},
          {"data", json::array({{{"id", opts_.served_name},
                                 {"object", "model"},
                                 {"created", 0},
                                 {"owned_by", "qsweep"},
                                 {"max_model_len", engine_.max_length()},
                                 // answers depend on batching (see OpenAIServerOptions)
                                 {"max_batch_tokens", opts_.max_batch_tokens}}})}};
}

void OpenAIServer::check_model(const json& req) const {
  if (req.contains("model") && !req["model"].is_null() && req["model"] != opts_.served_name)
    throw ApiError(404, "NotFoundError",
                   "The model `" + (req["model"].is_string() ? req["model"].get<std::string>() : req["model"].dump()) +
                       "` does not exist (this server serves `" + opts_.served_name + "`).",
                   "model");
  if (req.contains("n") && req["n"] != 1) bad("n", "only n = 1 is supported");
}

OpenAIServer::Sampling OpenAIServer::sampling(const json& req, int default_max_tokens) const {
  Sampling s;
  s.max_tokens = default_max_tokens;
  if (req.contains("max_tokens") && !req["max_tokens"].is_null()) {
    if (!req["max_tokens"].is_number_integer() || req["max_tokens"].get<int64_t>() < 0)
      bad("max_tokens", "max_tokens must be a non-negative integer");
    s.max_tokens = int(std::min<int64_t>(req["max_tokens"].get<int64_t>(), 1 << 20));
  }
  if (req.contains("temperature") && !req["temperature"].is_null()) {
    if (!req["temperature"].is_number() || req["temperature"].get<double>() < 0)
      bad("temperature", "temperature must be a number >= 0");
    s.temperature = req["temperature"].get<double>();
  }
  if (req.contains("top_p") && !req["top_p"].is_null()) {
    if (!req["top_p"].is_number() || req["top_p"].get<double>() <= 0 || req["top_p"].get<double>() > 1)
      bad("top_p", "top_p must be in (0, 1]");
    s.top_p = req["top_p"].get<double>();
  }
  if (req.contains("seed") && !req["seed"].is_null()) {
    if (!req["seed"].is_number_integer()) bad("seed", "seed must be an integer");
    s.seed = uint64_t(req["seed"].get<int64_t>());
  }
  if (req.contains("stop") && !req["stop"].is_null()) {
    if (req["stop"].is_string()) {
      s.stop.push_back(req["stop"].get<std::string>());
    } else if (req["stop"].is_array()) {
      for (const auto& x : req["stop"]) {
        if (!x.is_string()) bad("stop", "stop must be a string or a list of strings");
        s.stop.push_back(x.get<std::string>());
      }
    } else {
      bad("stop", "stop must be a string or a list of strings");
    }
  }
  if (req.contains("logprobs") && !req["logprobs"].is_null()) {
    if (req["logprobs"].is_boolean()) {  // chat style: logprobs: true
      if (req["logprobs"].get<bool>()) s.logprobs = 0;
    } else if (!req["logprobs"].is_number_integer() || req["logprobs"].get<int64_t>() < 0 ||
               req["logprobs"].get<int64_t>() > 20) {
      bad("logprobs", "logprobs must be an integer in 0..20");
    } else {
      s.logprobs = int(req["logprobs"].get<int64_t>());
    }
  }
  return s;
}

std::vector<int> OpenAIServer::prompt_ids(const json& p) const {
  std::vector<int> ids;
  if (p.is_string()) {
    const auto e = tok_.encode(p.get<std::string>(), true);
    ids.assign(e.begin(), e.end());
  } else if (is_id_list(p)) {
    const int64_t V = engine_.config().vocab_size;
    for (const auto& x : p) {
      const int64_t t = x.get<int64_t>();
      if (t < 0 || t >= V) bad("prompt", "token id " + std::to_string(t) + " is outside the vocabulary (0.." + std::to_string(V - 1) + ")");
      ids.push_back(int(t));
    }
  } else {
    bad("prompt", "prompt must be a string, a list of token ids, or a list of those");
  }
  if (ids.empty()) bad("prompt", "the prompt is empty");
  return ids;
}

OpenAIServer::Generated OpenAIServer::generate(const std::vector<int>& prompt, const Sampling& s) const {
  Generated g;
  if (s.max_tokens == 0) {
    g.finish_reason = "length";
    return g;
  }
  GenerateOptions o;
  o.max_tokens = s.max_tokens;
  o.temperature = float(s.temperature);
  o.top_p = float(s.top_p);
  o.seed = s.seed;
  o.stop_ids = eos_ids_;
  size_t longest = 0;
  const std::vector<std::string> stops = HflmEncoder::stop_strings(s.stop, &longest);
  bool stopped = false;
  const auto check = HflmEncoder::stop_check(tok_, stops, longest);
  o.stop = [&](const std::vector<int>& gen) { return stopped = check(gen); };
  g.ids = engine_.generate(prompt, o);
  const std::string full = tok_.decode(g.ids, true);
  g.text = HflmEncoder::cut_at_stops(full, stops);
  const bool eos = int(g.ids.size()) < s.max_tokens && !stopped;
  g.finish_reason = stopped || eos || g.text.size() < full.size() ? "stop" : "length";
  return g;
}

json OpenAIServer::logprobs_of(const std::vector<int>& ids, size_t first, int top_k, size_t text_base) {
  // Rows 0..n-2 of the logits predict tokens 1..n-1.
  const int V = engine_.config().vocab_size;
  json tokens = json::array(), lps = json::array(), tops = json::array(), offsets = json::array();
  const std::vector<float> lg = prompt_logits(ids);
  size_t off = text_base;
  for (size_t i = first; i < ids.size(); ++i) {
    const std::string piece = tok_.id_to_token(ids[i]);  // as vLLM: the vocabulary's piece
    tokens.push_back(piece);
    offsets.push_back(off);
    off += piece.size();
    if (i == 0) {
      lps.push_back(nullptr);
      tops.push_back(nullptr);
      continue;
    }
    const float* row = &lg[(i - 1) * size_t(V)];
    lps.push_back(score_token(row, V, ids[i]).logprob);
    json top = json::object();
    std::vector<int> order(static_cast<size_t>(V));
    std::iota(order.begin(), order.end(), 0);
    const int k = std::max(1, top_k);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](int a, int b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    for (int j = 0; j < k; ++j) top[tok_.id_to_token(order[size_t(j)])] = score_token(row, V, order[size_t(j)]).logprob;
    top[piece] = score_token(row, V, ids[i]).logprob;  // vLLM includes the chosen token
    tops.push_back(std::move(top));
  }
  return {{"tokens", tokens}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

json OpenAIServer::completions(const json& req) {
  if (!req.is_object()) bad("", "the body must be a JSON object");
  check_model(req);
  if (!req.contains("prompt")) bad("prompt", "prompt is required");
  const Sampling s = sampling(req, 16);
  const bool echo = req.value("echo", false);
  if (s.max_tokens == 0 && !echo) bad("max_tokens", "max_tokens must be at least 1 (or 0 with echo)");
  std::vector<json> prompts;
  const json& p = req["prompt"];
  if (p.is_array() && !p.empty() && !is_id_list(p)) prompts.assign(p.begin(), p.end());  // a batch
  else prompts.push_back(p);
  json choices = json::array();
  size_t prompt_tokens = 0, completion_tokens = 0;
  Slot slot(*this);
  for (size_t c = 0; c < prompts.size(); ++c) {
    const std::vector<int> ids = prompt_ids(prompts[c]);
    if (int(ids.size()) + s.max_tokens > engine_.max_length() + (s.max_tokens == 0 ? 1 : 0))
      bad("prompt", "This model's maximum context length is " + std::to_string(engine_.max_length()) +
                        " tokens. However, you requested " + std::to_string(ids.size() + size_t(s.max_tokens)) +
                        " tokens (" + std::to_string(ids.size()) + " in the messages, " +
                        std::to_string(s.max_tokens) + " in the completion).");
    const Generated g = generate(ids, s);
    std::string text = g.text;
    const std::string prompt_text = prompts[c].is_string() ? prompts[c].get<std::string>() : tok_.decode(ids, false);
    if (echo) text = prompt_text + text;
    json choice = {{"index", c}, {"text", text}, {"finish_reason", g.finish_reason}, {"logprobs", nullptr}};
    if (s.logprobs) {
      std::vector<int> all = ids;
      all.insert(all.end(), g.ids.begin(), g.ids.end());
      choice["logprobs"] = logprobs_of(all, echo ? 0 : ids.size(), *s.logprobs, echo ? 0 : prompt_text.size());
    }
    choices.push_back(std::move(choice));
    prompt_tokens += ids.size();
    completion_tokens += g.ids.size();
  }
  return {{"id", "cmpl-" + std::to_string(++counter_)},
          {"object", "text_completion"},
          {"created", now_s()},
          {"model", opts_.served_name},
          {"choices", choices},
          {"usage", {{"prompt_tokens", prompt_tokens},
                     {"completion_tokens", completion_tokens},
                     {"total_tokens", prompt_tokens + completion_tokens}}}};
}

json OpenAIServer::chat_completions(const json& req) {
  if (!req.is_object()) bad("", "the body must be a JSON object");
  check_model(req);
  if (!chat_)
    bad("messages", "this model has no chat template; start `qsweep serve` with --chat-template");
  if (!req.contains("messages") || !req["messages"].is_array() || req["messages"].empty())
    bad("messages", "messages must be a non-empty list of {role, content}");
  std::vector<ChatMessage> msgs;
  for (const auto& m : req["messages"]) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string())
      bad("messages", "each message needs a string role and a string content");
    msgs.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  const Sampling s = sampling(req, std::max(1, engine_.max_length() / 2));
  if (s.max_tokens == 0) bad("max_tokens", "max_tokens must be at least 1");
  std::vector<int> ids;
  try {
    const auto e = chat_->encode(tok_, msgs, true);
    ids.assign(e.begin(), e.end());
  } catch (const std::exception& e) {
    bad("messages", e.what());
  }
  if (int(ids.size()) >= engine_.max_length())
    bad("messages", "This model's maximum context length is " + std::to_string(engine_.max_length()) +
                        " tokens; the messages take " + std::to_string(ids.size()));
  Sampling s2 = s;
  s2.max_tokens = std::min(s.max_tokens, engine_.max_length() - int(ids.size()));
  Slot slot(*this);
  const Generated g = generate(ids, s2);
  return {{"id", "chatcmpl-" + std::to_string(++counter_)},
          {"object", "chat.completion"},
          {"created", now_s()},
          {"model", opts_.served_name},
          {"choices", json::array({{{"index", 0},
                                    {"message", {{"role", "assistant"}, {"content", g.text}}},
                                    {"finish_reason", g.finish_reason}}})},
          {"usage", {{"prompt_tokens", ids.size()},
                     {"completion_tokens", g.ids.size()},
                     {"total_tokens", ids.size() + g.ids.size()}}}};
}

}  // namespace qsweep::model
