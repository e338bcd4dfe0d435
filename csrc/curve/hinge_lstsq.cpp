#include "hinge_lstsq.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "linalg.h"

namespace relu_ext::curve {

HingeLeastSquares::HingeLeastSquares(const double* u, const double* columns, int64_t n,
                                     Reduce reduce)
    : u_(u), columns_(columns), n_(n), block_(n <= kSmall ? kSmallBlock : kBlock),
      reduce_(std::move(reduce)) {
  blocks_.resize(kSums * block_count());
  sum_columns(0);
  if (!reduce_ && n <= kSmall) {
    rounded_.assign(kSums * (n + 1), std::numeric_limits<double>::quiet_NaN());
  }
}

HingeLeastSquares::HingeLeastSquares(const double* u, const double* columns, int64_t n,
                                     const HingeLeastSquares& same_x)
    : u_(u), columns_(columns), n_(n), block_(same_x.block_) {
  const int64_t blocks = block_count();
  blocks_.resize(kSums * blocks);
  std::copy_n(same_x.blocks_.begin(), kXSums * blocks, blocks_.begin());
  std::copy_n(same_x.totals_, kXSums, totals_);
  sum_columns(kXSums);
  if (!same_x.rounded_.empty()) {
    rounded_.assign(kSums * (n + 1), std::numeric_limits<double>::quiet_NaN());
    std::copy_n(same_x.rounded_.begin(), kXSums * (n + 1), rounded_.begin());
  }
}

void HingeLeastSquares::sum_columns(int from) {
  const int64_t blocks = block_count();
  for (int p = from; p < kSums; ++p) {
    const double* column = columns_ + p * n_;
    ExactSum sum;
    for (int64_t i = n_ - 1; i >= 0; --i) {
      sum.add(column[i]);
      if (i % block_ == 0) {
        sum.normalize();  // a suffix() starts from it
        blocks_[p * blocks + i / block_] = sum;
      }
    }
  }
  std::vector<ExactSum> totals(kColumns - from);
  for (int p = from; p < kColumns; ++p) {
    for (int64_t i = 0; i < n_; ++i) totals[p - from].add(columns_[p * n_ + i]);
  }
  reduce_and_round(totals, reduce_, totals_ + from);
}

void HingeLeastSquares::round_x_sums() {
  for (int p = 0; p < kXSums && !rounded_.empty(); ++p) {
    for (int64_t first = 0; first <= n_; ++first) rounded_suffix(p, first);
  }
}

double HingeLeastSquares::rounded_suffix(int p, int64_t first) const {
  if (rounded_.empty()) return suffix(p, first).value();
  double& cached = rounded_[p * (n_ + 1) + first];
  if (std::isnan(cached)) cached = suffix(p, first).value();
  return cached;
}

ExactSum HingeLeastSquares::suffix(int p, int64_t first) const {
  // The suffix from the first block boundary at or after `first`, plus the
  // points between.
  const int64_t block = (first + block_ - 1) / block_;
  const double* column = columns_ + p * n_;
  ExactSum sum = blocks_[p * block_count() + block];
  for (int64_t i = first, end = std::min(block * block_, n_); i < end; ++i) sum.add(column[i]);
  return sum;
}

void reduce_and_round(std::vector<ExactSum>& sums, const Reduce& reduce, double* out) {
  const auto count = static_cast<int64_t>(sums.size());
  if (reduce && count > 0) {
    std::vector<int64_t> digits(count * ExactSum::kDigits);
    for (int64_t i = 0; i < count; ++i) {
      sums[i].normalize();
      std::copy_n(sums[i].digits(), ExactSum::kDigits, digits.data() + i * ExactSum::kDigits);
    }
    reduce(digits.data(), count);
    for (int64_t i = 0; i < count; ++i) {
      std::copy_n(digits.data() + i * ExactSum::kDigits, ExactSum::kDigits, sums[i].digits());
    }
  }
  for (int64_t i = 0; i < count; ++i) out[i] = sums[i].value();
}

void HingeLeastSquares::suffix_sums(const double* t, int64_t h, double* out) const {
  // The points with u <= t_k come first: the suffix starts after them.
  const auto first = [&](int64_t k) { return std::upper_bound(u_, u_ + n_, t[k]) - u_; };
  if (!reduce_) {  // rounded as they come: no sums to keep for an all-reduce
    for (int64_t k = 0; k < h; ++k) {
      const int64_t from = first(k);
      for (int p = 0; p < kSums; ++p) out[p * h + k] = rounded_suffix(p, from);
    }
    return;
  }
  std::vector<ExactSum> sums(kSums * h);
  for (int64_t k = 0; k < h; ++k) {
    const int64_t from = first(k);
    for (int p = 0; p < kSums; ++p) sums[p * h + k] = suffix(p, from);
  }
  reduce_and_round(sums, reduce_, out);
}

void HingeLeastSquares::normal_equations(const double* t, int64_t h) {
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
}

double HingeLeastSquares::sse(const double* coef) const {
  // Σ w·(v - Φ·coef)² = Σ w·v² - 2·coef·rhs + coefᵀ·gram·coef.
  const auto features = static_cast<int64_t>(rhs_.size());
  double sse = totals_[5];
  for (int64_t i = 0; i < features; ++i) {
    double row = 0;
    for (int64_t j = 0; j < features; ++j) row += gram_[i * features + j] * coef[j];
    sse += coef[i] * (row - 2 * rhs_[i]);
  }
  return sse;
}

void HingeLeastSquares::sse_gradient(const double* t, int64_t h, const double* coef,
                                     double* out) const {
  // ∂/∂t_k = 2·β_k·Σ_{u > t_k} w·r, r = v - c - α·u - Σ_j β_j·h_j(u), where
  // Σ_{u > t_k} w·h_j(u) = S1(τ) - t_j·S0(τ), τ = max(t_j, t_k).
  const double* S0 = sums_.data();
  const double* S1 = S0 + h;
  const double* V0 = S0 + 3 * h;
  const double c = coef[0], alpha = coef[1];
  const double* beta = coef + 2;
  for (int64_t k = 0; k < h; ++k) {
    double residual_right = V0[k] - c * S0[k] - alpha * S1[k];
    for (int64_t j = 0; j < h; ++j) {
      const int64_t tau = t[j] >= t[k] ? j : k;
      residual_right -= beta[j] * (S1[tau] - t[j] * S0[tau]);
    }
    out[k] = 2 * beta[k] * residual_right;
  }
}

const HingeSolution& HingeLeastSquares::solve(const double* t, int64_t h) {
  const int64_t features = h + 2;
  normal_equations(t, h);
  const bool factored = cholesky_with_ridge(gram_, features,
                                            relative_ridge(gram_.data(), features), factor_);
  auto& coef = solution_.coef;
  solution_.grad.assign(h, 0.0);
  coef = rhs_;
  double sse = std::numeric_limits<double>::quiet_NaN();
  if (factored) {
    cholesky_solve(factor_.data(), features, coef.data());
    sse = this->sse(coef.data());
  }
  if (!std::isfinite(sse)) {
    // No solution (non-finite breakpoints, say): an error of +inf, which a
    // line search takes for a step too far.
    coef.assign(features, 0.0);
    solution_.mse = std::numeric_limits<double>::infinity();
    return solution_;
  }
  const double weight = totals_[0];
  solution_.mse = std::max(sse, 0.0) / weight;
  sse_gradient(t, h, coef.data(), solution_.grad.data());
  for (double& g : solution_.grad) g /= weight;
  return solution_;
}

}  // namespace relu_ext::curve
