#include "stages/journaled_answers.h"

#include <stdexcept>

#include "cache/hash.h"

namespace qsweep {

namespace fs = std::filesystem;
using nlohmann::json;

JournaledAnswers::JournaledAnswers(const StageContext& ctx, const std::string& model_key,
                                   const std::string& backend_fingerprint) {
  cache::KeyHasher h;
  h.field("model", model_key);
  h.field("backend", backend_fingerprint);
  const fs::path dir = !ctx.journal_dir.empty() ? ctx.journal_dir : ctx.scratch_dir;
  if (!dir.empty()) journal_ = std::make_unique<cache::RecordLog>(dir / (h.finish().hex() + ".jsonl"));
}

JournaledAnswers::Stats JournaledAnswers::ensure(
    const std::vector<std::string>& hashes, std::size_t batch,
    const std::function<std::vector<json>(const std::vector<std::size_t>&)>& compute,
    StageContext& ctx, const std::string& unit) {
  Stats st;
  st.requests = hashes.size();
  std::unordered_map<std::string, std::size_t> first_of;  // hash -> first index asking it
  std::vector<std::size_t> todo;
  for (std::size_t i = 0; i < hashes.size(); ++i) {
    if ((journal_ && journal_->find(hashes[i])) || memory_.count(hashes[i])) {
      ++st.from_journal;
      continue;
    }
    if (first_of.emplace(hashes[i], i).second) todo.push_back(i);
  }
  if (journal_ && journal_->skipped_lines())
    ctx.progress->log("request journal " + journal_->path().string() + ": skipped " +
                      std::to_string(journal_->skipped_lines()) + " incomplete line(s)");
  if (st.from_journal)
    ctx.progress->log(std::to_string(st.from_journal) + " of " + std::to_string(hashes.size()) + " " +
                      unit + " answered from the request journal");
  // Progress counts what is computed (journaled and duplicate requests are no work).
  ctx.progress->update(0, todo.size(), unit);
  for (std::size_t b = 0; b < todo.size(); b += batch) {
    if (ctx.cancelled())
      throw std::runtime_error("cancelled after " + std::to_string(b) + " of " +
                               std::to_string(todo.size()) + " new " + unit +
                               " (those are journaled; a rerun resumes)");
    const std::vector<std::size_t> chunk(todo.begin() + long(b),
                                         todo.begin() + long(std::min(todo.size(), b + batch)));
    std::vector<json> answers = compute(chunk);
    if (answers.size() != chunk.size()) throw std::logic_error("JournaledAnswers: compute() size mismatch");
    std::vector<std::pair<std::string, json>> recs;
    for (std::size_t k = 0; k < chunk.size(); ++k) recs.emplace_back(hashes[chunk[k]], std::move(answers[k]));
    if (journal_) {
      journal_->append(recs);
    } else {
      for (auto& [h, v] : recs) memory_.emplace(h, std::move(v));
    }
    ctx.progress->update(b + chunk.size(), todo.size(), unit);
  }
  st.computed = todo.size();
  return st;
}

const json& JournaledAnswers::get(const std::string& hash) {
  if (journal_)
    if (const json* v = journal_->find(hash)) return *v;
  auto it = memory_.find(hash);
  if (it == memory_.end()) throw std::logic_error("JournaledAnswers: no answer for request " + hash);
  return it->second;
}

}  // namespace qsweep
