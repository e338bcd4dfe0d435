// Locating inputs among sorted breakpoint events on the CPU: i(x) = the
// number of events < x, the interval x lies in.
//
// torch.searchsorted does this with a plain binary search per input, which
// took longer than the dense kernel it is meant to beat (measured in
// docs/breakpoints.md, "Measurements behind the code"). Here the
// events are cut into about K buckets, each remembering where its events
// start, so an input costs a bucket computation and a branch-free binary
// search of fixed length log2(most events in a bucket of its piece + 1).
//
// Buckets are equal-width over the events' range, or, when the events are
// heavy-tailed (as -b/m is for Gaussian m and b: Cauchy) and equal widths
// would crowd most of them into a few buckets, equal-width within each of
// kPieces quantile pieces, whose piece is found first by a branch-free
// search among kPieces - 1 knots; each piece has its own search length, so
// the sparse tails do not slow the dense middle. Searches run a fixed number
// of steps per piece: one that stops as soon as it can (std::lower_bound)
// is several times slower, from mispredicted branches (measured in
// docs/breakpoints.md).
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
  // events: sorted ascending (±inf allowed, no NaN), fewer than 2^31 - 1.
  explicit IntervalIndex(const std::vector<T>& events) {
    build(events, heavy_tailed(events) ? kPieces : 1);
  }
  IntervalIndex() = default;  // holds nothing: a place to assign a built one to

  // idx[j] = i(x[j]) for j < n; for NaN, some valid index (the callers
  // discard the result). kBatch inputs are searched in lockstep, so that
  // their memory accesses overlap: faster than one search after another
  // (measured in docs/breakpoints.md).
  void locate(const T* x, int64_t n, int64_t* idx) const {
    int64_t j = 0;
    for (; j + kBatch <= n; j += kBatch) locate_batch(x + j, idx + j);
    for (; j < n; ++j) locate_batch<1>(x + j, idx + j);
  }

 private:
  static constexpr int kPieceSteps = 6, kPieces = 1 << kPieceSteps;
  static constexpr int kBatch = 16;

  // Events before x's bucket are < x; those after it are > x, and so is the
  // +inf padding, so a window of 2^steps from the bucket's start, which
  // covers the bucket, holds the answer. A search with fewer steps than the
  // batch's longest idles through the extra ones with half = 0: it reads the
  // entry before its window (at worst the -inf in front of the events) and
  // stays put. Arithmetic on the comparisons, not `?:`, which GCC compiles
  // to a mispredicted branch.
  template <int B = kBatch>
  void locate_batch(const T* x, int64_t* idx) const {
    const T* e = events();
    const T* base[B];
    int steps[B], longest = 0;
    for (int g = 0; g < B; ++g) {
      const Piece& piece = pieces_[piece_of(x[g])];
      base[g] = e + starts_[bucket(piece, x[g])];
      steps[g] = piece.steps;
      longest = std::max(longest, steps[g]);
    }
    for (int s = longest - 1; s >= 0; --s) {
      for (int g = 0; g < B; ++g) {
        const int64_t half = static_cast<int64_t>(s < steps[g]) << s;
        base[g] += static_cast<int64_t>(base[g][half - 1] < x[g]) * half;
      }
    }
    for (int g = 0; g < B; ++g) idx[g] = (base[g] - e) + (base[g][0] < x[g]);
  }

  const T* events() const { return padded_.data() + 1; }

  // Equal-width buckets from lo on, numbered first..last, whose events are
  // found in `steps` halvings.
  struct Piece {
    double lo = 0, scale = 0;
    int64_t first = 0, last = 0;
    int steps = 0;
  };

  // Whether equal-width buckets would crowd the middle: with K buckets over
  // the whole range, the middle half of the events falls into about
  // K·iqr/range buckets, (range/iqr)/2 events each. Quantile pieces pay when
  // that needs more search steps than the log2(kPieces) they add. (Either
  // choice is exact; this only picks the faster.)
  static bool heavy_tailed(const std::vector<T>& events) {
    const int64_t k = static_cast<int64_t>(events.size());
    if (k < 16 * kPieces) return false;
    int64_t first = 0, last = k - 1;
    while (first < k && !std::isfinite(events[first])) ++first;
    while (last >= 0 && !std::isfinite(events[last])) --last;
    const int64_t finite = last - first + 1;
    if (finite < 16 * kPieces) return false;
    const double range = static_cast<double>(events[last]) - static_cast<double>(events[first]);
    const double iqr = static_cast<double>(events[first + 3 * finite / 4]) -
                       static_cast<double>(events[first + finite / 4]);
    return !(range <= 2.0 * (1 << (kPieceSteps + 2)) * iqr);
  }

  void build(const std::vector<T>& events, int pieces) {
    const int64_t k = static_cast<int64_t>(events.size());
    int64_t first = 0, last = k - 1;
    while (first < k && !std::isfinite(events[first])) ++first;
    while (last >= 0 && !std::isfinite(events[last])) --last;
    const int64_t finite = std::max<int64_t>(last - first + 1, 0);
    // Piece p holds the finite events of ranks [p F / P, (p + 1) F / P); its
    // knot (a lower bound of its values) separates it from piece p - 1.
    piece_steps_ = pieces > 1 ? kPieceSteps : 0;
    knots_.assign(pieces, std::numeric_limits<T>::infinity());
    pieces_.assign(pieces, Piece{});
    int64_t next_bucket = 0;
    for (int p = 0; p < pieces; ++p) {
      const int64_t r0 = first + finite * p / pieces, r1 = first + finite * (p + 1) / pieces - 1;
      if (p > 0) knots_[p - 1] = finite > 0 ? events[r0] : T(0);
      Piece& piece = pieces_[p];
      piece.first = next_bucket;
      const int64_t count = std::max<int64_t>(r1 - r0 + 1, 1);
      if (r0 < r1) {
        piece.lo = static_cast<double>(events[r0]);
        const double scale =
            static_cast<double>(count) / (static_cast<double>(events[r1]) - piece.lo);
        // An overflowing or vanishing range keeps one bucket.
        if (std::isfinite(scale) && scale > 0) piece.scale = scale;
      }
      piece.last = piece.first + (piece.scale > 0 ? count - 1 : 0);
      next_bucket = piece.last + 1;
    }
    starts_.assign(next_bucket + 1, 0);
    // starts_[j]: the first event in bucket j or later. Walking the sorted
    // events, the piece (the number of knots below the event, as piece_of()
    // counts it) and the bucket only grow.
    int64_t j = 0;
    for (int64_t e = 0, p = 0; e < k; ++e) {
      while (knots_[p] < events[e]) ++p;
      const int64_t b = bucket(pieces_[p], events[e]);
      while (j <= b) starts_[j++] = static_cast<int32_t>(e);
    }
    while (j <= next_bucket) starts_[j++] = static_cast<int32_t>(k);
    int max_steps = 0;
    for (Piece& piece : pieces_) {
      int64_t most = 0;
      for (int64_t b = piece.first; b <= piece.last; ++b)
        most = std::max<int64_t>(most, starts_[b + 1] - starts_[b]);
      while ((int64_t{1} << piece.steps) <= most) ++piece.steps;
      max_steps = std::max(max_steps, piece.steps);
    }
    // A search reads from one entry before a bucket's start to 2^steps - 1
    // entries past it.
    padded_.assign(1, -std::numeric_limits<T>::infinity());
    padded_.insert(padded_.end(), events.begin(), events.end());
    padded_.resize(1 + k + (int64_t{1} << max_steps), std::numeric_limits<T>::infinity());
  }

  // The piece of v: the number of knots below v.
  int64_t piece_of(T v) const {
    int64_t p = 0;
    for (int s = piece_steps_ - 1; s >= 0; --s) {
      const int64_t half = int64_t{1} << s;
      p += static_cast<int64_t>(knots_[p + half - 1] < v) * half;
    }
    return p + static_cast<int64_t>(knots_[p] < v);  // never past the +inf at the end
  }

  // bucket(pieces_[piece_of(v)], v) is monotone non-decreasing in v:
  // piece_of is, the pieces' bucket ranges ascend, and within a piece each
  // step is (subtracting, multiplying by a non-negative finite number,
  // clamping, truncating a non-negative value). min/max compile without
  // branches; NaN gives some valid bucket.
  static int64_t bucket(const Piece& piece, T v) {
    const double q = (static_cast<double>(v) - piece.lo) * piece.scale;
    const double span = static_cast<double>(piece.last - piece.first);
    return piece.first + static_cast<int64_t>(std::min(std::max(0.0, q), span));
  }

  std::vector<T> padded_;  // -inf, the sorted events, then +inf padding
  // Bucket j's events: [starts_[j], starts_[j+1]). 32-bit, to halve the
  // table's cache footprint.
  std::vector<int32_t> starts_;
  std::vector<T> knots_;  // kPieces - 1 piece boundaries, then +inf
  std::vector<Piece> pieces_;
  int piece_steps_ = 0;
};

}  // namespace relu_ext::breakpoints
