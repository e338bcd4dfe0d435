// The dense linear algebra of the curve fitter, one copy each: the dot
// product, and the ridge-regularised Cholesky solve shared by fit_curve's
// least squares (hinge_lstsq.cpp) and its constrained form
// (constrained_lstsq.cpp), so that a constrained problem without
// constraints is bitwise the unconstrained one.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace relu_ext::curve {

// Σ a_i·b_i, left to right.
inline double dot(const double* a, const double* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

// Relative ridge on the normal equations: keeps a hinge that has left the
// data (an all-zero or collinear column) from making the solve singular, far
// below the accuracy the fits reach. Should the factorisation still meet a
// pivot that is not positive (a Gram matrix indefinite to rounding), it is
// retried with the ridge kRidgeGrowth times larger, kRidgeTries times in all.
inline constexpr double kRidge = 1e-12;
inline constexpr double kRidgeGrowth = 1e4;
inline constexpr int kRidgeTries = 4;

// The first ridge for the n×n Gram matrix a: kRidge × its mean |diagonal|
// (plus the smallest amount that keeps an all-zero matrix factorable).
inline double relative_ridge(const double* a, int64_t n) {
  double diagonal = 0;
  for (int64_t i = 0; i < n; ++i) diagonal += std::abs(a[i * n + i]);
  return kRidge * diagonal / static_cast<double>(n) + 1e-300;
}

// Cholesky factor U (upper, row-major, a ⇒ UᵀU) of the n×n matrix in `a`,
// in place, by rows: each step's update is a contiguous axpy, which the
// compiler vectorises without reordering any sum. Reads the upper triangle
// only. False on a pivot <= 0.
inline bool cholesky_upper(double* a, int64_t n) {
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

// Solves Uᵀ·z = b for the factor of cholesky_upper; b is overwritten by z.
inline void cholesky_solve_lower(const double* u, int64_t n, double* b) {
  for (int64_t k = 0; k < n; ++k) {  // by columns of Uᵀ (rows of U)
    b[k] /= u[k * n + k];
    for (int64_t i = k + 1; i < n; ++i) b[i] -= u[k * n + i] * b[k];
  }
}

// Solves U·x = b for the factor of cholesky_upper; b is overwritten by x.
inline void cholesky_solve_upper(const double* u, int64_t n, double* b) {
  for (int64_t i = n - 1; i >= 0; --i) {
    double s = b[i];
    for (int64_t j = i + 1; j < n; ++j) s -= u[i * n + j] * b[j];
    b[i] = s / u[i * n + i];
  }
}

// Solves UᵀU·x = b for the factor of cholesky_upper; b is overwritten by x.
inline void cholesky_solve(const double* u, int64_t n, double* b) {
  cholesky_solve_lower(u, n, b);
  cholesky_solve_upper(u, n, b);
}

// factor := the Cholesky factor of a + ridge·I (n×n), the ridge grown as
// above until it factors; false if it never does.
inline bool cholesky_with_ridge(const std::vector<double>& a, int64_t n, double ridge,
                                std::vector<double>& factor) {
  for (int attempt = 0; attempt < kRidgeTries; ++attempt, ridge *= kRidgeGrowth) {
    factor = a;
    for (int64_t i = 0; i < n; ++i) factor[i * n + i] += ridge;
    if (cholesky_upper(factor.data(), n)) return true;
  }
  return false;
}

}  // namespace relu_ext::curve
