#pragma once
// CPython's `random.Random`, bit for bit (Modules/_randommodule.c and
// Lib/random.py of CPython 3.8-3.13): the MT19937 generator seeded from an
// integer with init_by_array over its 32-bit words, random(), getrandbits(),
// and the integer methods the reference tools call — randrange, randint,
// shuffle and sample. The reference tools pick calibration windows
// (IST-DASLab GPTQ: random.seed(0), random.randint) and few-shot examples
// (lm-eval: random.Random(1234).sample) with it; qsweep reproduces their
// choices exactly.
//
// Only non-negative integer seeds (CPython uses abs(); negative seeds are
// rejected here to avoid the ambiguity). Counts and ranges fit 64 bits.

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace qsweep::model {

class PythonRandom {
 public:
  /// random.Random(seed) / random.seed(seed) for an int seed >= 0.
  explicit PythonRandom(uint64_t seed = 0) { seed_int(seed); }
  void seed_int(uint64_t seed);

  /// random.random(): a double in [0, 1) with 53 random bits.
  double random();
  /// random.getrandbits(k), 0 <= k <= 64.
  uint64_t getrandbits(int k);
  /// random._randbelow(n) for n >= 1 (rejection sampling on getrandbits).
  uint64_t randbelow(uint64_t n);
  /// random.randrange(start, stop) (step 1); stop > start.
  int64_t randrange(int64_t start, int64_t stop);
  /// random.randint(a, b) = randrange(a, b + 1).
  int64_t randint(int64_t a, int64_t b) { return randrange(a, b + 1); }
  /// random.shuffle(x) in place.
  template <class T>
  void shuffle(std::vector<T>& x) {
    for (size_t i = x.size(); i-- > 1;) {
      const size_t j = size_t(randbelow(uint64_t(i) + 1));
      std::swap(x[i], x[j]);
    }
  }
  /// The indices random.sample(range(n), k) returns (0 <= k <= n), in order:
  /// sample(population, k)[i] == population[indices[i]].
  std::vector<uint64_t> sample_indices(uint64_t n, uint64_t k);

  uint32_t genrand_uint32();

 private:
  void init_genrand(uint32_t s);
  void init_by_array(const std::vector<uint32_t>& key);
  uint32_t mt_[624];
  int mti_ = 625;
};

}  // namespace qsweep::model
