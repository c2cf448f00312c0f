#include "model/util/python_random.h"

#include <cmath>
#include <stdexcept>
#include <unordered_set>

namespace qsweep::model {

namespace {
constexpr int N = 624, M = 397;
constexpr uint32_t kMatrixA = 0x9908b0dfU, kUpper = 0x80000000U, kLower = 0x7fffffffU;
}  // namespace

void PythonRandom::init_genrand(uint32_t s) {
  mt_[0] = s;
  for (mti_ = 1; mti_ < N; ++mti_)
    mt_[mti_] = 1812433253U * (mt_[mti_ - 1] ^ (mt_[mti_ - 1] >> 30)) + uint32_t(mti_);
}

void PythonRandom::init_by_array(const std::vector<uint32_t>& key) {
  init_genrand(19650218U);
  size_t i = 1, j = 0;
  const size_t len = key.size();
  for (size_t k = (N > len ? N : len); k; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525U)) + key[j] + uint32_t(j);
    ++i;
    ++j;
    if (i >= N) {
      mt_[0] = mt_[N - 1];
      i = 1;
    }
    if (j >= len) j = 0;
  }
  for (size_t k = N - 1; k; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941U)) - uint32_t(i);
    ++i;
    if (i >= N) {
      mt_[0] = mt_[N - 1];
      i = 1;
    }
  }
  mt_[0] = 0x80000000U;  // MSB is 1, assuring a non-zero initial array
}

void PythonRandom::seed_int(uint64_t seed) {
  // CPython: the 32-bit words of abs(seed), least significant first; 0 -> [0].
  std::vector<uint32_t> key;
  do {
    key.push_back(uint32_t(seed & 0xffffffffU));
    seed >>= 32;
  } while (seed);
  init_by_array(key);
}

uint32_t PythonRandom::genrand_uint32() {
  static const uint32_t mag01[2] = {0, kMatrixA};
  uint32_t y;
  if (mti_ >= N) {
    int kk = 0;
    for (; kk < N - M; ++kk) {
      y = (mt_[kk] & kUpper) | (mt_[kk + 1] & kLower);
      mt_[kk] = mt_[kk + M] ^ (y >> 1) ^ mag01[y & 1U];
    }
    for (; kk < N - 1; ++kk) {
      y = (mt_[kk] & kUpper) | (mt_[kk + 1] & kLower);
      mt_[kk] = mt_[kk + (M - N)] ^ (y >> 1) ^ mag01[y & 1U];
    }
    y = (mt_[N - 1] & kUpper) | (mt_[0] & kLower);
    mt_[N - 1] = mt_[M - 1] ^ (y >> 1) ^ mag01[y & 1U];
    mti_ = 0;
  }
  y = mt_[mti_++];
  y ^= (y >> 11);
  y ^= (y << 7) & 0x9d2c5680U;
  y ^= (y << 15) & 0xefc60000U;
  y ^= (y >> 18);
  return y;
}

double PythonRandom::random() {
  const uint32_t a = genrand_uint32() >> 5, b = genrand_uint32() >> 6;
  return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

uint64_t PythonRandom::getrandbits(int k) {
  if (k < 0 || k > 64) throw std::invalid_argument("getrandbits: k must be within [0, 64]");
  if (k == 0) return 0;
  if (k <= 32) return genrand_uint32() >> (32 - k);
  // Words least significant first; the last one keeps its top (k - 32) bits.
  const uint64_t lo = genrand_uint32();
  const uint64_t hi = genrand_uint32() >> (64 - k);
  return lo | (hi << 32);
}

uint64_t PythonRandom::randbelow(uint64_t n) {
  if (n == 0) throw std::invalid_argument("randbelow: n must be >= 1");
  int k = 0;  // n.bit_length()
  for (uint64_t v = n; v; v >>= 1) ++k;
  uint64_t r = getrandbits(k);
  while (r >= n) r = getrandbits(k);
  return r;
}

int64_t PythonRandom::randrange(int64_t start, int64_t stop) {
  if (stop <= start) throw std::invalid_argument("randrange: empty range");
  return start + int64_t(randbelow(uint64_t(stop - start)));
}

std::vector<uint64_t> PythonRandom::sample_indices(uint64_t n, uint64_t k) {
  if (k > n) throw std::invalid_argument("sample: sample larger than population");
  std::vector<uint64_t> result(k);
  uint64_t setsize = 21;  // size of a small set minus size of an empty list
  if (k > 5) setsize += uint64_t(std::pow(4.0, std::ceil(std::log(double(k * 3)) / std::log(4.0))));
  if (n <= setsize) {  // an n-length list is smaller than a k-length set
    std::vector<uint64_t> pool(n);
    for (uint64_t i = 0; i < n; ++i) pool[i] = i;
    for (uint64_t i = 0; i < k; ++i) {
      const uint64_t j = randbelow(n - i);
      result[i] = pool[j];
      pool[j] = pool[n - i - 1];  // move non-selected item into vacancy
    }
  } else {
    std::unordered_set<uint64_t> selected;
    for (uint64_t i = 0; i < k; ++i) {
      uint64_t j = randbelow(n);
      while (selected.count(j)) j = randbelow(n);
      selected.insert(j);
      result[i] = j;
    }
  }
  return result;
}

}  // namespace qsweep::model
