#include "select.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>

#include <ATen/Parallel.h>

#include "criteria.h"
#include "exact_sum.h"
#include "fit.h"
#include "random.h"

namespace relu_ext::curve {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// The fit's weighted mean squared or absolute error in v's units, from the
// residuals: the solver's error for least squares is Σ w·v² - 2·coef·rhs +
// coefᵀ·G·coef, whose rounding (1e-16 of Σ w·v²) would be all there is to an
// exact fit's error.
double residual_error(const Points& p, const CurveFit& fit, Loss loss,
                      const Collective& collective) {
  std::vector<ExactSum> sum(1);
  for (size_t i = 0; i < p.u.size(); ++i) {
    const double r = p.v[i] - evaluate(p.u[i], fit.t, fit.coef);
    sum[0].add(p.w[i] * (loss == Loss::kSquared ? r * r : std::abs(r)));
  }
  return exact_totals(sum, collective)[0] / p.weight;
}

int64_t fold_of(double u, double v, uint64_t seed, int64_t folds) {
  uint64_t a, b;
  std::memcpy(&a, &u, sizeof a);
  std::memcpy(&b, &v, sizeof b);
  return static_cast<int64_t>(mix64(seed ^ mix64(a ^ mix64(b))) % static_cast<uint64_t>(folds));
}

struct Validated {
  double error = kInf;  // the held-out error of every fold, y's units
  double se = 0;        // its standard error, from the spread of the folds'
};

// The k-fold held-out error of options' number of units: each fold's points
// predicted by the fit of the others (standardised afresh, as fit_curve
// would fit them), which also starts from the fit of all the points (`all`):
// a fold's search missing its best fit would count against the K.
Validated cross_validated(const Points& p, const CurveOptions& options, const CurveFit& all,
                          const std::vector<int64_t>& fold, const Collective& collective) {
  if (all.status != FitStatus::kOk) return {};
  // The training points are given in u and v, so the points to pass
  // through and the start must be too.
  CurveOptions in_u = options;
  in_u.starts = {all.t};
  for (size_t c = 0; c < options.through_x.size(); ++c) {
    in_u.through_x[c] = p.to_u(options.through_x[c]);
    in_u.through_y[c] = p.to_v(options.through_y[c]);
  }
  const auto n = static_cast<int64_t>(p.u.size());
  const int64_t folds = options.folds;
  std::vector<ExactSum> held_out(2 * folds);  // per fold: Σ w·loss, Σ w
  Vec w(n);
  for (int64_t f = 0; f < folds; ++f) {
    for (int64_t i = 0; i < n; ++i) w[i] = fold[i] == f ? 0.0 : p.w[i];
    Points train;
    if (standardise(p.u.data(), p.v.data(), w.data(), n, options.hinges + 1, collective, train) !=
        FitStatus::kOk) {
      return {};
    }
    const CurveFit fit = fit_points(train, in_u, collective);
    if (fit.status != FitStatus::kOk) return {};
    for (int64_t i = 0; i < n; ++i) {
      if (fold[i] != f) continue;
      const double predicted =
          train.y_shift + train.y_scale * evaluate(train.to_u(p.u[i]), fit.t, fit.coef);
      const double r = p.v[i] - predicted;
      held_out[2 * f].add(p.w[i] * (options.loss == Loss::kSquared ? r * r : std::abs(r)));
      held_out[2 * f + 1].add(p.w[i]);
    }
  }
  const Vec sums = exact_totals(held_out, collective);
  const double to_y = options.loss == Loss::kSquared ? p.y_scale * p.y_scale : p.y_scale;
  Validated out{0, 0};
  Vec means;
  for (int64_t f = 0; f < folds; ++f) {
    out.error += sums[2 * f];
    if (sums[2 * f + 1] > 0) means.push_back(sums[2 * f] / sums[2 * f + 1] * to_y);
  }
  // Below the floor, the held-out error is rounding too (as the BIC's).
  const double floor = options.loss == Loss::kSquared ? kErrorFloor : std::sqrt(kErrorFloor);
  out.error = std::max(out.error / p.weight, floor) * to_y;
  if (means.size() > 1) {
    double mean = 0, spread = 0;
    for (double m : means) mean += m / static_cast<double>(means.size());
    for (double m : means) spread += (m - mean) * (m - mean);
    const auto k = static_cast<double>(means.size());
    out.se = std::sqrt(spread / (k - 1) / k);
  }
  return out;
}


// Runs task(K) for K = most, ..., 1: by threads, each taking the largest K
// left (the costliest first, so none is left with a long one at the end);
// serially when the points are split across processes, whose collective
// calls must come in one order. Every K's result depends on K alone.
template <typename Task>
void for_each_units(int64_t most, const Collective& collective, const Task& task) {
  if (collective.active()) {
    for (int64_t units = most; units >= 1; --units) task(units);
    return;
  }
  std::atomic<int64_t> next{most};
  at::parallel_for(0, at::get_num_threads(), 1, [&](int64_t, int64_t) {
    for (int64_t units; (units = next--) >= 1;) task(units);
  });
}

CurveOptions with_units(const CurveOptions& options, int64_t units) {
  CurveOptions fixed = options;
  fixed.select = Select::kFixed;
  fixed.hinges = units - 1;
  return fixed;
}

// The fits of K = 1 ... most units. Each K is fitted from the usual starts,
// then once more from the fit of K - 1 with a breakpoint added where its
// error is largest, the better kept: a search from scratch misses now and
// then (a start with two breakpoints in one bend), and would choose K + 1
// for the K it missed.
std::vector<CurveFit> fit_each_units(const Points& p, const CurveOptions& options, int64_t most,
                                     const Collective& collective) {
  std::vector<CurveFit> fits(most);
  for_each_units(most, collective, [&](int64_t units) {
    fits[units - 1] = fit_points(p, with_units(options, units), collective);
  });
  CurveFit none;
  none.status = FitStatus::kInfeasible;
  std::vector<CurveFit> grown(most, none);  // none for K = 1, or where K - 1 has none
  for_each_units(most, collective, [&](int64_t units) {
    if (units == 1 || fits[units - 2].status != FitStatus::kOk) return;
    const CurveFit& fewer = fits[units - 2];
    CurveOptions from_fewer = with_units(options, units);
    from_fewer.usual_starts = false;
    Vec start;
    for (double t : fewer.t) start.push_back(p.to_x(t));
    from_fewer.starts = {start};
    grown[units - 1] = fit_points(p, from_fewer, collective);
  });
  for (int64_t k = 1; k < most; ++k) {
    if (grown[k].status == FitStatus::kOk &&
        (fits[k].status != FitStatus::kOk || grown[k].error < fits[k].error)) {
      fits[k] = std::move(grown[k]);
    }
  }
  return fits;
}

// The points to pass through, a point given twice counted once (two y at
// one x are rejected before the fit).
int64_t constraints(const CurveOptions& options) {
  std::vector<double> distinct(options.through_x);
  std::sort(distinct.begin(), distinct.end());
  return std::unique(distinct.begin(), distinct.end()) - distinct.begin();
}

// The most units worth trying: at most max_units, and fewer parameters
// than points (2K - P < n, P the points to pass through), where the fit
// has a residual degree of freedom left: beyond it the fit interpolates and
// the criterion would measure rounding.
int64_t most_units(const Points& p, const CurveOptions& options) {
  const int64_t through = constraints(options);
  return std::clamp<int64_t>((p.count - 1 + through) / 2, 1, options.max_units);
}

}  // namespace

