// Profile-likelihood intervals of a fitted curve's breakpoints, for
// relu_ext.curve_summary.
//
// The profile of breakpoint k is the least squared error with t_k held at τ
// and everything else at its best: every coefficient, solved exactly by
// fit_curve's solver in microseconds, and the other breakpoints by L-BFGS
// (those up to two places away; further ones are held, profile.cpp says
// why). The interval is the set of τ around t_k where
//
//   profile(τ) <= limit · RSS(t),   limit = 1 + F(1, dof; level) / dof,
//
// the F-test (likelihood-ratio) inversion whose coverage holds in small
// samples where the Jacobian's (Wald) interval does not: the error is far
// from quadratic in a breakpoint (it changes by whole points crossing it).
// An interval stops at the data's edge, and at a neighbouring breakpoint
// (past it, the two would trade places: the profile would then be another
// breakpoint's).
#pragma once

#include <cstdint>
#include <vector>

namespace relu_ext::curve {

struct BreakpointInterval {
  double low, high;
};

// The intervals of the sorted breakpoints t (x's units) of the curve
// through (x, y) of weights w (null: all 1), unconstrained least squares,
// breakpoint k's with limits[k].
// steps: for each breakpoint, a guess at the interval's half-width (x's
// units; the Wald interval's), where the search looks first; or empty, or
// a non-finite or non-positive entry, for none. NaN intervals when the
// points cannot be standardised (too few, constant x).
std::vector<BreakpointInterval> breakpoint_intervals(const double* x, const double* y,
                                                     const double* w, int64_t n,
                                                     const std::vector<double>& t,
                                                     const std::vector<double>& limits,
                                                     const std::vector<double>& steps);

// A parametric bootstrap, for samples too small for the F test's limits
// and the Jacobian's standard errors: `replicates` curves simulated from the
// fit at t (its fitted values plus normal noise of variance RSS/dof/w_i,
// from `seed`), each fitted afresh. Each breakpoint's limit is 1 + q/dof
// for q the level-quantile of the likelihood-ratio statistic of its true
// value among them, never below `limit` (the F test's, which it tends to as
// the breakpoints become well determined); and the replicates' fitted
// slopes and intercepts (x's and y's units), for the caller to calibrate
// their intervals by.
struct Bootstrap {
  std::vector<double> limits;                       // per breakpoint
  std::vector<std::vector<double>> slopes, intercepts;  // per replicate, per segment
};
Bootstrap bootstrap(const double* x, const double* y, const double* w, int64_t n,
                    const std::vector<double>& t, double limit, double level, int64_t dof,
                    int64_t replicates, uint64_t seed);

}  // namespace relu_ext::curve
