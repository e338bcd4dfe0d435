#include "profile.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>

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
  Profile(ProjectedError& f, const Vec& t, int64_t k, double u_min, double u_max)
      : f_(f), k_(k), u_min_(u_min), u_max_(u_max), t_(t) {
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
      for (size_t i = 0; i < free_.size(); ++i) {
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

}  // namespace

std::vector<BreakpointInterval> breakpoint_intervals(const double* x, const double* y,
                                                     const double* w, int64_t n, const Vec& t,
                                                     double limit, const Vec& steps) {
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
    const double threshold = limit * base;
    for (int64_t k = begin; k < end; ++k) {
      Profile low(f, tu, k, p.u_min, p.u_max), high(f, tu, k, p.u_min, p.u_max);
      out[k] = {p.to_x(crossing(low, tu[k], p.u_min, first_step(k), base, threshold)),
                p.to_x(crossing(high, tu[k], p.u_max, first_step(k), base, threshold))};
    }
  });
  return out;
}

}  // namespace relu_ext::curve
