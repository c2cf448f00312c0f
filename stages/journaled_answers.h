#pragma once
// Answers of keyed requests for the stages that call a model many times
// (infer, later judge): taken from the request journal when there, else
// computed a batch at a time, each batch appended to the journal before the
// next starts (cache/record_log.h). The journal of a (model artifact,
// backend) pair is <ctx.journal_dir>/<H(model key, backend fingerprint)>.jsonl,
// shared by every node and run asking that pair; without a journal dir the
// node's scratch dir holds it; with neither, answers live in memory only.

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "cache/record_log.h"
#include "pipeline/stage.h"

namespace qsweep {

class JournaledAnswers {
 public:
  JournaledAnswers(const StageContext& ctx, const std::string& model_key,
                   const std::string& backend_fingerprint);

  struct Stats {
    std::size_t requests = 0;      // hashes asked for
    std::size_t from_journal = 0;  // answered by the journal
    std::size_t computed = 0;      // distinct hashes computed now
  };

  /// Makes every hash answered: the first request of each distinct hash
  /// missing from the journal is computed, `batch` at a time, by
  /// compute(indices into `hashes`) -> answers in the same order. Reports
  /// progress (`unit`: "requests", "turns") and logs journal use; throws when
  /// ctx is cancelled between batches (what is journaled stays).
  Stats ensure(const std::vector<std::string>& hashes, std::size_t batch,
               const std::function<std::vector<nlohmann::json>(const std::vector<std::size_t>&)>& compute,
               StageContext& ctx, const std::string& unit);

  /// The answer of a hash that ensure() has seen (throws std::logic_error otherwise).
  const nlohmann::json& get(const std::string& hash);

 private:
  std::unique_ptr<cache::RecordLog> journal_;
  std::unordered_map<std::string, nlohmann::json> memory_;  // when there is no journal
};

}  // namespace qsweep
