// fit_curve's compiled side as relu_ext.ops._C functions (not operators: they
// work on float64 CPU data and call back into Python only to all-reduce):
// fit_curves, the whole search over each curve of a batch (fit.h);
// HingeLeastSquares, the least squares and L-BFGS of one curve's sorted points
// (hinge_lstsq.h, lbfgs.h); constrained_lstsq (constrained_lstsq.h); and the
// exact sums (exact_sum.h).
#pragma once

#include <pybind11/pybind11.h>

namespace relu_ext::curve {

void bind(pybind11::module_& m);

}  // namespace relu_ext::curve
