// What a fit's error says about its number of units: the Gaussian (or,
// for the absolute loss, Laplace) likelihood of the weighted residuals, its
// count of free parameters, and the Bayesian information criterion. One
// owner for fit_curve(units="auto") (select.cpp) and curve_summary's
// log-likelihood, AIC and BIC (through the binding), so that the BIC a
// summary reports is the score the selection compared.
#pragma once

#include <cstdint>

#include "options.h"
#include "points.h"

namespace relu_ext::curve {

// Mean squared errors (standardised y: over the weighted spread of y)
// below this are rounding, not fit: residuals within 1e-7 of y's spread,
// float32's resolution (float32 data's own rounding, and the breakpoints'
// L-BFGS tolerance on exact data). More units gain only rounding error
// there, which the logarithm in the likelihood would reward without bound.
inline constexpr double kErrorFloor = 1e-14;

// The free parameters of a fit of `units` segments: K slopes, one
// intercept and K - 1 breakpoints (none when the breakpoints are given),
// less one per point the curve is made to pass through.
int64_t free_parameters(int64_t units, int64_t through, bool breakpoints_estimated);

// -2·log L of a fit to n points of total weight `weight`, whose error is
// `error` (the weighted mean squared, or absolute, residual) in units of
// y_scale: statsmodels' WLS convention (weights as inverse variances, σ²
// at its maximum Σ w·r²/n), or Laplace's with scales b/w_i. log_weights is
// Σ log w over the points of positive weight. The error is floored at
// kErrorFloor (its square root for the absolute loss).
double deviance(double n, double error, double weight, double y_scale, double log_weights,
                Loss loss);

// Σ log w over p's points, over every process (exact).
double log_weights(const Points& p, const Collective& collective);

// BIC = deviance + P·log n.
double bic(double deviance, int64_t parameters, double n);

}  // namespace relu_ext::curve
