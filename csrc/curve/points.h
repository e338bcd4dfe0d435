// One curve's points as every step of fit_curve sees them: the points of
// positive weight, standardised (u = (x - x_shift)/x_scale, v likewise) and
// sorted by u, with the weighted histogram the starts take quantiles from;
// and the exact sums over points of every process (exact_sum.h) the steps
// share.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "exact_sum.h"
#include "hinge_lstsq.h"
#include "options.h"

namespace relu_ext::curve {

using Vec = std::vector<double>;

// The collective's int64 sum as hinge_lstsq.h's Reduce of exact sums' digits.
Reduce reduce_of(const Collective& collective);

// The exact sums of several columns over every process's points, rounded.
Vec exact_totals(std::vector<ExactSum>& sums, const Collective& collective);

// The largest of value over every process.
double all_max(double value, const Collective& collective);

// Inverts a piecewise-linear cumulative function given at edges.
Vec interpolate(const Vec& targets, const Vec& cumulative, const Vec& edges);

Vec even_grid(int64_t count);  // i / (count + 1), i = 1..count

struct Points {
  Vec u, v, w;  // sorted by u
  int64_t count = 0;  // over every process
  double weight = 0;  // Σ w over every process
  double x_shift = 0, x_scale = 1, y_shift = 0, y_scale = 1;
  int x_exponent = 0, y_exponent = 0;  // x and y were divided by 2^exponent first
  double u_min = 0, u_max = 0;
  Vec cumulative, edges;  // the weighted histogram of u, for quantiles

  Vec quantile(const Vec& probabilities) const {
    return interpolate(probabilities, cumulative, edges);
  }
  double to_u(double x) const { return (std::ldexp(x, -x_exponent) - x_mean_) / x_std_; }
  double to_v(double y) const { return (std::ldexp(y, -y_exponent) - y_mean_) / y_std_; }
  double to_x(double u) const { return x_shift + x_scale * u; }

  double x_mean_ = 0, x_std_ = 1, y_mean_ = 0, y_std_ = 1;  // of the scaled x and y
};

// The points of positive weight of (x, y, w) (w null: all 1), standardised;
// kTooFewPoints when fewer than `units`, kConstantX when x takes one value.
FitStatus standardise(const double* x, const double* y, const double* w, int64_t n,
                      int64_t units, const Collective& collective, Points& p);

// Points p (from standardise) with new y values, given in p's order (the
// same points, weights and order, so the same x side): sets v and the y
// scaling as standardise would have. For the bootstrap's replicates, whose
// points differ in y alone: the x side (the quantile histogram above all)
// is then computed once, not once a replicate.
void restandardise(const double* y, const Collective& collective, Points& p);

// The solver's columns for weights w: w, w·u, w·u², w·v, w·u·v, w·v².
Vec columns(const Points& p, const Vec& w);

// c + α·u + Σ β_k·relu(u - t_k) at u.
double evaluate(double u, const Vec& t, const Vec& coef);

}  // namespace relu_ext::curve
