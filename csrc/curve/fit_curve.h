// fit_curve's entry for one curve: its points standardised (points.h),
// then the search for the units asked for (fit.h) or the choice of their
// number (select.h).
#pragma once

#include <cstdint>

#include "options.h"

namespace relu_ext::curve {

// Fits the n points (x_i, y_i) of weight w_i (w null: all 1; points of weight
// 0 are left out entirely). x and y must be finite where w > 0, w finite and
// >= 0. With an active collective, each process passes its share of the
// points and every process gets bitwise the same fit, that of one process
// with all of them: every sum over points is exact (exact_sum.h).
CurveFit fit_curve(const double* x, const double* y, const double* w, int64_t n,
                   const CurveOptions& options, const Collective& collective);

}  // namespace relu_ext::curve