CurveFit select_units(const Points& p, const CurveOptions& options, const Collective& collective) {
  const int64_t most = most_units(p, options);
  std::vector<CurveFit> fits = fit_each_units(p, options, most, collective);
  Vec scores(options.max_units, std::numeric_limits<double>::quiet_NaN());
  Vec se(options.max_units, 0.0);  // of the cross-validated scores
  if (options.select == Select::kBic) {
    const double log_weights = curve::log_weights(p, collective);
    const int64_t through = constraints(options);
    for (int64_t units = 1; units <= most; ++units) {
      const CurveFit& fit = fits[units - 1];
      const double n = static_cast<double>(p.count);
      const int64_t parameters = free_parameters(units, through, /*breakpoints_estimated=*/true);
      scores[units - 1] = fit.status != FitStatus::kOk ? kInf
          : bic(deviance(n, residual_error(p, fit, options.loss, collective), p.weight, p.y_scale,
                         log_weights, options.loss), parameters, n);
    }
  } else {
    std::vector<int64_t> fold;
    for (size_t i = 0; i < p.u.size(); ++i) {
      fold.push_back(fold_of(p.u[i], p.v[i], options.seed, options.folds));
    }
    for_each_units(most, collective, [&](int64_t units) {
      const Validated validated = cross_validated(p, with_units(options, units),
                                                  fits[units - 1], fold, collective);
      scores[units - 1] = validated.error;
      se[units - 1] = validated.se;
    });
  }

  int64_t best_units = 0;
  for (int64_t units = 1; units <= most; ++units) {
    if (scores[units - 1] < (best_units ? scores[best_units - 1] : kInf)) best_units = units;
  }
  if (options.select == Select::kCv && best_units) {
    // The one-standard-error rule (Hastie, Tibshirani & Friedman, The
    // Elements of Statistical Learning, 7.10): the fewest units whose error
    // is within a standard error of the least. The least alone picks more
    // units than the truth has about a quarter of the time, for differences
    // of error smaller than the folds' own spread.
    const double within = scores[best_units - 1] + se[best_units - 1];
    for (int64_t units = 1; units < best_units; ++units) {
      if (scores[units - 1] <= within) {
        best_units = units;
        break;
      }
    }
  }
  CurveFit best;
  if (best_units) {
    best = std::move(fits[best_units - 1]);
  } else {
    best.status = FitStatus::kInfeasible;
  }
  best.scores = std::move(scores);
  return best;
}

}  // namespace relu_ext::curve
