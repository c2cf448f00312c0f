// CPython random.Random, bit for bit: literals produced by CPython 3.11
// (python3 -c 'import random; ...', the commands are in the comments), and,
// where python3 is on PATH, a live comparison over many draws.
#include "model/util/python_random.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>
#include <string>

#include "tests/testutil.h"

namespace qsweep::model {
namespace {

TEST(PythonRandom, MatchesCPythonLiterals) {
  {  // r = random.Random(0); [r.randint(0, 100) for _ in range(8)]
    PythonRandom r(0);
    std::vector<int64_t> got;
    for (int i = 0; i < 8; ++i) got.push_back(r.randint(0, 100));
    EXPECT_EQ(got, (std::vector<int64_t>{49, 97, 53, 5, 33, 65, 62, 51}));
  }
  {  // random.Random(1234).sample(range(1000), 5)  (the set branch)
    PythonRandom r(1234);
    EXPECT_EQ(r.sample_indices(1000, 5), (std::vector<uint64_t>{989, 796, 451, 119, 7}));
  }
  {  // random.Random(1234).sample(range(20), 7)  (the pool branch)
    PythonRandom r(1234);
    EXPECT_EQ(r.sample_indices(20, 7), (std::vector<uint64_t>{14, 3, 0, 2, 1, 10, 11}));
  }
  {  // x = list(range(10)); random.Random(42).shuffle(x)
    PythonRandom r(42);
    std::vector<int> x = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    r.shuffle(x);
    EXPECT_EQ(x, (std::vector<int>{7, 3, 2, 8, 5, 6, 9, 4, 0, 1}));
  }
  {  // r = random.Random(2**40 + 7); [r.random() for _ in range(3)]  (a two-word seed)
    PythonRandom r((uint64_t(1) << 40) + 7);
    EXPECT_EQ(r.random(), 0.6137037779936511);
    EXPECT_EQ(r.random(), 0.8149162973309487);
    EXPECT_EQ(r.random(), 0.9450115087592873);
  }
  {  // r = random.Random(5); [r.getrandbits(k) for k in (1, 7, 32, 33, 64)]
    PythonRandom r(5);
    EXPECT_EQ(r.getrandbits(1), 1u);
    EXPECT_EQ(r.getrandbits(7), 32u);
    EXPECT_EQ(r.getrandbits(32), 3185950873u);
    EXPECT_EQ(r.getrandbits(33), 5834865596u);
    EXPECT_EQ(r.getrandbits(64), 17385139117288923102u);
  }
}


TEST(PythonRandom, MatchesLivePython) {
  const std::string py = qsweep::testing::python3_output(
      "import random\n"
      "for seed in (0, 1, 1234, 99991, 2**33 + 5):\n"
      "  r = random.Random(seed)\n"
      "  print(*[r.randint(0, 10**9) for _ in range(50)], *r.sample(range(37), 9),"
      " *r.sample(range(100000), 40), repr(r.random()))\n");
  if (py.empty()) GTEST_SKIP() << "python3 is not on PATH: the literal test covers the port";
  std::string want;
  for (uint64_t seed : {uint64_t(0), uint64_t(1), uint64_t(1234), uint64_t(99991),
                        (uint64_t(1) << 33) + 5}) {
    PythonRandom r(seed);
    std::string line;
    for (int i = 0; i < 50; ++i) line += std::to_string(r.randint(0, 1000000000)) + " ";
    for (uint64_t v : r.sample_indices(37, 9)) line += std::to_string(v) + " ";
    for (uint64_t v : r.sample_indices(100000, 40)) line += std::to_string(v) + " ";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", r.random());
    // Python's repr is the shortest round-trip form; compare as doubles below.
    want += line + buf + "\n";
  }
  // Compare token by token (floats numerically).
  std::istringstream a(py), b(want);
  std::string x, y;
  int n = 0;
  while (a >> x) {
    ASSERT_TRUE(bool(b >> y)) << "fewer values than python3 printed";
    if (x.find('.') != std::string::npos)
      EXPECT_EQ(std::stod(x), std::stod(y)) << "value " << n;
    else
      EXPECT_EQ(x, y) << "value " << n;
    ++n;
  }
  EXPECT_EQ(n, 5 * (50 + 9 + 40 + 1));
}

}  // namespace
}  // namespace qsweep::model
