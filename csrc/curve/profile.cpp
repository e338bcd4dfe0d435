#include "profile.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "fit.h"
#include "hinge_lstsq.h"
#include "lbfgs.h"
#include "points.h"

namespace relu_ext::curve {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Breakpoints on each side of t_k re-optimised in its profile: moving t_k
// changes the function near it, and what compensates is near it too (the
// coefficients, global, are re-solved exactly at every τ). Further ones are
// held: each costs L-BFGS a variable at every evaluation, and a K = 20
// summary would take 0.2 s instead of 0.03 s.
constexpr int64_t kWindow = 2;

// Breakpoint k's profile: the error at t_k = τ, its neighbours re-optimised
// from where the last evaluation left them (the search moves τ in small
// steps, so that is close to their optimum).
class Profile {
 public:
  // keep_sides: +inf where a neighbour would cross τ (for an interval, whose
  // breakpoint would become another's); false: the error whatever the order.
  Profile(ProjectedError& f, const Vec& t, int64_t k, double u_min, double u_max,
          bool keep_sides = true)
      : f_(f), k_(k), u_min_(u_min), u_max_(u_max), keep_sides_(keep_sides), t_(t) {
    const auto h = static_cast<int64_t>(t.size());
    for (int64_t j = std::max<int64_t>(0, k - kWindow); j <= std::min(h - 1, k + kWindow); ++j) {
      if (j != k) free_.push_back(j), at_.push_back(t[j]);
    }
  }

  double operator()(double tau) {
    const auto h = static_cast<int64_t>(t_.size());
    t_[k_] = tau;
    if (!free_.empty()) {
      Vec at = at_;
      double scale = 0;  // relative tolerances, as minimize_breakpoints
      const Objective error = [&](const Vec& values, Vec& grad) {
        place(values);
        const auto& s = f_(t_.data(), h);
        if (scale == 0) scale = std::isfinite(s.mse) ? std::max(s.mse, 1e-300) : 1.0;
        for (size_t i = 0; i < free_.size(); ++i) grad[i] = s.grad[free_[i]] / scale;
        return s.mse / scale;
      };
      // The interval needs the profile to a small fraction of limit - 1
      // (F/dof, 1e-3 and up), not to rounding.
      LbfgsOptions options;
      options.tolerance_grad = 1e-5;
      options.tolerance_change = 1e-8;
      minimize_lbfgs(error, at, options);
      // Each must stay on its side of τ, inside the data.
      for (size_t i = 0; i < free_.size() && keep_sides_; ++i) {
        const bool inside = free_[i] < k_ ? u_min_ < at[i] && at[i] < tau
                                          : tau < at[i] && at[i] < u_max_;
        if (!inside) return kInf;
      }
      at_ = at;
    }
    place(at_);
    return f_(t_.data(), h).mse;
  }

 private:
  void place(const Vec& values) {
    for (size_t i = 0; i < free_.size(); ++i) t_[free_[i]] = values[i];
  }

