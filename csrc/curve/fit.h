// fit_curve's search for one curve of a given number of units, over points
// already standardised (points.h): the starts, L-BFGS on the breakpoints
// (variable projection over hinge_lstsq.h's exact least squares, or the
// constrained solve of constrained_lstsq.h when the curve must be monotone,
// convex or pass through points), reviving breakpoints that leave the data,
// and least absolute error by reweighting.
//
// Why all of it here: a fit is a few hundred evaluations of microseconds
// each, and a Python step between them cost more than the evaluation; and a
// batch of curves is fitted by threads, one curve each, which Python's GIL
// would serialise. Every curve's fit depends on its own points and options
// only, so a curve fitted in a batch is bitwise the curve fitted alone.
//
// The function fitted, in standardised coordinates u = (x - x_shift)/x_scale,
// v = (y - y_shift)/y_scale, is f(u) = c + α·u + Σ_k β_k·relu(u - t_k).
#pragma once

#include <cstdint>
#include <vector>

#include "hinge_lstsq.h"
#include "options.h"

namespace relu_ext::curve {

struct Points;

// The search for options.hinges breakpoints over points already standardised
// (points.h): fit_curve's work after standardising, for each K the selection
// of units tries. Sets units, t, coef, trace, error and, where the
// constraints cannot be met, status; the rest is the caller's.
CurveFit fit_points(const Points& p, const CurveOptions& options, const Collective& collective);

// fit_points on one process with the solver of p's points given,
// HingeLeastSquares over columns(p, p.w) without a reduce: for a caller that
// goes on to use that solver (and the sums it has rounded) after the fit.
CurveFit fit_points(const Points& p, const CurveOptions& options, HingeLeastSquares& ls);

// The error at breakpoints t (any order) at the best coefficients meeting
// the constraints, and its gradient in t: what L-BFGS minimises.
class ProjectedError {
 public:
  // through_u, through_v: the points to pass through, standardised.
  ProjectedError(HingeLeastSquares& ls, const CurveOptions& options, std::vector<double> through_u,
            std::vector<double> through_v);
  const HingeSolution& operator()(const double* t, int64_t h);

 private:
  const HingeSolution& constrained(const double* t, int64_t h);
  void hold_shape(int64_t h);

  HingeLeastSquares& ls_;
  int monotone_, convex_;
  std::vector<double> through_u_, through_v_;
  HingeSolution solution_;
  std::vector<double> equalities_, inequalities_, bounds_, slopes_;
  std::vector<int64_t> order_;
};

// L-BFGS on the breakpoints from t, in place (sorted on return), appending
// the error at every evaluation to trace.
void minimize_breakpoints(ProjectedError& f, std::vector<double>& t, int64_t max_iter,
                          std::vector<double>& trace);

}  // namespace relu_ext::curve
