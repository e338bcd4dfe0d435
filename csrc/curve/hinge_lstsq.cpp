#include "hinge_lstsq.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace relu_ext::curve {
namespace {

// Relative ridge on the normal equations: keeps a hinge that has left the
// data (an all-zero or collinear column) from making the solve singular, far
// below the accuracy the fits reach. Should the factorisation still meet a
// pivot that is not positive (a Gram matrix indefinite to rounding), it is
// retried with the ridge kRidgeGrowth times larger, kRidgeTries times in all.
constexpr double kRidge = 1e-12;
constexpr double kRidgeGrowth = 1e4;
constexpr int kRidgeTries = 4;

// Cholesky factor U (upper, row-major, a ⇒ UᵀU) of the n×n matrix in `a`,
// in place, by rows: each step's update is a contiguous axpy, which the
// compiler vectorises without reordering any sum. False on a pivot <= 0.
bool cholesky_upper(double* a, int64_t n) {
  for (int64_t k = 0; k < n; ++k) {
    double* row_k = a + k * n;
    if (!(row_k[k] > 0)) return false;
    const double pivot = std::sqrt(row_k[k]);
    row_k[k] = pivot;
    for (int64_t j = k + 1; j < n; ++j) row_k[j] /= pivot;
    for (int64_t i = k + 1; i < n; ++i) {
      double* row_i = a + i * n;
      const double u_ki = row_k[i];
      for (int64_t j = i; j < n; ++j) row_i[j] -= u_ki * row_k[j];
    }
  }
  return true;
}

// Solves UᵀU·x = b for the factor of cholesky_upper; b is overwritten by x.
void cholesky_solve(const double* u, int64_t n, double* b) {
  for (int64_t k = 0; k < n; ++k) {  // Uᵀ·z = b, by columns of Uᵀ (rows of U)
    b[k] /= u[k * n + k];
    for (int64_t i = k + 1; i < n; ++i) b[i] -= u[k * n + i] * b[k];
  }
  for (int64_t i = n - 1; i >= 0; --i) {  // U·x = z
    double s = b[i];
    for (int64_t j = i + 1; j < n; ++j) s -= u[i * n + j] * b[j];
    b[i] = s / u[i * n + i];
  }
}

}  // namespace

HingeLeastSquares::HingeLeastSquares(const double* u, const double* columns, int64_t n,
                                     Reduce reduce)
    : u_(u), columns_(columns), n_(n), reduce_(std::move(reduce)) {
  const int64_t blocks = n / kBlock + 1;
  blocks_.resize(kSums * blocks);
  std::vector<ExactSum> totals(kColumns);
  for (int p = 0; p < kColumns; ++p) {
    const double* column = columns_ + p * n;
    ExactSum& sum = totals[p];
    for (int64_t i = 0; i < n; ++i) {
      if (p < kSums && i % kBlock == 0) {
        sum.normalize();  // kept normalized: suffix() subtracts them
        blocks_[p * blocks + i / kBlock] = sum;
      }
      sum.add(column[i]);
    }
    sum.normalize();
    if (p < kSums && n % kBlock == 0) blocks_[p * blocks + n / kBlock] = sum;
  }
  local_totals_.assign(totals.begin(), totals.begin() + kSums);
  reduce_and_round(totals, totals_);
}

ExactSum HingeLeastSquares::suffix(int p, int64_t first) const {
  const int64_t blocks = n_ / kBlock + 1;
  const double* column = columns_ + p * n_;
  // All points, less the block prefix at or before `first`, less the points
  // from there to `first`.
  ExactSum sum = local_totals_[p];
  sum -= blocks_[p * blocks + first / kBlock];
  for (int64_t i = (first / kBlock) * kBlock; i < first; ++i) sum.add(-column[i]);
  return sum;
}

void HingeLeastSquares::reduce_and_round(std::vector<ExactSum>& sums, double* out) const {
  const auto count = static_cast<int64_t>(sums.size());
  if (reduce_ && count > 0) {
    std::vector<int64_t> digits(count * ExactSum::kDigits);
    for (int64_t i = 0; i < count; ++i) {
      sums[i].normalize();
      std::copy_n(sums[i].digits(), ExactSum::kDigits, digits.data() + i * ExactSum::kDigits);
    }
    reduce_(digits.data(), count);
    for (int64_t i = 0; i < count; ++i) {
      std::copy_n(digits.data() + i * ExactSum::kDigits, ExactSum::kDigits, sums[i].digits());
    }
  }
  for (int64_t i = 0; i < count; ++i) out[i] = sums[i].value();
}

