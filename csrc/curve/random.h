// The curve fitter's random numbers: splitmix64 (Steele, Lea & Flood 2014),
// the same stream from a seed on every platform, for the random starts
// (fit.cpp), the cross-validation folds (select.cpp) and the bootstrap's
// noise (bootstrap.cpp).
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>

namespace relu_ext::curve {

// splitmix64's output function: a bijection of 64-bit words that mixes
// every input bit into every output bit.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// splitmix64's uniforms.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  double uniform() {  // in [0, 1)
    return static_cast<double>(mix64(state_ += 0x9e3779b97f4a7c15ull) >> 11) * 0x1p-53;
  }

 private:
  uint64_t state_;
};

// Standard normal numbers by Box and Muller's transform of splitmix64's
// uniforms: the same stream on every platform, up to the last bits of log
// and cos.
class Normal {
 public:
  explicit Normal(uint64_t seed) : random_(seed) {}
  double operator()() {
    const double u1 = 1.0 - random_.uniform(), u2 = random_.uniform();  // u1 in (0, 1]
    return std::sqrt(-2 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2);
  }

 private:
  Random random_;
};

}  // namespace relu_ext::curve
