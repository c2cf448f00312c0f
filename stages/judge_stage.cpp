#include "stages/judge_stage.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <thread>
#include <stdexcept>

#include "cache/hash.h"
#include "model/backend/openai_backend.h"
#include "model/util/text_file.h"
#include "scoring/judge/mtbench_judge.h"
#include "scoring/readers.h"
#include "stages/infer_backend.h"
#include "stages/journaled_answers.h"
#include "stages/model_input.h"

namespace qsweep {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct Job {
  size_t question;  // index into questions
  int turn;         // 1 or 2
  int repeat;
  scoring::JudgeRequest req;
  std::string hash;
};

double opt_number(const json& p, const char* k, double dflt) {
  return p.contains(k) && p[k].is_number() ? p[k].get<double>() : dflt;
}

// flock(2) on <journal dir>/<H(fingerprint)>.lock while the node judges.
class JournalLock {
 public:
  JournalLock(const StageContext& ctx, const std::string& fingerprint) {
    if (ctx.journal_dir.empty()) return;
    fs::create_directories(ctx.journal_dir);
    cache::KeyHasher h;
    h.field("judge-lock", fingerprint);
    const fs::path p = ctx.journal_dir / (h.finish().hex() + ".lock");
    fd_ = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) return;  // no lock: only the dedupe between parallel nodes is lost
    while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      if (ctx.cancelled()) throw std::runtime_error("cancelled while waiting for another node of this judge");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~JournalLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  JournalLock(const JournalLock&) = delete;
  JournalLock& operator=(const JournalLock&) = delete;

