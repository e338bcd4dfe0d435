// fit_curve(units="auto"): the number of units chosen from the data, by
// fitting K = 1 ... max_units and keeping the K the criterion prefers:
//
//   BIC = -2·log L + P·log n, P = 2K free parameters (K slopes, one
//         intercept, K - 1 breakpoints) less one per point to pass through,
//         n the points of positive weight; log L is the Gaussian likelihood
//         of the weighted residuals (statsmodels' WLS convention, weights as
//         inverse variances), or the Laplace likelihood for the absolute
//         loss. A value, not only a ranking: the chosen fit's BIC is the one
//         relu_ext.curve_summary reports.
//   CV  = the held-out error (mean squared or absolute, weighted) of k-fold
//         cross-validation. Each point's fold is a hash of its coordinates
//         and the seed, so it is the same however the points are ordered or
//         split across processes. The K kept is the fewest whose error is
//         within one standard error (from the spread of the folds' errors)
//         of the least: the one-standard-error rule.
//
// Ties go to the smaller K.
#pragma once

#include "fit.h"
#include "points.h"

namespace relu_ext::curve {

// The fit of the chosen number of units, with scores[K - 1] the criterion
// for K; status kInfeasible when no K meets the constraints.
CurveFit select_units(const Points& p, const CurveOptions& options, const Collective& collective);

}  // namespace relu_ext::curve
