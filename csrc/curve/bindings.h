// relu_ext.ops._C.HingeLeastSquares: fit_curve's solver (hinge_lstsq.h, lbfgs.h)
// for relu_ext/curve/_hinge_lstsq.py. Not an operator: it works on one fit's sorted
// points in float64 on the CPU, and calls back into Python only to all-reduce.
#pragma once

#include <pybind11/pybind11.h>

namespace relu_ext::curve {

void bind(pybind11::module_& m);

}  // namespace relu_ext::curve
