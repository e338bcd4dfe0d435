// Exact sums of doubles, whatever their order: a long accumulator (after
// Kulisch). Every finite double is an integer multiple of 2^-1074 below
// 2^1024, so a fixed-point number of 32-bit digits from 2^-1074 up holds any
// sum of them without rounding.
//
// fit_curve sums over points; with the points split across processes, each
// process sums its own and the digits are all-reduced as integers. Since no
// sum rounds until the end, the result is bitwise the one-process sum for any
// split, and so is every step of the fit that follows from it.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

namespace relu_ext::curve {

class ExactSum {
 public:
  // 68 × 32 = 2176 bits: 2^-1074 up to 2^1102, room for 2^78 terms near the
  // largest double.
  static constexpr int kDigits = 68;
  static constexpr int kLowestExponent = -1074;

  // Each digit holds its 32 bits plus a signed carry in an int64: this many
  // additions fit before the carries must be propagated.
  static constexpr int64_t kAddsBeforeCarry = int64_t{1} << 30;

  // v must be finite.
  void add(double v) {
    // v = ±mantissa·2^(position - 1074), read off its bits: a normal double
    // has the implicit leading 1 and position = biased exponent - 1, a
    // subnormal neither (position 0).
    const auto bits = std::bit_cast<uint64_t>(v);
    const auto biased = static_cast<int64_t>((bits >> 52) & 0x7ff);
    uint64_t mantissa = bits & ((uint64_t{1} << 52) - 1);
    if (biased != 0) mantissa |= uint64_t{1} << 52;
    if (mantissa == 0) return;
    const int64_t position = biased == 0 ? 0 : biased - 1;
    const auto shifted = static_cast<unsigned __int128>(mantissa) << (position % 32);
    int64_t* d = digits_ + position / 32;
    const int64_t sign = (bits >> 63) ? -1 : 1;
    for (int i = 0; i < 3; ++i) {
      d[i] += sign * static_cast<int64_t>((shifted >> (32 * i)) & 0xffffffffu);
    }
    if (++adds_ == kAddsBeforeCarry) normalize();
  }

  ExactSum& operator+=(const ExactSum& other) { return combine(other, 1); }
  ExactSum& operator-=(const ExactSum& other) { return combine(other, -1); }

  // Propagates the carries: every digit in [0, 2^32) but the top one, which
  // holds the sign. The form is unique for a value, so equal sums have equal
  // digits.
  void normalize() {
    carry_from(digits_, lowest_nonzero());
    adds_ = 0;
  }

  // The sum rounded to a double (within an ulp; overflows to ±inf), a
  // function of the exact value alone.
  double value() const {
    // Digits below `low` are 0 and stay 0 through normalising, negating and
    // normalising again (carries only move up): a fit's sums span a handful
    // of digits around 2^0, and the carries through the ~30 zeros below
    // them were most of the cost of rounding.
    const int low = lowest_nonzero();
    int64_t magnitude[kDigits];
    std::copy(digits_ + low, digits_ + kDigits, magnitude + low);
    carry_from(magnitude, low);
    const bool negative = magnitude[kDigits - 1] < 0;
    if (negative) {
      for (int i = low; i < kDigits; ++i) magnitude[i] = -magnitude[i];
      carry_from(magnitude, low);
    }
    const auto digit = [&](int i) { return i >= low ? magnitude[i] : int64_t{0}; };
    int top = kDigits - 1;
    while (top > 0 && digit(top) == 0) --top;
    // The top three digits carry at least 65 significant bits.
    double v = 0;
    for (int i = top; i >= 0 && i > top - 3; --i) {
      v += std::ldexp(static_cast<double>(digit(i)), 32 * i + kLowestExponent);
    }
    return negative ? -v : v;
  }

  // The digits, as all-reduced between processes (normalized first, so a
  // sum over up to 2^31 processes fits).
  const int64_t* digits() const { return digits_; }
  int64_t* digits() { return digits_; }

 private:
  // The first digit that is not 0 (the top one if none is).
  int lowest_nonzero() const {
    int low = 0;
    while (low < kDigits - 1 && digits_[low] == 0) ++low;
    return low;
  }

  // Propagates the carries of d[low..] up (normalize's step), d[..low) being 0.
  static void carry_from(int64_t* d, int low) {
    for (int i = low; i + 1 < kDigits; ++i) {
      const int64_t carry = d[i] >> 32;  // floor division by 2^32
      d[i] -= carry * (int64_t{1} << 32);
      d[i + 1] += carry;
    }
  }

  ExactSum& combine(const ExactSum& other, int64_t sign) {
    for (int i = 0; i < kDigits; ++i) digits_[i] += sign * other.digits_[i];
    normalize();
    return *this;
  }

  int64_t digits_[kDigits] = {};
  int64_t adds_ = 0;
};

}  // namespace relu_ext::curve
