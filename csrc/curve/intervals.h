// Profile-likelihood intervals of a fitted curve's breakpoints, for
// relu_ext.curve_summary.
//
// The interval of breakpoint k is the set of τ around t_k where its profile
// (profile.h) stays within
//
//   profile(τ) <= limit · RSS(t),   limit = 1 + F(1, dof; level) / dof,
//
// the F-test (likelihood-ratio) inversion whose coverage holds in small
// samples where the Jacobian's (Wald) interval does not: the error is far
// from quadratic in a breakpoint (it changes by whole points crossing it).
// An interval stops at the data's edge, and at a neighbouring breakpoint
// (past it, the two would trade places: the profile would then be another
// breakpoint's). For a breakpoint the bootstrap calibrates (bootstrap.h: a
// weak one), the set can come in pieces: its interval runs from the set's
// outermost τ on either side, and its neighbours are also searched on a grid.
#pragma once

#include <cstdint>
#include <vector>

#include "bootstrap.h"

namespace relu_ext::curve {

struct BreakpointInterval {
  double low, high;
};

struct ProfileIntervals {
  std::vector<BreakpointInterval> intervals;
  std::vector<double> limits;  // each breakpoint's: the F test's or the bootstrap's
  ReplicatedLines replicated;  // the bootstrap's (bootstrap.h); empty without
  // Each segment's least and greatest slope, then least and greatest
  // intercept (x's and y's units), over the curves at the ends of the
  // bootstrapped breakpoints' intervals, their neighbours re-fitted: the
  // lines the curve can have with a weak breakpoint anywhere in its
  // interval. NaN for a segment none reached; all NaN without bootstrap.
  std::vector<std::vector<double>> reach;
};

// The intervals of the sorted breakpoints t (x's units) of the curve
// through (x, y) of weights w (null: all 1), unconstrained least squares, at
// the F test's `limit`, calibrated by the bootstrap where `bootstrap` says.
// steps: for each breakpoint, a guess at the interval's half-width (x's
// units; the Wald interval's), where the search looks first; or empty, or
// a non-finite or non-positive entry, for none. NaN intervals when the
// points cannot be standardised (too few, constant x). through_x,
// through_y: points the curve passes through (x's and y's units), held in
// every profile; the bootstrap (unconstrained) is then not to be asked for.
ProfileIntervals profile_intervals(const double* x, const double* y, const double* w, int64_t n,
                                   const std::vector<double>& t, double limit,
                                   const std::vector<double>& steps,
                                   const BootstrapOptions& bootstrap,
                                   const std::vector<double>& through_x = {},
                                   const std::vector<double>& through_y = {});

}  // namespace relu_ext::curve
