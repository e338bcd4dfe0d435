#include "fit.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>

#include "constrained_lstsq.h"
#include "exact_sum.h"
#include "lbfgs.h"
#include "points.h"
#include "random.h"

namespace relu_ext::curve {
namespace {

// Breakpoints spaced as |f''|^(2/5), the density of the best L2 knots of a
// smooth f, with f'' read off a least-squares fit with 4× as many quantile
// hinges (its slope change per unit length), mixed with a quarter of uniform
// spacing so that flat stretches keep some breakpoints.
Vec curvature_weighted(HingeLeastSquares& ls, const Points& p, int64_t hinges) {
  const int64_t fine = std::min(4 * hinges, std::max(hinges, p.count / 4));
  const Vec q = p.quantile(even_grid(fine));
  const auto& coef = ls.solve(q.data(), fine).coef;
  Vec edges{p.u_min};
  for (int64_t k = 1; k < fine; ++k) edges.push_back((q[k] + q[k - 1]) / 2);
  edges.push_back(p.u_max);
  Vec mass(fine), width(fine);
  double mass_total = 0, width_total = 0;
  for (int64_t k = 0; k < fine; ++k) {
    width[k] = std::max(edges[k + 1] - edges[k], 1e-12);
    mass[k] = std::pow(std::abs(coef[2 + k]) / width[k], 0.4) * width[k];
    mass_total += mass[k];
    width_total += width[k];
  }
  Vec cumulative{0.0};
  for (int64_t k = 0; k < fine; ++k) {
    const double m = 0.75 * mass[k] / std::max(mass_total, 1e-300) + 0.25 * width[k] / width_total;
    cumulative.push_back(cumulative.back() + m);
  }
  return interpolate(even_grid(hinges), cumulative, edges);
}

// Breakpoints outside the data, or bounding a segment of fewer than
// kFewestPoints points (its right one; the last segment's: the last
// breakpoint); t sorted. Those with no point between them and the previous
// one duplicate another's hinge.
std::vector<bool> dead(const HingeLeastSquares& ls, const Points& p, const Vec& t,
                       const Collective& collective) {
  const auto h = static_cast<int64_t>(t.size());
  Vec sums(kSums * h);
  ls.suffix_sums(t.data(), h, sums.data());
  // Points up to each breakpoint, over every process: segment k holds
  // those in (t_{k-1}, t_k].
  std::vector<int64_t> upto(h + 1, 0);
  for (int64_t k = 0; k < h; ++k) {
    upto[k] = std::upper_bound(p.u.begin(), p.u.end(), t[k]) - p.u.begin();
  }
  upto[h] = static_cast<int64_t>(p.u.size());
  if (collective.active()) collective.sum(upto.data(), h + 1);
  std::vector<bool> out(h);
  for (int64_t k = 0; k < h; ++k) {
    const int64_t held = upto[k] - (k > 0 ? upto[k - 1] : 0);
    out[k] = t[k] <= p.u_min || t[k] >= p.u_max || (k > 0 && sums[k] >= sums[k - 1]) ||
             held < kFewestPoints;
  }
  if (h > 0 && upto[h] - upto[h - 1] < kFewestPoints) out[h - 1] = true;
  return out;
}

// Moves dead breakpoints, one by one, into the live interval with the
// largest weighted squared error, at its error-weighted mean position (inside
// the interval's points, never in a gap of the data), counting a split
// interval's error as a quarter.
Vec revive(ProjectedError& f, const Points& p, const Vec& t, const std::vector<bool>& is_dead,
           const Collective& collective) {
  Vec alive;
  for (size_t k = 0; k < t.size(); ++k) {
    if (!is_dead[k]) alive.push_back(t[k]);
  }
  const Vec coef = f(alive.data(), static_cast<int64_t>(alive.size())).coef;
  const auto intervals = static_cast<int64_t>(alive.size()) + 1;
  std::vector<ExactSum> sums(2 * intervals);  // Σ w·r², Σ w·r²·u per interval
  for (size_t i = 0; i < p.u.size(); ++i) {
    const double r = p.v[i] - evaluate(p.u[i], alive, coef);
    const double squared = p.w[i] * r * r;
    const int64_t at = std::lower_bound(alive.begin(), alive.end(), p.u[i]) - alive.begin();
    sums[at].add(squared);
    sums[intervals + at].add(squared * p.u[i]);
  }
  Vec totals = exact_totals(sums, collective);
  Vec revived = alive;
  const auto dead_count = std::count(is_dead.begin(), is_dead.end(), true);
  for (int64_t j = 0; j < dead_count; ++j) {
    const int64_t i = std::max_element(totals.begin(), totals.begin() + intervals) - totals.begin();
    revived.push_back(totals[intervals + i] / std::max(totals[i], 1e-300));
    totals[i] /= 4;
  }
  std::sort(revived.begin(), revived.end());
  return revived;
}

struct Run {
  double error = std::numeric_limits<double>::infinity();
  Vec t, trace;
  bool supported = false;  // no breakpoint dead(): every segment has its points

