// fit_curve's inner problem: for breakpoints t_1..t_H, the least-squares fit
// of v by c + α·u + Σ β_k·relu(u - t_k) over weighted points (u, v, w), its
// error, and the error's gradient in t (variable projection).
//
// Every entry of the normal equations is a weighted sum over the points right
// of one breakpoint (relu(u - t_j)·relu(u - t_k) is non-zero only right of
// τ = max(t_j, t_k)):
//
//   <1, h_k>   = S1(t_k) - t_k·S0(t_k)          <h_k, v> = V1(t_k) - t_k·V0(t_k)
//   <u, h_k>   = S2(t_k) - t_k·S1(t_k)
//   <h_j, h_k> = S2(τ) - (t_j + t_k)·S1(τ) + t_j·t_k·S0(τ)
//
// with S_p(t) = Σ_{u > t} w·u^p and V_p(t) = Σ_{u > t} w·u^p·v. With the points
// sorted once, each is a difference of prefix sums found by binary search, so
// an evaluation costs O(H·(log N + 64) + H³) whatever N is: neither the N×H
// feature matrix nor a pass over the points.
//
// By the envelope theorem the gradient of F(t) = min_coef Σ w·(v - Φ(t)·coef)²
// is ∂F/∂t_k = 2·β_k·Σ_{u > t_k} w·r, with r the residual at the optimal
// coefficients; those sums are again suffix sums.
//
// The sums over points are exact (exact_sum.h) and go through `reduce`: with
// the points split across processes, all-reducing their digits gives bitwise
// the one-process sums, so the fit is bitwise the one-process fit.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "exact_sum.h"

namespace relu_ext::curve {

// Adds `count` exact sums' digits (count × ExactSum::kDigits int64) over all
// processes, in place; empty for one process.
using Reduce = std::function<void(int64_t* digits, int64_t count)>;

// Rounds exact sums to doubles, their digits all-reduced first when `reduce`
// is set (the points split across processes).
void reduce_and_round(std::vector<ExactSum>& sums, const Reduce& reduce, double* out);

// The columns summed: w, w·u, w·u², w·v, w·u·v (S0, S1, S2, V0, V1 over a
// suffix of the points), and w·v² (only its total).
inline constexpr int kSums = 5;
inline constexpr int kColumns = kSums + 1;

// The solution at one set of breakpoints.
struct HingeSolution {
  double mse;                 // weighted mean squared error
  std::vector<double> coef;   // c, α, β_1..β_H
  std::vector<double> grad;   // ∂mse/∂t_k
};

class HingeLeastSquares {
 public:
  // u: n points sorted ascending; columns: kColumns rows of n, in u's order.
  // Both must outlive the object.
  HingeLeastSquares(const double* u, const double* columns, int64_t n, Reduce reduce);
  // The same, for columns whose rows w, w·u, w·u² are those of `same_x`
  // (the same points and weights, other v; one process): their sums are
  // copied from it rather than added again. The bootstrap's replicates of
  // a block differ in v alone.
  HingeLeastSquares(const double* u, const double* columns, int64_t n,
                    const HingeLeastSquares& same_x);
  // Rounds every suffix sum of w, w·u and w·u² now, for the solvers made
  // from this one to copy.
  void round_x_sums();

  // S0, S1, S2, V0, V1 over the points (of every process) with u > t_k:
  // kSums rows of h. Not for concurrent calls (it fills a cache).
  void suffix_sums(const double* t, int64_t h, double* out) const;

  // The error at the best coefficients for breakpoints t (any order) and
  // its gradient; mse = +inf (coefficients and gradient 0) where there is no
  // solution. The workspace is the object's: not for concurrent calls.
  const HingeSolution& solve(const double* t, int64_t h);

  // The pieces of solve() for a caller that picks the coefficients itself
  // (under constraints, fit.h): the normal equations gram·coef = rhs at t,
  // (h + 2)² and h + 2 entries, valid until the next call...
  void normal_equations(const double* t, int64_t h);
  const std::vector<double>& gram() const { return gram_; }
  const std::vector<double>& rhs() const { return rhs_; }
  // ...the squared error Σ w·(v - Φ·coef)² of any coefficients at that t...
  double sse(const double* coef) const;
  // ...and its derivative in t_k at fixed coefficients, h entries.
  void sse_gradient(const double* t, int64_t h, const double* coef, double* out) const;
  // The points' total weight Σ w (over every process).
  double weight() const { return totals_[0]; }

 private:
  // Exact suffix sums are kept from every block_-th point, and a suffix adds
  // up to block_ - 1 points more: kBlock points (a 2^20-point fit keeps 45 MB
  // of them), or for up to kSmall points, where the memory is small and a
  // batch of curves pays for every addition, kSmallBlock.
  static constexpr int64_t kBlock = 64;
  static constexpr int64_t kSmallBlock = 16;
  static constexpr int64_t kSmall = 65536;
  // The rows of w, w·u and w·u²: those a solver over the same points and
  // weights shares.
  static constexpr int kXSums = 3;
  // Suffixes from block 0 to the one past the last point (zero).
  int64_t block_count() const { return (n_ + block_ - 1) / block_ + 1; }

  // The suffix sums every block_ points of the columns p >= from that have
  // them (p < kSums), and the totals of columns p >= from, into blocks_
  // (sized) and totals_.
  void sum_columns(int from);
  // The exact sum of column p over the points i >= first.
  ExactSum suffix(int p, int64_t first) const;
  // suffix(p, first).value(), from the cache when there is one.
  double rounded_suffix(int p, int64_t first) const;

  const double* u_;
  const double* columns_;
  int64_t n_;
  int64_t block_;
  Reduce reduce_;
  std::vector<ExactSum> blocks_;  // [p][b]: column p over the points from b·block_ on
  // [p][first]: suffix(p, first).value(), NaN until first asked for; for up
  // to kSmall points and one process. A fit asks for the same few hundred
  // suffixes thousands of times (its breakpoints move by less than a point's
  // gap), and rounding an exact sum costs more than the solve around it.
  mutable std::vector<double> rounded_;
  double totals_[kColumns];  // the columns' sums over every process's points
  HingeSolution solution_;
  std::vector<double> sums_, gram_, factor_, rhs_;
};

}  // namespace relu_ext::curve
