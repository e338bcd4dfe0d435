#include "fit_curve.h"

#include "fit.h"
#include "points.h"
#include "select.h"

namespace relu_ext::curve {

CurveFit fit_curve(const double* x, const double* y, const double* w, int64_t n,
                   const CurveOptions& options, const Collective& collective) {
  Points p;
  const int64_t fewest = options.select == Select::kFixed ? options.hinges + 1 : 1;
  const FitStatus status = standardise(x, y, w, n, fewest, collective, p);
  CurveFit fit;
  if (status == FitStatus::kOk) {
    fit = options.select == Select::kFixed ? fit_points(p, options, collective)
                                           : select_units(p, options, collective);
  }
  if (status != FitStatus::kOk) fit.status = status;
  fit.points = p.count;
  fit.x_shift = p.x_shift, fit.x_scale = p.x_scale;
  fit.y_shift = p.y_shift, fit.y_scale = p.y_scale;
  fit.u_min = p.u_min, fit.u_max = p.u_max;
  return fit;
}

}  // namespace relu_ext::curve
