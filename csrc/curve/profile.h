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
// breakpoint's). For a breakpoint the bootstrap calibrates (a weak one),
// the set can come in pieces: its interval runs from the set's outermost
// τ on either side, and its neighbours are also searched on a grid.
#pragma once

#include <cstdint>
#include <vector>

namespace relu_ext::curve {

struct BreakpointInterval {
  double low, high;
};

// The bootstrap curve_summary asks for where the F test's limit is short:
// breakpoints too weak for the noise, or the sample too small.
//
// It is parametric and local. Each breakpoint to calibrate is re-fitted
// with its neighbour on each side, on the points between the next
// breakpoints out (or the data's ends): beyond those the curve's error does
// not depend on where the three are. Overlapping or touching blocks are
// merged; a curve of up to two breakpoints is one block, all its points.
// A block's replicates are its fitted values plus normal noise of variance
// RSS/dof/w_i (from `seed`), each fitted afresh; the residual variance of a
// replicate adds the σ²·χ² the points outside the block contribute. Each
// breakpoint calibrated gets limit 1 + q/dof, q the level-quantile of the
// likelihood-ratio statistic of its true value, never below the F test's
// (which it tends to as the breakpoints become well determined). The cost
// is the blocks', not the curve's: a K = 20 fit with one weak breakpoint
// re-fits 3 breakpoints on a fifth of its points.
struct BootstrapOptions {
  std::vector<bool> calibrate;  // per breakpoint (empty: none)
  int64_t replicates = 0;
  double level = 0.95;
  int64_t dof = 1;  // the fit's residual degrees of freedom
  uint64_t seed = 0;
};

struct ProfileIntervals {
  std::vector<BreakpointInterval> intervals;
  std::vector<double> limits;  // each breakpoint's: the F test's or the bootstrap's
  // The replicates' fitted slopes and intercepts (x's and y's units) and
  // their standard errors (each replicate's own, by the delta method; NaN
  // where its JᵀWJ is singular), per replicate and segment, for the caller
  // to calibrate the fit's intervals by: the segments a bootstrapped block
  // holds, bar an end one against a breakpoint held fixed, NaN for the
  // others; empty with no bootstrap.
  std::vector<std::vector<double>> slopes, intercepts, se_slopes, se_intercepts;
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
// points cannot be standardised (too few, constant x).
ProfileIntervals profile_intervals(const double* x, const double* y, const double* w, int64_t n,
                                   const std::vector<double>& t, double limit,
                                   const std::vector<double>& steps,
                                   const BootstrapOptions& bootstrap);

}  // namespace relu_ext::curve
