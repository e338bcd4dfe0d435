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
#pragma once

#include <cstdint>
#include <vector>

#include "points.h"

namespace relu_ext::curve {

struct BootstrapOptions {
  std::vector<bool> calibrate;  // per breakpoint (empty: none)
  int64_t replicates = 0;
  double level = 0.95;
  int64_t dof = 1;  // the fit's residual degrees of freedom
  uint64_t seed = 0;
};

// The replicates' fitted slopes and intercepts (x's and y's units) and
// their standard errors (each replicate's own, by the delta method of
// lines.h; NaN where its JᵀWJ is singular), per replicate and segment, for
// the caller to calibrate the fit's intervals by: the segments a
// bootstrapped block holds, bar an end one against a breakpoint held fixed,
// NaN for the others; empty with no bootstrap.
struct ReplicatedLines {
  std::vector<std::vector<double>> slopes, intercepts, se_slopes, se_intercepts;
};

// The bootstrap over p's points (weighted: their solver columns, points.h's
// columns(p, p.w)), the sorted breakpoints tu in p's u: raises the limits
// (each breakpoint's, the F test's on entry) of those options.calibrate
// marks to the bootstrap's, and sets the replicated lines.
void bootstrap(const Points& p, const std::vector<double>& weighted, const std::vector<double>& tu,
               const BootstrapOptions& options, std::vector<double>& limits,
               ReplicatedLines& lines);

// The level-quantile of the values, NaN left out: the ⌈level·(count + 1)⌉-th
// smallest (clamped to the values; inf is a value like any other); NaN for
// none. The bootstrap's limits and curve_summary's bootstrap-t take it.
double rank_quantile(std::vector<double> values, double level);

}  // namespace relu_ext::curve
