#include "fit.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>

#include "constrained_lstsq.h"
#include "exact_sum.h"
#include "lbfgs.h"

namespace relu_ext::curve {
namespace {

using Vec = std::vector<double>;

// Quantiles come from a histogram of this many bins, not from sorting: its
// counts add up exactly across processes, so a split fit starts where a
// one-process fit does.
constexpr int64_t kQuantileBins = 8192;
// A point's weight in the histogram: its share of the total in units of
// 2^-52, an integer, so that the counts add up exactly in any order.
constexpr int kWeightBits = 52;

// The collective's int64 sum as hinge_lstsq.h's Reduce of exact sums' digits.
Reduce reduce_of(const Collective& collective) {
  if (!collective.active()) return {};
  return [&collective](int64_t* digits, int64_t count) {
    collective.sum(digits, count * ExactSum::kDigits);
  };
}

// The exact sums of several columns over every process's points, rounded.
Vec exact_totals(std::vector<ExactSum>& sums, const Collective& collective) {
  Vec out(sums.size());
  reduce_and_round(sums, reduce_of(collective), out.data());
  return out;
}

double all_max(double value, const Collective& collective) {
  if (collective.active()) collective.max(&value, 1);
  return value;
}

// splitmix64 (Steele, Lea & Flood 2014): the random starts' generator, the
// same stream from a seed on every platform.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  double uniform() {  // in [0, 1)
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return static_cast<double>((z ^ (z >> 31)) >> 11) * 0x1p-53;
  }

 private:
  uint64_t state_;
};

// Inverts a piecewise-linear cumulative function given at edges.
Vec interpolate(const Vec& targets, const Vec& cumulative, const Vec& edges) {
  Vec out(targets.size());
  const auto last = static_cast<int64_t>(edges.size()) - 1;
  for (size_t j = 0; j < targets.size(); ++j) {
    int64_t i = std::lower_bound(cumulative.begin(), cumulative.end(), targets[j]) -
                cumulative.begin();
    i = std::clamp<int64_t>(i, 1, last);
    const double lo = cumulative[i - 1], hi = cumulative[i];
    const double frac = std::clamp((targets[j] - lo) / std::max(hi - lo, 1e-300), 0.0, 1.0);
    out[j] = edges[i - 1] + frac * (edges[i] - edges[i - 1]);
  }
  return out;
}

Vec even_grid(int64_t count) {  // i / (count + 1), i = 1..count
  Vec p(count);
  for (int64_t i = 0; i < count; ++i) p[i] = static_cast<double>(i + 1) / (count + 1);
  return p;
}

// One curve's points of positive weight, standardised and sorted, with the
// sums the solver needs.
struct Points {
  Vec u, v, w;  // sorted by u
  int64_t count = 0;
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

  double x_mean_ = 0, x_std_ = 1, y_mean_ = 0, y_std_ = 1;  // of the scaled x and y
};

// The power of two above the largest |value| of positive weight: dividing
// by it is exact, and keeps squares and sums of 1e300-sized values finite
// and of 1e-300-sized ones normal.
int scale_exponent(const Vec& values, const Collective& collective) {
  double largest = 0;
  for (double value : values) largest = std::max(largest, std::abs(value));
  largest = all_max(largest, collective);
  int exponent = 0;
  if (largest > 0) std::frexp(largest, &exponent);
  return exponent;
}

// Mean and standard deviation (weighted) of the values over every process.
std::pair<double, double> moments(const Vec& values, const Vec& w, double weight,
                                  const Collective& collective) {
  std::vector<ExactSum> sum(1);
  for (size_t i = 0; i < values.size(); ++i) sum[0].add(w[i] * values[i]);
  const double mean = exact_totals(sum, collective)[0] / weight;
  std::vector<ExactSum> squares(1);
  for (size_t i = 0; i < values.size(); ++i) {
    const double d = values[i] - mean;
    squares[0].add(w[i] * d * d);
  }
  return {mean, std::sqrt(exact_totals(squares, collective)[0] / weight)};
}

