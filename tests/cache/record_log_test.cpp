#include "cache/record_log.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "tests/testutil.h"

namespace qsweep::cache {
namespace {

using nlohmann::json;
using qsweep::testing::read_file;
using qsweep::testing::TempDir;
using qsweep::testing::write_file;

TEST(RecordLog, AppendsAndReopens) {
  TempDir t;
  const auto path = t / "journal/infer/m.jsonl";  // parent folders are created
  {
    RecordLog log(path);
    EXPECT_EQ(log.size(), 0u);
    log.append({{"a", {{"logprob", -1.5}}}, {"b", {{"text", "x\ny"}}}});
    ASSERT_NE(log.find("a"), nullptr);
    EXPECT_EQ((*log.find("a"))["logprob"], -1.5);
    EXPECT_EQ(log.find("c"), nullptr);
  }
  RecordLog again(path);
  EXPECT_EQ(again.size(), 2u);
  EXPECT_EQ((*again.find("b"))["text"], "x\ny") << "newlines inside values stay escaped";
  const std::string text = read_file(path);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2);
}

TEST(RecordLog, FirstValueOfAKeyWins) {
  TempDir t;
  RecordLog log(t / "j.jsonl");
  log.append({{"k", 1}});
  log.append({{"k", 2}});
  EXPECT_EQ(*log.find("k"), 1);
  RecordLog again(t / "j.jsonl");
  EXPECT_EQ(*again.find("k"), 1);
}

TEST(RecordLog, TornTailIsSkippedAndTerminated) {
  TempDir t;
  const auto path = t / "j.jsonl";
  // What a SIGKILL in the middle of write(2) can leave: a complete record and
  // a partial one without its newline.
  write_file(path, "{\"k\":\"a\",\"v\":1}\n{\"k\":\"b\",\"v\":{\"logpr");
  {
    RecordLog log(path);
    EXPECT_EQ(log.size(), 1u);
    EXPECT_EQ(log.skipped_lines(), 1u);
    EXPECT_EQ(log.find("b"), nullptr);
    log.append({{"c", 3}});
  }
  RecordLog again(path);
  EXPECT_EQ(again.size(), 2u) << read_file(path);
  EXPECT_EQ(*again.find("c"), 3) << "the next record starts on its own line";
}

TEST(RecordLog, DamagedLinesAreSkippedNotFatal) {
  TempDir t;
  const auto path = t / "j.jsonl";
  write_file(path, "garbage\n{\"k\":7,\"v\":1}\n[1,2]\n{\"v\":1}\n\n{\"k\":\"ok\",\"v\":null}\n");
  RecordLog log(path);
  EXPECT_EQ(log.size(), 1u);
  EXPECT_EQ(log.skipped_lines(), 4u);
  ASSERT_NE(log.find("ok"), nullptr);
  EXPECT_TRUE(log.find("ok")->is_null());
}

TEST(RecordLog, ADamagedValueCountsAsUnansweredAndIsReplaced) {
  TempDir t;
  const auto path = t / "j.jsonl";
  write_file(path, "{\"k\":\"d\",\"v\":{\"a\":}\n{\"k\":\"e\",\"v\":[1,2]}\n");
  RecordLog log(path);
  EXPECT_EQ(log.find("d"), nullptr) << "its value text is not JSON";
  ASSERT_NE(log.find("e"), nullptr);
  EXPECT_EQ(*log.find("e"), json::array({1, 2}));
  log.append({{"d", 5}, {"e", 9}});
  EXPECT_EQ(*log.find("d"), 5) << "the damaged record is superseded";
  EXPECT_EQ(*log.find("e"), json::array({1, 2})) << "a valid one is kept";
  RecordLog again(path);
  EXPECT_EQ(*again.find("d"), 5);
  EXPECT_EQ(*again.find("e"), json::array({1, 2}));
}

TEST(RecordLog, ConcurrentProcessesAppendWholeLines) {
  TempDir t;
  const auto path = t / "j.jsonl";
  constexpr int k_procs = 4, k_batches = 50;
  std::vector<pid_t> kids;
  for (int p = 0; p < k_procs; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      RecordLog log(path);
      for (int b = 0; b < k_batches; ++b) {
        std::vector<std::pair<std::string, json>> recs;
        for (int i = 0; i < 20; ++i)
          recs.emplace_back(std::to_string(p) + "-" + std::to_string(b) + "-" + std::to_string(i),
                            json{{"text", std::string(200, char('a' + p))}});
        log.append(recs);
      }
      _exit(0);
    }
    kids.push_back(pid);
  }
  for (pid_t k : kids) {
    int st = 0;
    waitpid(k, &st, 0);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  RecordLog log(path);
  EXPECT_EQ(log.size(), size_t(k_procs * k_batches * 20));
  EXPECT_EQ(log.skipped_lines(), 0u);
}

TEST(RecordLog, UnwritableDirectoryIsOneClearError) {
  TempDir t;
  write_file(t / "file", "x");
  try {
    RecordLog log(t / "file/sub/j.jsonl");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("file/sub"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace qsweep::cache