void HingeLeastSquares::suffix_sums(const double* t, int64_t h, double* out) const {
  std::vector<ExactSum> sums(kSums * h);
  for (int64_t k = 0; k < h; ++k) {
    // The points with u <= t_k come first: the suffix starts after them.
    const int64_t first = std::upper_bound(u_, u_ + n_, t[k]) - u_;
    for (int p = 0; p < kSums; ++p) sums[p * h + k] = suffix(p, first);
  }
  reduce_and_round(sums, out);
}

const HingeSolution& HingeLeastSquares::solve(const double* t, int64_t h) {
  const int64_t features = h + 2;  // 1, u, then the hinges h_1..h_H
  sums_.resize(kSums * h);
  suffix_sums(t, h, sums_.data());
  const double* S0 = sums_.data();
  const double* S1 = S0 + h;
  const double* S2 = S1 + h;
  const double* V0 = S2 + h;
  const double* V1 = V0 + h;
  const double* totals = totals_;  // S0..V1 over all points, then Σ w·v²
  // The sums right of max(t_j, t_k) are those of whichever is larger.
  const auto right_of_both = [&](int64_t j, int64_t k) { return t[j] >= t[k] ? j : k; };

  // The normal equations gram·coef = rhs.
  gram_.assign(features * features, 0.0);
  rhs_.resize(features);
  const auto gram = [&](int64_t i, int64_t j) -> double& { return gram_[i * features + j]; };
  gram(0, 0) = totals[0];
  gram(0, 1) = gram(1, 0) = totals[1];
  gram(1, 1) = totals[2];
  rhs_[0] = totals[3];
  rhs_[1] = totals[4];
  for (int64_t k = 0; k < h; ++k) {
    gram(0, 2 + k) = gram(2 + k, 0) = S1[k] - t[k] * S0[k];
    gram(1, 2 + k) = gram(2 + k, 1) = S2[k] - t[k] * S1[k];
    rhs_[2 + k] = V1[k] - t[k] * V0[k];
    for (int64_t j = 0; j <= k; ++j) {
      const int64_t tau = right_of_both(j, k);
      gram(2 + j, 2 + k) = gram(2 + k, 2 + j) =
          S2[tau] - (t[j] + t[k]) * S1[tau] + t[j] * t[k] * S0[tau];
    }
  }

  double diagonal = 0;
  for (int64_t i = 0; i < features; ++i) diagonal += std::abs(gram(i, i));
  double ridge = kRidge * diagonal / static_cast<double>(features) + 1e-300;
  bool factored = false;
  for (int attempt = 0; attempt < kRidgeTries && !factored; ++attempt, ridge *= kRidgeGrowth) {
    factor_ = gram_;
    for (int64_t i = 0; i < features; ++i) factor_[i * features + i] += ridge;
    factored = cholesky_upper(factor_.data(), features);
  }
  auto& coef = solution_.coef;
  solution_.grad.assign(h, 0.0);
  coef = rhs_;
  double sse = std::numeric_limits<double>::quiet_NaN();
  if (factored) {
    cholesky_solve(factor_.data(), features, coef.data());
    // Σ w·(v - Φ·coef)² = Σ w·v² - 2·coef·rhs + coefᵀ·gram·coef (without the ridge).
    sse = totals[5];
    for (int64_t i = 0; i < features; ++i) {
      double row = 0;
      for (int64_t j = 0; j < features; ++j) row += gram(i, j) * coef[j];
      sse += coef[i] * (row - 2 * rhs_[i]);
    }
  }
  if (!std::isfinite(sse)) {
    // No solution (non-finite breakpoints, say): an error of +inf, which a
    // line search takes for a step too far.
    coef.assign(features, 0.0);
    solution_.mse = std::numeric_limits<double>::infinity();
    return solution_;
  }
  const double weight = totals[0];
  solution_.mse = std::max(sse, 0.0) / weight;

  // ∂F/∂t_k = 2·β_k·Σ_{u > t_k} w·r, r = v - c - α·u - Σ_j β_j·h_j(u), where
  // Σ_{u > t_k} w·h_j(u) = S1(τ) - t_j·S0(τ), τ = max(t_j, t_k).
  const double c = coef[0], alpha = coef[1];
  const double* beta = coef.data() + 2;
  for (int64_t k = 0; k < h; ++k) {
    double residual_right = V0[k] - c * S0[k] - alpha * S1[k];
    for (int64_t j = 0; j < h; ++j) {
      const int64_t tau = right_of_both(j, k);
      residual_right -= beta[j] * (S1[tau] - t[j] * S0[tau]);
    }
    solution_.grad[k] = 2 * beta[k] * residual_right / weight;
  }
  return solution_;
}

}  // namespace relu_ext::curve