  ProjectedError& f_;
  int64_t k_;
  double u_min_, u_max_;
  bool keep_sides_;
  Vec t_;                      // τ at k, the free ones, the others as fitted
  std::vector<int64_t> free_;  // the neighbours re-optimised...
  Vec at_;                     // ...and where the last evaluation left them
};

// Where the profile crosses `threshold` walking from t_k (where it is `base`)
// towards `edge`. First a bracket: each step goes as far as a quadratic
// through the last point predicts the crossing (the profile's shape near
// its minimum), 1.25 to 4 times the last distance (further could step over
// the first crossing where the profile has several); then regula falsi with
// the Illinois modification (Dowell & Jarratt 1971), bisecting where the
// profile is infinite (a neighbour would cross), until the end is known to
// 1e-3 of its distance from t_k.
double crossing(Profile& profile, double from, double edge, double first_step, double base,
                double threshold) {
  const double direction = edge > from ? 1.0 : -1.0;
  double a = from, ga = base - threshold;  // inside: g <= 0
  double b = edge, gb = 0;                 // outside: g > 0
  for (double distance = first_step;;) {
    const double at = from + direction * distance;
    if ((at - edge) * direction >= 0) {
      gb = profile(edge) - threshold;
      if (gb <= 0) return edge;
      break;
    }
    const double g = profile(at) - threshold;
    if (g > 0) {
      b = at, gb = g;
      break;
    }
    a = at, ga = g;
    const double rise = g - (base - threshold);
    const double predicted = rise > 0 ? distance * std::sqrt((threshold - base) / rise) : 0.0;
    distance = std::clamp(1.1 * predicted, 1.25 * distance, 4 * distance);
  }
  int kept = 0;  // which end stayed last time: -1 a, +1 b
  for (int i = 0; i < 100 && std::abs(b - a) > 1e-3 * std::abs(b - from); ++i) {
    double m = std::isfinite(gb) ? b - gb * (b - a) / (gb - ga) : (a + b) / 2;
    // Keep the step strictly inside, away from the ends by rounding.
    const double margin = 1e-3 * std::abs(b - a);
    m = std::clamp(m, std::min(a, b) + margin, std::max(a, b) - margin);
    const double g = profile(m) - threshold;
    if (g > 0) {
      b = m, gb = g;
      if (kept == -1) ga /= 2;
      kept = -1;
    } else {
      a = m, ga = g;
      if (kept == 1 && std::isfinite(gb)) gb /= 2;
      kept = 1;
    }
  }
  return std::isfinite(gb) && gb != ga ? b - gb * (b - a) / (gb - ga) : (a + b) / 2;
}

// Standard normal numbers by Box and Muller's transform of splitmix64's
// uniforms: the same stream from a seed on every platform, up to the last
// bits of log and cos.
class Normal {
 public:
  explicit Normal(uint64_t seed) : state_(seed) {}
  double operator()() {
    const double u1 = 1.0 - uniform(), u2 = uniform();  // u1 in (0, 1]
    return std::sqrt(-2 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2);
  }

 private:
  double uniform() {
    return static_cast<double>(mix64(state_ += 0x9e3779b97f4a7c15ull) >> 11) * 0x1p-53;
  }
  uint64_t state_;
};

// One simulated curve's fit, seen from the world it was simulated in.
struct Replicate {
  Vec statistics;         // each breakpoint's likelihood-ratio statistic at its true value
  Vec slopes, intercepts;  // each segment's, in x's and y's units
};

// The curve (p's u, v) fitted afresh (from its true breakpoints t and
// fit_curve's usual starts): the statistic (profile(t_k) - RSS)/(RSS/dof)
// of each breakpoint, and the fitted segments' lines.
Replicate replicate(const Points& p, const Vec& v, const Vec& t, int64_t dof) {
  const auto h = static_cast<int64_t>(t.size());
  const auto n = static_cast<int64_t>(p.u.size());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Replicate out{Vec(h, std::numeric_limits<double>::infinity()), Vec(h + 1, nan),
                Vec(h + 1, nan)};
  Points q;  // p's u as its x
  if (standardise(p.u.data(), v.data(), p.w.data(), n, h + 1, Collective{}, q) != FitStatus::kOk) {
    return out;
  }
  CurveOptions options;
  options.hinges = h;
  options.restarts = 2;
  options.starts = {t};
  const CurveFit fit = fit_points(q, options, Collective{});
  const Vec weighted = columns(q, q.w);
  HingeLeastSquares ls(q.u.data(), weighted.data(), n, {});
  ProjectedError f(ls, CurveOptions{}, {}, {});
  for (int64_t k = 0; k < h; ++k) {
    Profile at(f, fit.t, k, q.u_min, q.u_max, /*keep_sides=*/false);
    const double profile = at(q.to_u(t[k]));
    const double least = std::min(fit.error, profile);
    out.statistics[k] = (profile - least) / (least / static_cast<double>(dof));
  }
  // Segment j's line in q's units is c + α·u + Σ_{k<j} β_k·(u - t_k); x and y
  // are q's u and v through p's scaling twice.
  const double to_slope = q.y_scale * p.y_scale / (q.x_scale * p.x_scale);
  const double at_zero = (-p.x_shift / p.x_scale - q.x_shift) / q.x_scale;  // x = 0 in q's u
  double slope = fit.coef[1], intercept = fit.coef[0];  // of the line, in q's units
  for (int64_t j = 0; j <= h; ++j) {
    if (j > 0) slope += fit.coef[1 + j], intercept -= fit.coef[1 + j] * fit.t[j - 1];
    out.slopes[j] = slope * to_slope;
    out.intercepts[j] = p.y_shift + p.y_scale * (q.y_shift + q.y_scale * (intercept + slope * at_zero));
  }
  return out;
}

}  // namespace

