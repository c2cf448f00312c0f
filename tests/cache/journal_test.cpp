#include "cache/journal.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include "tests/testutil.h"

namespace qsweep::cache {
namespace {

using nlohmann::json;
using qsweep::testing::read_file;
using qsweep::testing::TempDir;

const std::regex k_iso8601(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)");

TEST(Journal, AppendAndLoad) {
  TempDir t;
  std::string err;
  {
    Journal j(t / "journal.jsonl");
    ASSERT_TRUE(j.append({{"run", "r1"}, {"event", "run_start"}}, &err)) << err;
    ASSERT_TRUE(j.append({{"run", "r1"}, {"event", "run_end"}, {"t", "fixed"}, {"v", 7}}, &err))
        << err;
  }
  auto records = Journal::load(t / "journal.jsonl", &err);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0]["event"], "run_start");
  EXPECT_EQ(records[0]["v"], k_journal_version);
  EXPECT_TRUE(std::regex_match(records[0]["t"].get<std::string>(), k_iso8601)) << records[0];
  EXPECT_EQ(records[1]["t"], "fixed") << "present fields are kept";
  EXPECT_EQ(records[1]["v"], 7);
  std::string text = read_file(t / "journal.jsonl");
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2);
}

TEST(Journal, RejectsNonObject) {
  TempDir t;
  Journal j(t / "journal.jsonl");
  std::string err;
  EXPECT_FALSE(j.append(json::array({1, 2}), &err));
  EXPECT_NE(err.find("journal.jsonl"), std::string::npos) << err;
}

TEST(Journal, MissingFileIsEmpty) {
  TempDir t;
  std::string err;
  EXPECT_TRUE(Journal::load(t / "none.jsonl", &err).empty());
  EXPECT_EQ(err, "");
}

TEST(Journal, ConcurrentAppendsKeepWholeLines) {
  TempDir t;
  constexpr int k_threads = 4, k_records = 200;
  {
    Journal j(t / "journal.jsonl");
    std::vector<std::thread> threads;
    for (int i = 0; i < k_threads; ++i) {
      threads.emplace_back([&j, i] {
        for (int n = 0; n < k_records; ++n) {
          std::string err;
          json r = {
              {"event", "node_done"}, {"thread", i}, {"n", n}, {"pad", std::string(100 + n, 'x')}};
          EXPECT_TRUE(j.append(std::move(r), &err)) << err;
        }
      });
    }
    for (auto& th : threads) th.join();
  }
  std::string err;
  auto records = Journal::load(t / "journal.jsonl", &err);
  ASSERT_EQ(records.size(), size_t{k_threads * k_records});
  std::set<std::pair<int, int>> seen;
  for (const auto& r : records) seen.insert({r["thread"].get<int>(), r["n"].get<int>()});
  EXPECT_EQ(seen.size(), size_t{k_threads * k_records});
  std::string text = read_file(t / "journal.jsonl");
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), k_threads * k_records);
}

TEST(Journal, TornLastLineIsSkippedAndLaterAppendsParse) {
  TempDir t;
  std::string err;
  {
    Journal j(t / "journal.jsonl");
    ASSERT_TRUE(j.append({{"event", "run_start"}}, &err)) << err;
  }
  {
    std::ofstream f(t / "journal.jsonl", std::ios::app);
    f << "{\"event\":\"node_st";  // a crash mid-write
  }
  EXPECT_EQ(Journal::load(t / "journal.jsonl", &err).size(), 1u);
  {
    Journal j(t / "journal.jsonl");
    ASSERT_TRUE(j.append({{"event", "run_end"}}, &err)) << err;
  }
  auto records = Journal::load(t / "journal.jsonl", &err);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[1]["event"], "run_end");
}

TEST(Journal, Iso8601NowFormat) {
  EXPECT_TRUE(std::regex_match(iso8601_now(), k_iso8601)) << iso8601_now();
}

}  // namespace
}  // namespace qsweep::cache
