#include "stages/mtbench_answers.h"

#include <fstream>
#include <map>
#include <stdexcept>

#include "cache/hash.h"
#include "model/util/python_str.h"
#include "model/util/text_file.h"

namespace qsweep {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct Question {
  int64_t id = 0;
  std::string category;
  std::vector<std::string> turns;  // 2
};

std::vector<Question> read_questions(const fs::path& file, std::optional<std::size_t> limit) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open MT-Bench questions " + file.string());
  std::vector<Question> out;
  std::string line;
  std::size_t lineno = 0;
  while (std::getline(in, line) && (!limit || out.size() < *limit)) {
    ++lineno;
    if (line.empty()) continue;
    const auto where = [&] { return file.string() + ":" + std::to_string(lineno) + ": "; };
    const json j = json::parse(line, nullptr, false);
    if (!j.is_object()) throw std::runtime_error(where() + "not a JSON object");
    Question q;
    if (!j.contains("question_id") || !j["question_id"].is_number_integer())
      throw std::runtime_error(where() + "field 'question_id' must be an integer");
    q.id = j["question_id"].get<int64_t>();
    q.category = j.value("category", std::string());
    if (!j.contains("turns") || !j["turns"].is_array() || j["turns"].size() != 2)
      throw std::runtime_error(where() + "field 'turns' must be a list of 2 strings");
    for (const auto& t : j["turns"]) {
      if (!t.is_string()) throw std::runtime_error(where() + "field 'turns' must hold strings");
      q.turns.push_back(t.get<std::string>());
    }
    out.push_back(std::move(q));
  }
  return out;
}

// One turn's request: the rendered conversation and the sampling settings.
struct TurnRequest {
  model::TextGeneration gen;
  std::string hash;
};

TurnRequest make_turn(const model::ChatTemplate& chat, const MtBenchOptions& o, const Question& q,
                      int turn, const std::vector<std::string>& prior_answers) {
  std::vector<model::ChatMessage> msgs;
  if (!o.system_prompt.empty()) msgs.push_back({"system", o.system_prompt});
  for (int t = 0; t <= turn; ++t) {
    msgs.push_back({"user", q.turns[t]});
    if (t < turn) msgs.push_back({"assistant", prior_answers[t]});
  }
  TurnRequest r;
  r.gen.context = chat.render(msgs, /*add_generation_prompt=*/true);
  r.gen.until = {chat.turn_end()};
  r.gen.max_gen_toks = o.max_new_tokens;
  r.gen.temperature = mtbench_temperature(q.category);
  r.gen.do_sample = r.gen.temperature >= 1e-4;
  r.gen.seed = o.seed * 1000003ull + 2ull * uint64_t(q.id) + uint64_t(turn);
  r.gen.reserve_generation_room = false;
  cache::KeyHasher h;
  h.field("kind", "mt_bench_turn");
  h.field("context", r.gen.context);
  for (const auto& u : r.gen.until) h.field("until", u);
  h.field("max_new_tokens", r.gen.max_gen_toks);
  h.field("temperature", json(r.gen.temperature).dump());
  h.field("seed", int64_t(r.gen.seed));
  r.hash = h.finish().hex();
  return r;
}

}  // namespace

double mtbench_temperature(const std::string& category) {
  static const std::map<std::string, double> k = {
      {"writing", 0.7},    {"roleplay", 0.7}, {"extraction", 0.0}, {"math", 0.0},
      {"coding", 0.0},     {"reasoning", 0.0}, {"stem", 0.1},      {"humanities", 0.1},
      {"arena-hard-200", 0.0}};
  auto it = k.find(category);
  return it == k.end() ? 0.7 : it->second;
}

json generate_mtbench_answers(StageContext& ctx, model::Backend& backend,
                              const model::ChatTemplate& chat, JournaledAnswers& answers,
                              const fs::path& questions, const MtBenchOptions& opts) {
  const std::vector<Question> qs = read_questions(questions, opts.limit);
  ctx.progress->log("MT-Bench: " + std::to_string(qs.size()) + " questions, 2 turns each");
  std::vector<std::vector<std::string>> got(qs.size());
  json summary = {{"questions", qs.size()}, {"turns", 0}, {"computed", 0}, {"from_journal", 0}};
  std::vector<std::vector<TurnRequest>> reqs(qs.size());
  for (int turn = 0; turn < 2; ++turn) {
    std::vector<std::string> hashes;
    std::vector<const TurnRequest*> by_index;
    for (std::size_t i = 0; i < qs.size(); ++i) {
      reqs[i].push_back(make_turn(chat, opts, qs[i], turn, got[i]));
      hashes.push_back(reqs[i].back().hash);
      by_index.push_back(&reqs[i].back());
    }
    const auto st = answers.ensure(
        hashes, opts.batch,
        [&](const std::vector<std::size_t>& chunk) {
          std::vector<model::TextGeneration> gens;
          for (std::size_t k : chunk) gens.push_back(by_index[k]->gen);
          const std::vector<std::string> texts = backend.generate_until(gens);
          std::vector<json> out;
          for (const auto& t : texts) out.push_back({{"text", model::python_strip(t)}});
          return out;
        },
        ctx, "turns");
    summary["turns"] = summary["turns"].get<std::size_t>() + st.requests;
    summary["computed"] = summary["computed"].get<std::size_t>() + st.computed;
    summary["from_journal"] = summary["from_journal"].get<std::size_t>() + st.from_journal;
    for (std::size_t i = 0; i < qs.size(); ++i) got[i].push_back(answers.get(hashes[i]).at("text"));
  }
  std::string lines;
  for (std::size_t i = 0; i < qs.size(); ++i) {
    cache::KeyHasher h;
    for (int t = 0; t < 2; ++t) {
      h.field("prompt", reqs[i][t].gen.context);
      h.field("answer", got[i][t]);
    }
    json a = {{"question_id", qs[i].id},
              {"answer_id", h.finish().hex()},
              {"model_id", opts.model_id},
              {"category", qs[i].category},
              {"choices", json::array({{{"index", 0}, {"turns", got[i]}}})}};
    lines += a.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  }
  model::write_text_file(ctx.output_dir / "answers.jsonl", lines);
  return summary;
}

}  // namespace qsweep
