#include "select.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>

#include <ATen/Parallel.h>

#include "exact_sum.h"

namespace relu_ext::curve {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Mean squared errors (standardised y) below this are rounding, not fit: an
// exact line fitted with more units gains only rounding error, and the
// logarithm in the likelihood would reward it without bound.
constexpr double kErrorFloor = 1e-24;

int64_t free_parameters(int64_t units, const CurveOptions& options) {
  return 2 * units - static_cast<int64_t>(options.through_x.size());
}

// -2·log L at a fit's error (in v's units); log_weights is Σ log w.
double deviance(const Points& p, double error, Loss loss, double log_weights) {
  const double n = static_cast<double>(p.count);
  if (loss == Loss::kSquared) {
    // Gaussian with variances σ²/w_i, σ² at its maximum Σ w·r²/n.
    const double rss = std::max(error, kErrorFloor) * p.weight * p.y_scale * p.y_scale;
    return n * (std::log(2 * std::numbers::pi) + std::log(rss / n) + 1) - log_weights;
  }
  // Laplace with scales b/w_i, b at its maximum Σ w·|r|/n.
  const double b = std::max(error, std::sqrt(kErrorFloor)) * p.weight * p.y_scale / n;
  return 2 * n * (std::log(2 * b) + 1) - 2 * log_weights;
}

double sum_log_weights(const Points& p, const Collective& collective) {
  std::vector<ExactSum> sum(1);
  for (double w : p.w) sum[0].add(std::log(w));
  return exact_totals(sum, collective)[0];
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
// would fit them).
Validated cross_validated(const Points& p, const CurveOptions& options,
                          const std::vector<int64_t>& fold, const Collective& collective) {
  // The training points are given in u and v, so the points to pass
  // through must be too.
  CurveOptions in_u = options;
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
  out.error = out.error / p.weight * to_y;
  if (means.size() > 1) {
    double mean = 0, spread = 0;
    for (double m : means) mean += m / static_cast<double>(means.size());
    for (double m : means) spread += (m - mean) * (m - mean);
    const auto k = static_cast<double>(means.size());
    out.se = std::sqrt(spread / (k - 1) / k);
  }
  return out;
}

}  // namespace

CurveFit select_units(const Points& p, const CurveOptions& options, const Collective& collective) {
  const bool bic = options.select == Select::kBic;
  const double log_weights = bic ? sum_log_weights(p, collective) : 0.0;
  std::vector<int64_t> fold;
  if (!bic) {
    for (size_t i = 0; i < p.u.size(); ++i) {
      fold.push_back(fold_of(p.u[i], p.v[i], options.seed, options.folds));
    }
  }
  // Every K is fitted independently: by threads, each taking the largest K
  // left (the costliest first, so none is left with a long one at the end);
  // serially when the points are split across processes, whose collective
  // calls must come in one order.
  const int64_t most = std::min(options.max_units, p.count);
  std::vector<CurveFit> fits(bic ? most : 0);
  Vec scores(options.max_units, std::numeric_limits<double>::quiet_NaN());
  Vec se(options.max_units, 0.0);  // of the cross-validated scores
  const auto try_units = [&](int64_t units) {
    CurveOptions fixed = options;
    fixed.select = Select::kFixed;
    fixed.hinges = units - 1;
    double score = kInf;
    if (bic) {
      CurveFit& fit = fits[units - 1];
      fit = fit_points(p, fixed, collective);
      if (fit.status == FitStatus::kOk) {
        score = deviance(p, fit.error, options.loss, log_weights) +
                static_cast<double>(free_parameters(units, options)) *
                    std::log(static_cast<double>(p.count));
      }
    } else {
      const Validated validated = cross_validated(p, fixed, fold, collective);
      score = validated.error;
      se[units - 1] = validated.se;
    }
    scores[units - 1] = score;
  };
  if (collective.active()) {
    for (int64_t units = 1; units <= most; ++units) try_units(units);
  } else {
    std::atomic<int64_t> next{most};
    at::parallel_for(0, at::get_num_threads(), 1, [&](int64_t, int64_t) {
      for (int64_t units; (units = next--) >= 1;) try_units(units);
    });
  }
  int64_t best_units = 0;
  for (int64_t units = 1; units <= most; ++units) {
    if (scores[units - 1] < (best_units ? scores[best_units - 1] : kInf)) best_units = units;
  }
  if (!bic && best_units) {
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
  if (bic && best_units) best = std::move(fits[best_units - 1]);
  if (best_units == 0) {
    best.status = FitStatus::kInfeasible;
  } else if (!bic) {
    CurveOptions fixed = options;
    fixed.select = Select::kFixed;
    fixed.hinges = best_units - 1;
    best = fit_points(p, fixed, collective);
  }
  best.scores = std::move(scores);
  return best;
}

}  // namespace relu_ext::curve