  // The least error among the runs whose segments all have their points;
  // one with a segment too thin wins only over others like it.
  bool better_than(const Run& other) const {
    if (supported != other.supported) return supported;
    return error < other.error;
  }
};

bool none(const std::vector<bool>& flags) {
  return std::none_of(flags.begin(), flags.end(), [](bool b) { return b; });
}

// L-BFGS on the breakpoints, then revive dead ones and run again; the best
// breakpoints seen are kept, so a run never ends worse than it started.
Run optimise(ProjectedError& f, HingeLeastSquares& ls, const Points& p, Vec t,
             const CurveOptions& options, const Collective& collective) {
  Run best;
  const auto h = static_cast<int64_t>(t.size());
  best.t = t;
  best.error = f(t.data(), h).mse;
  if (h == 0) {
    best.trace = {best.error};
    best.supported = true;
    return best;
  }
  // The start is kept only as a run's floor: not supported, so that any
  // fitted run whose segments have their points is preferred to it.
  Vec trace;
  for (int64_t round = 0; round <= options.revive; ++round) {
    minimize_breakpoints(f, t, options.max_iter, trace);
    Run run;
    run.error = f(t.data(), h).mse;
    const auto is_dead = dead(ls, p, t, collective);
    run.supported = none(is_dead);
    if (run.better_than(best)) best.error = run.error, best.t = t, best.supported = run.supported;
    if (round == options.revive || run.supported) break;
    t = revive(f, p, t, is_dead, collective);
  }
  trace.push_back(best.error);
  best.trace = std::move(trace);
  return best;
}

// Least absolute error by iteratively reweighted least squares: each round
// weights the squared error by w/|residual| of the last round's fit and
// refits breakpoints (unless fixed) and coefficients; the round with the
// least absolute error is kept (the reweighting need not decrease it every
// round). The floor keeps points the fit passes through from taking all the
// weight.
Run least_absolute(HingeLeastSquares& ls, const Points& p, Vec t, const CurveOptions& options,
                   const Vec& through_u, const Vec& through_v, bool move, Vec& coef,
                   const Collective& collective) {
  const auto h = static_cast<int64_t>(t.size());
  ProjectedError f(ls, options, through_u, through_v);
  coef = f(t.data(), h).coef;
  Run best;
  Vec best_coef;
  std::unique_ptr<HingeLeastSquares> reweighted;
  Vec reweighted_columns;
  for (int64_t round = 0; round <= options.mae_rounds; ++round) {
    Vec residual(p.u.size());
    std::vector<ExactSum> total(1);
    for (size_t i = 0; i < p.u.size(); ++i) {
      residual[i] = std::abs(p.v[i] - evaluate(p.u[i], t, coef));
      total[0].add(p.w[i] * residual[i]);
    }
    const double error = exact_totals(total, collective)[0] / p.weight;
    best.trace.push_back(error);
    if (error < best.error) best.error = error, best.t = t, best_coef = coef;
    if (round == options.mae_rounds) break;
    Vec w(p.u.size());
    for (size_t i = 0; i < w.size(); ++i) w[i] = p.w[i] / std::max(residual[i], 1e-9);
    reweighted_columns = columns(p, w);
    reweighted = std::make_unique<HingeLeastSquares>(p.u.data(), reweighted_columns.data(),
                                                     static_cast<int64_t>(p.u.size()),
                                                     reduce_of(collective));
    ProjectedError g(*reweighted, options, through_u, through_v);
    if (move && h > 0) {
      Vec ignored;
      minimize_breakpoints(g, t, options.max_iter, ignored);
    }
    coef = g(t.data(), h).coef;
  }
  coef = best_coef;
  return best;
}

}  // namespace

ProjectedError::ProjectedError(HingeLeastSquares& ls, const CurveOptions& options, Vec through_u,
                     Vec through_v)
    : ls_(ls),
      monotone_(options.monotone),
      convex_(options.convex),
      through_u_(std::move(through_u)),
      through_v_(std::move(through_v)) {}

const HingeSolution& ProjectedError::operator()(const double* t, int64_t h) {
  if (monotone_ == 0 && convex_ == 0 && through_u_.empty()) return ls_.solve(t, h);
  return constrained(t, h);
}

const HingeSolution& ProjectedError::constrained(const double* t, int64_t h) {
  const int64_t features = h + 2;
  ls_.normal_equations(t, h);
  // Passing through (u_c, v_c): c + α·u_c + Σ β_k·relu(u_c - t_k) = v_c.
  const auto points = static_cast<int64_t>(through_u_.size());
  equalities_.assign(points * features, 0.0);
  for (int64_t c = 0; c < points; ++c) {
    double* row = equalities_.data() + c * features;
    row[0] = 1;
    row[1] = through_u_[c];
    for (int64_t k = 0; k < h; ++k) row[2 + k] = std::max(through_u_[c] - t[k], 0.0);
  }
  // The slope of each piece, left to right: α, then α plus the β of every
  // breakpoint passed. Monotone: each has monotone's sign (the outer pieces
  // extend beyond the data, so this holds everywhere). Convex: every slope
  // change β_k has convex's sign.
  order_.resize(h);
  std::iota(order_.begin(), order_.end(), 0);
  std::stable_sort(order_.begin(), order_.end(), [&](int64_t a, int64_t b) { return t[a] < t[b]; });
  inequalities_.clear();
  if (monotone_ != 0) {
    Vec row(features, 0.0);
    row[1] = monotone_;
    inequalities_.insert(inequalities_.end(), row.begin(), row.end());
    for (int64_t j = 0; j < h; ++j) {
      row[2 + order_[j]] = monotone_;
      inequalities_.insert(inequalities_.end(), row.begin(), row.end());
    }
  }
  if (convex_ != 0) {
    for (int64_t k = 0; k < h; ++k) {
      Vec row(features, 0.0);
      row[2 + k] = convex_;
      inequalities_.insert(inequalities_.end(), row.begin(), row.end());
    }
  }
  bounds_.assign(inequalities_.size() / features, 0.0);
  ConstrainedLstsqProblem problem;
  problem.n = features;
  problem.G = ls_.gram().data();
  problem.g = ls_.rhs().data();
  problem.equalities = points;
  problem.E = equalities_.data();
  problem.d = through_v_.data();
  problem.inequalities = static_cast<int64_t>(bounds_.size());
  problem.C = inequalities_.data();
  problem.h = bounds_.data();
  const auto solution = solve_constrained_lstsq(problem);
  solution_.grad.assign(h, 0.0);
  if (!solution.feasible) {
    solution_.coef.assign(features, 0.0);
    solution_.mse = std::numeric_limits<double>::infinity();
    return solution_;
  }
  solution_.coef = solution.z;
  hold_shape(h);
  const double sse = ls_.sse(solution_.coef.data());
  if (!std::isfinite(sse)) {
    solution_.coef.assign(features, 0.0);
    solution_.mse = std::numeric_limits<double>::infinity();
    return solution_;
  }
  const double weight = ls_.weight();
  solution_.mse = std::max(sse, 0.0) / weight;
  // The envelope theorem on the Lagrangian: the equalities' rows depend on t
  // (∂/∂t_k of β_k·relu(u_c - t_k) is -β_k·[u_c > t_k]), the slope rows do
  // not (for the order of t they were built for).
  ls_.sse_gradient(t, h, solution_.coef.data(), solution_.grad.data());
  for (int64_t k = 0; k < h; ++k) {
    double through = 0;
    for (int64_t c = 0; c < points; ++c) {
      if (through_u_[c] > t[k]) through += solution.nu[c];
    }
    solution_.grad[k] = (solution_.grad[k] + solution_.coef[2 + k] * through) / weight;
  }
  return solution_;
}

void ProjectedError::hold_shape(int64_t h) {
  // The active constraints hold to rounding in the solve: a slope meant to
  // be 0 may come out 1e-17 on the wrong side. Made exact here, first the
  // changes of slope (convex), then the slopes (monotone; order_ is t's
  // sorted order): clamping sorted slopes keeps them sorted, and the
  // difference of two sorted doubles has the sign of their order, so the
  // second step keeps what the first made. relu_ext/curve/_fit.py keeps
  // them through the module's rounding.
  double* coef = solution_.coef.data();
  for (int64_t k = 0; k < h && convex_ != 0; ++k) {
    if (coef[2 + k] * convex_ < 0) coef[2 + k] = 0;
  }
  if (monotone_ == 0) return;
  slopes_.resize(h + 1);
  slopes_[0] = coef[1];
  for (int64_t j = 0; j < h; ++j) slopes_[j + 1] = slopes_[j] + coef[2 + order_[j]];
  bool clamped = false;
  for (double& slope : slopes_) {
    if (slope * monotone_ < 0) slope = 0, clamped = true;
  }
  if (!clamped) return;
  coef[1] = slopes_[0];
  for (int64_t j = 0; j < h; ++j) coef[2 + order_[j]] = slopes_[j + 1] - slopes_[j];
}

void minimize_breakpoints(ProjectedError& f, Vec& t, int64_t max_iter, Vec& trace) {
  const auto h = static_cast<int64_t>(t.size());
  // The tolerances are absolute: the error is measured relative to where
  // this run starts (the first evaluation), so that a fit already good to
  // 1e-9 still gets refined.
  double scale = 0;
  const Objective error = [&](const Vec& at, Vec& grad) {
    const auto& s = f(at.data(), h);
    trace.push_back(s.mse);
    if (scale == 0) scale = std::isfinite(s.mse) ? std::max(s.mse, 1e-300) : 1.0;
    for (int64_t k = 0; k < h; ++k) grad[k] = s.grad[k] / scale;
    return s.mse / scale;
  };
  LbfgsOptions options;
  options.max_iter = max_iter;
  options.max_eval = max_iter + max_iter / 4;
  minimize_lbfgs(error, t, options);
  std::sort(t.begin(), t.end());
}

namespace {

CurveFit fit_with(const Points& p, const CurveOptions& options, const Collective& collective,
                  HingeLeastSquares& ls) {
  CurveFit fit;
  fit.units = options.hinges + 1;
  Vec through_u, through_v;
  for (size_t c = 0; c < options.through_x.size(); ++c) {
    through_u.push_back(p.to_u(options.through_x[c]));
    through_v.push_back(p.to_v(options.through_y[c]));
  }
  ProjectedError f(ls, options, through_u, through_v);
  const int64_t h = options.hinges;

  Run best;
  const bool fixed = !options.breakpoints.empty();
  if (fixed) {
    best.t.resize(h);
    for (int64_t k = 0; k < h; ++k) best.t[k] = p.to_u(options.breakpoints[k]);
    best.error = f(best.t.data(), h).mse;
    best.trace = {best.error};
  } else {
    std::vector<Vec> starts;
    if (options.usual_starts) starts.push_back(p.quantile(even_grid(h)));
    if (h > 0 && options.usual_starts) {
      if (options.restarts > 1) starts.push_back(curvature_weighted(ls, p, h));
      Random random(options.seed);
      for (int64_t r = 2; r < options.restarts; ++r) {
        Vec probabilities(h);
        for (double& q : probabilities) q = random.uniform();
        std::sort(probabilities.begin(), probabilities.end());
        starts.push_back(p.quantile(probabilities));
      }
      if (options.shaped()) {
        // The lattice calibrators' family: K pieces on equally spaced knots.
        // Starting there too, the fit is never worse than the best of it.
        Vec uniform(h);
        for (int64_t k = 0; k < h; ++k) {
          uniform[k] = p.u_min + (p.u_max - p.u_min) * static_cast<double>(k + 1) / (h + 1);
        }
        starts.push_back(uniform);
      }
    }
    if (h > 0) {
      for (const Vec& given : options.starts) {
        Vec start(h, p.u_min);  // missing ones "dead" at the edge, for revive()
        std::vector<bool> missing(h, true);
        for (size_t k = 0; k < std::min<size_t>(given.size(), h); ++k) {
          start[k] = p.to_u(given[k]);
          missing[k] = false;
        }
        if (given.size() < static_cast<size_t>(h)) start = revive(f, p, start, missing, collective);
        std::sort(start.begin(), start.end());
        starts.push_back(std::move(start));
      }
    }
    for (const Vec& start : starts) {
      Run run = optimise(f, ls, p, start, options, collective);
      if (run.better_than(best) || best.t.size() != static_cast<size_t>(h)) best = std::move(run);
    }
  }
  if (!std::isfinite(best.error) && options.constrained()) {
    fit.status = FitStatus::kInfeasible;
    return fit;
  }
  if (options.loss == Loss::kAbsolute) {
    Vec coef;
    Run run = least_absolute(ls, p, best.t, options, through_u, through_v, !fixed, coef,
                             collective);
    fit.t = std::move(run.t);
    fit.coef = std::move(coef);
    fit.trace = std::move(run.trace);
    fit.error = run.error;
  } else {
    fit.t = best.t;
    fit.coef = f(best.t.data(), h).coef;
    fit.trace = std::move(best.trace);
    fit.error = best.error;
  }
  return fit;
}

}  // namespace

CurveFit fit_points(const Points& p, const CurveOptions& options, const Collective& collective) {
  const Vec weighted = columns(p, p.w);
  HingeLeastSquares ls(p.u.data(), weighted.data(), static_cast<int64_t>(p.u.size()),
                       reduce_of(collective));
  return fit_with(p, options, collective, ls);
}

CurveFit fit_points(const Points& p, const CurveOptions& options, HingeLeastSquares& ls) {
  return fit_with(p, options, Collective{}, ls);
}

}  // namespace relu_ext::curve