FitStatus standardise(const double* x, const double* y, const double* w, int64_t n,
                      int64_t units, const Collective& collective, Points& p) {
  Vec xs, ys, ws;
  for (int64_t i = 0; i < n; ++i) {
    const double wi = w ? w[i] : 1.0;
    if (!(wi > 0)) continue;
    xs.push_back(x[i]);
    ys.push_back(y[i]);
    ws.push_back(wi);
  }
  std::vector<ExactSum> totals(1);
  for (double wi : ws) totals[0].add(wi);
  p.weight = exact_totals(totals, collective)[0];
  int64_t count = static_cast<int64_t>(xs.size());
  if (collective.active()) collective.sum(&count, 1);
  p.count = count;
  if (count < units) return FitStatus::kTooFewPoints;

  p.x_exponent = scale_exponent(xs, collective);
  p.y_exponent = scale_exponent(ys, collective);
  for (double& xi : xs) xi = std::ldexp(xi, -p.x_exponent);
  for (double& yi : ys) yi = std::ldexp(yi, -p.y_exponent);
  std::tie(p.x_mean_, p.x_std_) = moments(xs, ws, p.weight, collective);
  std::tie(p.y_mean_, p.y_std_) = moments(ys, ws, p.weight, collective);
  if (!(p.x_std_ > 0)) return FitStatus::kConstantX;
  if (!(p.y_std_ > 0)) p.y_std_ = 1;  // a constant: nothing to scale
  p.x_shift = std::ldexp(p.x_mean_, p.x_exponent);
  p.x_scale = std::ldexp(p.x_std_, p.x_exponent);
  p.y_shift = std::ldexp(p.y_mean_, p.y_exponent);
  p.y_scale = std::ldexp(p.y_std_, p.y_exponent);

  std::vector<int64_t> order(xs.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return xs[a] < xs[b]; });
  p.u.resize(xs.size());
  p.v.resize(xs.size());
  p.w.resize(xs.size());
  for (size_t i = 0; i < order.size(); ++i) {
    p.u[i] = (xs[order[i]] - p.x_mean_) / p.x_std_;
    p.v[i] = (ys[order[i]] - p.y_mean_) / p.y_std_;
    p.w[i] = ws[order[i]];
  }
  const double inf = std::numeric_limits<double>::infinity();
  p.u_max = all_max(p.u.empty() ? -inf : p.u.back(), collective);
  p.u_min = -all_max(p.u.empty() ? -inf : -p.u.front(), collective);

  std::vector<int64_t> counts(kQuantileBins, 0);
  const double width = p.u_max - p.u_min;
  for (size_t i = 0; i < p.u.size(); ++i) {
    const auto bin = static_cast<int64_t>((p.u[i] - p.u_min) / width * kQuantileBins);
    counts[std::clamp<int64_t>(bin, 0, kQuantileBins - 1)] +=
        std::llround(std::ldexp(p.w[i] / p.weight, kWeightBits));
  }
  if (collective.active()) collective.sum(counts.data(), kQuantileBins);
  p.cumulative.assign(kQuantileBins + 1, 0.0);
  int64_t running = 0;
  for (int64_t b = 0; b < kQuantileBins; ++b) {
    running += counts[b];
    p.cumulative[b + 1] = static_cast<double>(running);
  }
  for (double& c : p.cumulative) c /= static_cast<double>(running);
  p.edges.resize(kQuantileBins + 1);
  for (int64_t b = 0; b <= kQuantileBins; ++b) {
    p.edges[b] = p.u_min + width * static_cast<double>(b) / kQuantileBins;
  }
  return FitStatus::kOk;
}

// The solver's columns for weights w: w, w·u, w·u², w·v, w·u·v, w·v².
Vec columns(const Points& p, const Vec& w) {
  const auto n = static_cast<int64_t>(p.u.size());
  Vec c(kColumns * n);
  for (int64_t i = 0; i < n; ++i) {
    const double wu = w[i] * p.u[i], wv = w[i] * p.v[i];
    c[0 * n + i] = w[i];
    c[1 * n + i] = wu;
    c[2 * n + i] = wu * p.u[i];
    c[3 * n + i] = wv;
    c[4 * n + i] = wu * p.v[i];
    c[5 * n + i] = wv * p.v[i];
  }
  return c;
}

double evaluate(double u, const Vec& t, const Vec& coef) {
  double f = coef[0] + coef[1] * u;
  for (size_t k = 0; k < t.size(); ++k) f += coef[2 + k] * std::max(u - t[k], 0.0);
  return f;
}

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

// Breakpoints outside the data, or with no point between them and the
// previous one (their hinge duplicates another); t sorted.
std::vector<bool> dead(const HingeLeastSquares& ls, const Points& p, const Vec& t) {
  const auto h = static_cast<int64_t>(t.size());
  Vec sums(kSums * h);
  ls.suffix_sums(t.data(), h, sums.data());
  std::vector<bool> out(h);
  for (int64_t k = 0; k < h; ++k) {
    out[k] = t[k] <= p.u_min || t[k] >= p.u_max || (k > 0 && sums[k] >= sums[k - 1]);
  }
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
};

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
    return best;
  }
  Vec trace;
  for (int64_t round = 0; round <= options.revive; ++round) {
    minimize_breakpoints(f, t, options.max_iter, trace);
    const double error = f(t.data(), h).mse;
    if (error < best.error) best.error = error, best.t = t;
    const auto is_dead = dead(ls, p, t);
    if (round == options.revive || std::none_of(is_dead.begin(), is_dead.end(), [](bool d) { return d; })) {
      break;
    }
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

CurveFit fit_curve(const double* x, const double* y, const double* w, int64_t n,
                   const CurveOptions& options, const Collective& collective) {
  CurveFit fit;
  Points p;
  fit.status = standardise(x, y, w, n, options.hinges + 1, collective, p);
  fit.points = p.count;
  if (fit.status != FitStatus::kOk) return fit;
  fit.x_shift = p.x_shift, fit.x_scale = p.x_scale;
  fit.y_shift = p.y_shift, fit.y_scale = p.y_scale;
  fit.u_min = p.u_min, fit.u_max = p.u_max;

  Vec through_u, through_v;
  for (size_t c = 0; c < options.through_x.size(); ++c) {
    through_u.push_back(p.to_u(options.through_x[c]));
    through_v.push_back(p.to_v(options.through_y[c]));
  }
  const Vec weighted = columns(p, p.w);
  HingeLeastSquares ls(p.u.data(), weighted.data(), static_cast<int64_t>(p.u.size()),
                       reduce_of(collective));
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
    starts.push_back(p.quantile(even_grid(h)));
    if (h > 0) {
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
    for (const Vec& start : starts) {
      Run run = optimise(f, ls, p, start, options, collective);
      if (run.error < best.error || best.t.size() != static_cast<size_t>(h)) best = std::move(run);
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
  } else {
    fit.t = best.t;
    fit.coef = f(best.t.data(), h).coef;
    fit.trace = std::move(best.trace);
  }
  return fit;
}

}  // namespace relu_ext::curve