 private:
  int fd_ = -1;
};

class BudgetExceeded : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace

std::string JudgeStage::description() const {
  return "MT-Bench single-answer grading (FastChat) of an infer node's answers by a judge behind an "
         "OpenAI-compatible API: per-turn ratings, unparsed judgments counted, token usage, cost and a budget";
}

std::vector<ParamSpec> JudgeStage::params() const {
  return {
      {"judge", ParamType::kAny, true, nullptr,
       "the judge's backend: {kind: openai, endpoints, model, api_key_env, ...} or {kind: vllm|qsweep, ...} "
       "(with input judge_model); see docs/serving.md"},
      {"judge_snapshot", ParamType::kString, false, "",
       "the judge model's dated snapshot (e.g. gpt-4-0613): part of the key"},
      {"references", ParamType::kString, false, "reference_answer_gpt-4.jsonl",
       "reference answers in the dataset folder (FastChat: reference_answer/<judge>.jsonl)"},
      {"prompts", ParamType::kString, false, "judge_prompts.jsonl", "judge prompts in the dataset folder"},
      {"questions", ParamType::kString, false, "question.jsonl", "questions in the dataset folder"},
      {"max_tokens", ParamType::kInt, false, 2048, "judge completion length (FastChat: 2048)"},
      {"repeats", ParamType::kInt, false, 1, "judgments per (question, turn); the median rating counts"},
      {"limit", ParamType::kInt, false, nullptr, "only the first N questions (marked as limited)"},
      {"budget_usd", ParamType::kNumber, false, nullptr,
       "stop before the estimated spend of this node's judge calls would exceed it (null: no limit)"},
      {"price_input_per_mtok", ParamType::kNumber, false, 30.0, "USD per million prompt tokens (gpt-4: 30)"},
      {"price_output_per_mtok", ParamType::kNumber, false, 60.0, "USD per million completion tokens (gpt-4: 60)"},
      {"batch_size", ParamType::kInt, false, 16, "judge calls per journal write"},
  };
}

Resources JudgeStage::default_resources() const {
  Resources r;
  r.threads = 1;
  r.api = 1;
  return r;
}

std::string JudgeStage::check_params(const json& p) const {
  const json& j = p.value("judge", json(nullptr));
  if (!j.is_object()) return "params.judge: a backend mapping {kind: openai|vllm|qsweep, ...} (docs/serving.md)";
  if (j.value("kind", std::string()) == "embedded")
    return "params.judge.kind: the judge runs behind an OpenAI-compatible API (openai, vllm, qsweep)";
  if (std::string e = check_backend_param(j); !e.empty()) {
    std::string m = e;
    if (m.rfind("params.backend", 0) == 0) m.replace(0, 14, "params.judge");
    return m;
  }
  if (p.value("repeats", int64_t(1)) < 1) return "params.repeats: must be >= 1";
  if (p.value("max_tokens", int64_t(2048)) < 1) return "params.max_tokens: must be >= 1";
  if (p.contains("limit") && p["limit"].is_number_integer() && p["limit"].get<int64_t>() <= 0)
    return "params.limit: a positive number of questions (or null)";
  if (p.contains("budget_usd") && p["budget_usd"].is_number() && p["budget_usd"].get<double>() < 0)
    return "params.budget_usd: must be >= 0";
  if (p.value("batch_size", int64_t(16)) < 1) return "params.batch_size: must be >= 1";
  return {};
}

std::vector<cache::KeyField> JudgeStage::fingerprint(const json& p) const {
  const std::string id = remote_backend_identity(p.value("judge", json(nullptr)));
  if (id.empty()) return {};
  return {{"judge_server", id}};
}

void JudgeStage::run(StageContext& ctx) const {
  if (std::string e = check_params(ctx.params); !e.empty()) throw std::runtime_error(e);
  const json& p = ctx.params;
  const InputArtifact& ans_in = single_input(ctx, "answers", "an infer artifact of mode mt_bench");
  const fs::path data = single_input(ctx, "dataset", "the MT-Bench folder").path;
  fs::path judge_dir;
  if (auto it = ctx.inputs.find("judge_model"); it != ctx.inputs.end() && !it->second.items.empty())
    judge_dir = find_model_dir(it->second.items.front().path);

  // Questions, references, prompts, answers.
  auto data_file = [&](const char* param) { return find_data_file(data, p.value(param, std::string())); };
  const auto prompts = scoring::load_judge_prompts(data_file("prompts"));
  std::vector<scoring::MtBenchQuestion> qs = scoring::load_mtbench_questions(data_file("questions"), data_file("references"));
  std::map<int64_t, std::vector<std::string>> answers;
  {
    const fs::path f = ans_in.path / "answers.jsonl";
    std::error_code ec;
    if (!fs::is_regular_file(f, ec))
      throw std::runtime_error(ans_in.node + ": no answers.jsonl (the answers input is an infer node of mode mt_bench)");
    for (const auto& a : scoring::read_jsonl(f)) {  // names FILE:LINE for a bad line
      if (!a.contains("question_id")) throw std::runtime_error(f.string() + ": an answer record without question_id");
      answers[a["question_id"].get<int64_t>()] = a.at("choices").at(0).at("turns").get<std::vector<std::string>>();
    }
  }
  std::optional<size_t> limit;
  if (p.contains("limit") && p["limit"].is_number_integer()) limit = size_t(p["limit"].get<int64_t>());
  if (limit && qs.size() > *limit) qs.resize(*limit);
  std::vector<scoring::MtBenchQuestion> judged;
  for (const auto& q : qs)
    if (answers.count(q.id)) judged.push_back(q);
  if (judged.empty()) throw std::runtime_error(ans_in.node + ": no answer for any question of " + data_file("questions").string());

  // The judge.
  json bp = p;
  json spec = p["judge"];
  spec["chat"] = true;
  bp["backend"] = spec;
  bp["add_bos_token"] = false;
  bp["max_length"] = 0;
  StageContext jctx = ctx;  // the same node; the backend reads params from it
  jctx.params = bp;
  NodeBackend nb = make_node_backend(jctx, judge_dir);
  auto* judge = dynamic_cast<model::OpenAIBackend*>(nb.backend.get());
  if (!judge) throw std::runtime_error("params.judge: the judge must be an OpenAI-compatible backend");
  const std::string fingerprint = judge->fingerprint() + " snapshot=" + p.value("judge_snapshot", std::string());
  const int max_tokens = int(p.value("max_tokens", int64_t(2048)));
  const int repeats = int(p.value("repeats", int64_t(1)));

  std::vector<Job> jobs;
  for (size_t qi = 0; qi < judged.size(); ++qi)
    for (int turn = 1; turn <= 2; ++turn)
      for (int r = 0; r < repeats; ++r) {
        Job j{qi, turn, r, scoring::single_judge_request(judged[qi], answers[judged[qi].id], turn, prompts), {}};
        cache::KeyHasher h;
        h.field("judge-request", "1");
        h.field("system", j.req.system);
        h.field("user", j.req.user);
        h.field("temperature", "0");
        h.field("max_tokens", std::to_string(max_tokens));
        h.field("repeat", std::to_string(r));
        j.hash = h.finish().hex();
        jobs.push_back(std::move(j));
      }
  std::vector<std::string> hashes;
  for (const auto& j : jobs) hashes.push_back(j.hash);

  const double in_price = opt_number(p, "price_input_per_mtok", 30) / 1e6;
  const double out_price = opt_number(p, "price_output_per_mtok", 60) / 1e6;
  const std::optional<double> budget =
      p.contains("budget_usd") && p["budget_usd"].is_number() ? std::optional<double>(p["budget_usd"].get<double>()) : std::nullopt;
  double spent_now = 0;
  size_t calls_now = 0;
  std::mutex mu;
  // One judge's nodes take turns (a lock beside its journal): a variant whose
  // (question, answer) triples another variant already had judged finds the
  // judgments in the journal instead of asking again in parallel.
  JournalLock lock(ctx, fingerprint);
  JournaledAnswers journal(ctx, "mt-bench-judge", fingerprint);
  ctx.progress->log("judge: " + judge->describe() + "; " + std::to_string(jobs.size()) + " judgments of " +
                    std::to_string(judged.size()) + " questions");
  JournaledAnswers::Stats st;
  try {
    st = journal.ensure(
        hashes, size_t(p.value("batch_size", int64_t(16))),
        [&](const std::vector<size_t>& chunk) {
          // Worst case of the chunk: prompt bytes / 3 tokens in, max_tokens out.
          if (budget) {
            double worst = 0;
            for (size_t i : chunk)
              worst += double(jobs[i].req.system.size() + jobs[i].req.user.size()) / 3 * in_price + max_tokens * out_price;
            if (spent_now + worst > *budget)
              throw BudgetExceeded("judging stopped before exceeding budget_usd " + std::to_string(*budget) + ": " +
                                   std::to_string(calls_now) + " judge calls made now ($" + std::to_string(spent_now) +
                                   "), the next " + std::to_string(chunk.size()) + " could cost up to $" +
                                   std::to_string(worst) +
                                   "; raise budget_usd and run again (every judgment made is journaled and reused)");
          }
          std::vector<json> out(chunk.size());
          judge->parallel(chunk.size(), [&](size_t k) {
            const Job& j = jobs[chunk[k]];
            const json resp = judge->post(
                "/chat/completions",
                {{"model", judge->served_model()},
                 {"messages", json::array({{{"role", "system"}, {"content", j.req.system}},
                                           {{"role", "user"}, {"content", j.req.user}}})},
                 {"temperature", 0},
                 {"max_tokens", max_tokens},
                 {"seed", j.repeat}});
            const json& c = resp.at("choices").at(0);
            const json u = resp.value("usage", json::object());
            out[k] = {{"text", c.at("message").at("content").get<std::string>()},
                      {"prompt_tokens", u.value("prompt_tokens", 0)},
                      {"completion_tokens", u.value("completion_tokens", 0)}};
            std::lock_guard<std::mutex> lk(mu);
            spent_now += u.value("prompt_tokens", 0) * in_price + u.value("completion_tokens", 0) * out_price;
            ++calls_now;
          });
          return out;
        },
        ctx, "judgments");
  } catch (const BudgetExceeded& e) {
    throw std::runtime_error(e.what());
  }

  // Ratings: the median of each (question, turn)'s parsed repeats.
  std::vector<double> t1, t2;
  std::string lines;
  size_t prompt_tokens = 0, completion_tokens = 0;
  std::map<std::pair<size_t, int>, std::vector<double>> per;
  for (const auto& j : jobs) {
    const json& a = journal.get(j.hash);
    const std::string text = a.value("text", std::string());
    const auto r = scoring::parse_rating(text);
    prompt_tokens += a.value("prompt_tokens", size_t(0));
    completion_tokens += a.value("completion_tokens", size_t(0));
    per[{j.question, j.turn}].push_back(r ? *r : -1);
    json rec = {{"question_id", judged[j.question].id},
                {"model", ans_in.node},
                {"judge", {judge->served_model(), j.req.prompt_name}},
                {"user_prompt", j.req.user},
                {"judgment", text},
                {"score", r ? json(*r) : json(-1)},
                {"turn", j.turn},
                {"repeat", j.repeat}};
    lines += rec.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  }
  for (auto& [k, v] : per) {
    std::vector<double> ok;
    for (double x : v)
      if (x >= 0) ok.push_back(x);
    double m = -1;
    if (!ok.empty()) {
      std::sort(ok.begin(), ok.end());
      m = ok.size() % 2 ? ok[ok.size() / 2] : (ok[ok.size() / 2 - 1] + ok[ok.size() / 2]) / 2;
    }
    (k.second == 1 ? t1 : t2).push_back(m);
  }
  json scores = scoring::mtbench_scores(t1, t2);
  for (const char* k : {"turn1", "turn2", "avg"})
    if (limit) scores[k]["limit"] = *limit;
  const double cost = double(prompt_tokens) * in_price + double(completion_tokens) * out_price;
  json infer = json::object();
  if (fs::exists(ans_in.path / "infer.json")) infer = model::read_json_file(ans_in.path / "infer.json");
  model::write_text_file(ctx.output_dir / "judgments.jsonl", lines);
  model::write_text_file(ctx.output_dir / "summary.json", json({{"mt_bench", scores}}).dump(2) + "\n");
  model::write_text_file(ctx.output_dir / "results.json",
                         json({{"config", {{"model", infer.value("model", ans_in.node)}}},
                               {"results", {{"mt_bench", scores}}},
                               {"qsweep", {{"task", "mt_bench"},
                                           {"limit", limit ? json(*limit) : json(nullptr)},
                                           {"fewshot_from_eval_split", false}}}})
                             .dump(2) + "\n");
  const json summary = {{"judge", judge->served_model()},
                        {"judge_fingerprint", fingerprint},
                        {"questions", judged.size()},
                        {"judgments", jobs.size()},
                        {"repeats", repeats},
                        {"computed", st.computed},
                        {"from_journal", st.from_journal},
                        {"unparsed", scores["unparsed"]},
                        {"usage", {{"prompt_tokens", prompt_tokens}, {"completion_tokens", completion_tokens}}},
                        {"cost_usd", cost},
                        {"cost_usd_now", spent_now}};
  model::write_text_file(ctx.output_dir / "judge.json", summary.dump(2) + "\n");
  char buf[512];
  auto fmt = [&](const json& s) {
    if (!s["value"].is_number()) return std::string("-");
    std::snprintf(buf, sizeof buf, "%.2f", s["value"].get<double>());
    return std::string(buf);
  };
  std::snprintf(buf, sizeof buf, "%.2f", cost);
  const std::string md = "| model | turn 1 | turn 2 | average | unparsed (t1/t2) | judge tokens (in/out) | cost (USD) |\n"
                         "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n| " + ans_in.node + " | " +
                         fmt(scores["turn1"]) + " | " + fmt(scores["turn2"]) + " | " + fmt(scores["avg"]) + " | " +
                         scores["unparsed"]["turn1"].dump() + "/" + scores["unparsed"]["turn2"].dump() + " | " +
                         std::to_string(prompt_tokens) + "/" + std::to_string(completion_tokens) + " | " + buf + " |\n";
  model::write_text_file(ctx.output_dir / "judge.md", md);
  ctx.outputs = {{"turn1", scores["turn1"]["value"]}, {"turn2", scores["turn2"]["value"]}, {"avg", scores["avg"]["value"]},
                 {"unparsed", scores["unparsed"]["value"]}, {"cost_usd", cost}};
}

}  // namespace qsweep
