// Locating inputs among sorted breakpoint events on the CPU: i(x) = the
// number of events < x, the interval x lies in.
//
// torch.searchsorted does this with a plain binary search per input, which
// measured ~25 ms for 262,144 inputs among 4,096 events on this project's
// 2-core machine: more than the dense kernel it is meant to beat. Here the
// events' finite range is cut into K equal-width buckets, each remembering
// where its events start, so an input costs one multiply and a branch-free
// binary search of fixed length log2(most events in a bucket + 1): about 3
// steps for spread-out breakpoints, at worst (all clustered) log2(K + 1).
// The fixed length matters: searching each bucket exactly as long as it
// needed (std::lower_bound) measured 10x slower for Cauchy-distributed
// breakpoints (-b/m for Gaussian m, b), from mispredicted branches.
//
// Exactness does not depend on the bucket arithmetic: bucket() is monotone
// non-decreasing, so every event in an earlier bucket than x is < x and every
// event in a later bucket is > x; only x's own bucket is compared, exactly.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace relu_ext::breakpoints {

template <class T>
class IntervalIndex {
 public:
  // events: sorted ascending (±inf allowed, no NaN), fewer than 2^30.
  explicit IntervalIndex(const std::vector<T>& events) {
    const int64_t k = static_cast<int64_t>(events.size());
    int64_t first = 0, last = k - 1;
    while (first < k && !std::isfinite(events[first])) ++first;
    while (last >= 0 && !std::isfinite(events[last])) --last;
    if (first < last) {
      lo_ = static_cast<double>(events[first]);
      const double scale = static_cast<double>(k) / (static_cast<double>(events[last]) - lo_);
      // An overflowing or vanishing range keeps one bucket (a binary search).
      if (std::isfinite(scale) && scale > 0) {
        buckets_ = k;
        scale_ = scale;
      }
    }
    starts_.resize(buckets_ + 1);
    int64_t e = 0, most = 0;
    for (int64_t j = 0; j <= buckets_; ++j) {
      while (e < k && bucket(events[e]) < j) ++e;
      starts_[j] = static_cast<int32_t>(e);
      if (j > 0) most = std::max<int64_t>(most, starts_[j] - starts_[j - 1]);
    }
    while ((int64_t{1} << steps_) <= most) ++steps_;
    // The search reads up to 2^steps_ - 1 entries past a bucket's start.
    events_.assign(events.begin(), events.end());
    events_.resize(k + (int64_t{1} << steps_), std::numeric_limits<T>::infinity());
  }

  // For NaN, some valid index (the callers discard the result).
  int64_t locate(T x) const {
    // Events before the bucket are < x; those after it are > x, and so is
    // the +inf padding, so a window of 2^steps_ from the bucket's start,
    // which covers the bucket, holds the answer.
    const T* base = events_.data() + starts_[bucket(x)];
    // Arithmetic on the comparison, not `?:`, which GCC compiles to a
    // branch that mispredicts half the time.
    for (int s = steps_ - 1; s >= 0; --s) {
      const int64_t half = int64_t{1} << s;
      base += static_cast<int64_t>(base[half - 1] < x) * half;
    }
    return (base - events_.data()) + (base[0] < x);
  }

 private:
  // Monotone non-decreasing in v: every step is (subtracting, multiplying by
  // a positive finite number, clamping, truncating a non-negative value).
  // Written with min/max so that it compiles without branches; NaN gives 0.
  int64_t bucket(T v) const {
    const double q = (static_cast<double>(v) - lo_) * scale_;
    return static_cast<int64_t>(std::min(std::max(0.0, q), static_cast<double>(buckets_ - 1)));
  }

  std::vector<T> events_;  // sorted, then 2^steps_ times +inf
  int64_t buckets_ = 1;
  int steps_ = 0;
  double lo_ = 0, scale_ = 0;
  // Events of bucket j: [starts_[j], starts_[j+1]). 32-bit, to halve the
  // table's cache footprint.
  std::vector<int32_t> starts_;
};

}  // namespace relu_ext::breakpoints