Bootstrap bootstrap(const double* x, const double* y, const double* w, int64_t n, const Vec& t,
                    double limit, double level, int64_t dof, int64_t replicates, uint64_t seed) {
  const auto h = static_cast<int64_t>(t.size());
  Bootstrap out{Vec(h, limit), {}, {}};
  Points p;
  if (replicates < 1 || standardise(x, y, w, n, h + 1, Collective{}, p) != FitStatus::kOk) {
    return out;
  }
  Vec tu(h);
  for (int64_t k = 0; k < h; ++k) tu[k] = p.to_u(t[k]);
  const Vec weighted = columns(p, p.w);
  HingeLeastSquares ls(p.u.data(), weighted.data(), static_cast<int64_t>(p.u.size()), {});
  const HingeSolution fit = ls.solve(tu.data(), h);
  // The noise of point i: σ/√w_i, σ² = RSS/dof in v's units.
  const double sigma = std::sqrt(fit.mse * p.weight / static_cast<double>(dof));
  std::vector<Replicate> found(replicates);
  at::parallel_for(0, replicates, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      Normal normal(mix64(seed ^ mix64(static_cast<uint64_t>(r))));
      Vec v(p.u.size());
      for (size_t i = 0; i < v.size(); ++i) {
        v[i] = evaluate(p.u[i], tu, fit.coef) + sigma / std::sqrt(p.w[i]) * normal();
      }
      found[r] = replicate(p, v, tu, dof);
    }
  });
  // The level-quantile of each breakpoint's statistic, as the (B + 1)·level-th
  // smallest; never below the F test's (the limit it tends to).
  const auto rank = std::clamp<int64_t>(
      static_cast<int64_t>(std::ceil(level * static_cast<double>(replicates + 1))) - 1, 0,
      replicates - 1);
  for (int64_t k = 0; k < h; ++k) {
    Vec values(replicates);
    for (int64_t r = 0; r < replicates; ++r) values[r] = found[r].statistics[k];
    std::nth_element(values.begin(), values.begin() + rank, values.end());
    out.limits[k] = std::max(limit, 1 + values[rank] / static_cast<double>(dof));
  }
  for (Replicate& r : found) {
    out.slopes.push_back(std::move(r.slopes));
    out.intercepts.push_back(std::move(r.intercepts));
  }
  return out;
}

std::vector<BreakpointInterval> breakpoint_intervals(const double* x, const double* y,
                                                     const double* w, int64_t n, const Vec& t,
                                                     const Vec& limits, const Vec& steps) {
  const auto h = static_cast<int64_t>(t.size());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<BreakpointInterval> out(h, {nan, nan});
  Points p;
  if (standardise(x, y, w, n, h + 1, Collective{}, p) != FitStatus::kOk) return out;
  const Vec weighted = columns(p, p.w);
  Vec tu(h);
  for (int64_t k = 0; k < h; ++k) tu[k] = p.to_u(t[k]);
  // The first step: the guess, or a thousandth of the typical gap between
  // breakpoints.
  const double fallback = (p.u_max - p.u_min) / static_cast<double>(h + 1) * 1e-3;
  const auto first_step = [&](int64_t k) {
    const double guess = k < static_cast<int64_t>(steps.size()) ? steps[k] / p.x_scale : 0.0;
    return std::isfinite(guess) && guess > 0 ? guess : fallback;
  };
  // Each breakpoint on its own thread (within a batch's thread: in turn),
  // with its own solver: the solver's workspace is not shared.
  at::parallel_for(0, h, 1, [&](int64_t begin, int64_t end) {
    HingeLeastSquares ls(p.u.data(), weighted.data(), static_cast<int64_t>(p.u.size()), {});
    ProjectedError f(ls, CurveOptions{}, {}, {});
    const double base = f(tu.data(), h).mse;
    for (int64_t k = begin; k < end; ++k) {
      const double threshold = limits[k] * base;
      Profile low(f, tu, k, p.u_min, p.u_max), high(f, tu, k, p.u_min, p.u_max);
      out[k] = {p.to_x(crossing(low, tu[k], p.u_min, first_step(k), base, threshold)),
                p.to_x(crossing(high, tu[k], p.u_max, first_step(k), base, threshold))};
    }
  });
  return out;
}

}  // namespace relu_ext::curve
