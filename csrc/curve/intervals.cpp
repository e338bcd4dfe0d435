#include "intervals.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <tuple>

#include "bootstrap.h"
#include "fit.h"
#include "lines.h"
#include "points.h"
#include "profile.h"

namespace relu_ext::curve {
namespace {

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

// Where a weak breakpoint's profile, past its first crossing `from`, dips
// under `threshold` again before `edge`: the outermost such place (found on
// a grid of kScanPoints, then bisected to 1e-3 of its distance from `from`),
// or `from` where it does not. The bootstrap calibrates the set of τ whose
// statistic is under its quantile; where the profile has several minima
// (a weak kink in noise) that set is not one interval around t_k, and the
// first crossing alone leaves out the true breakpoint as often as it falls
// in another of the set's pieces.
double farthest(Profile& profile, double from, double edge, double threshold) {
  double inside = from, outside = edge;
  bool found = false;
  for (int64_t g = 1; g <= kScanPoints; ++g) {
    const double at = from + (edge - from) * static_cast<double>(g) / kScanPoints;
    if (profile(at) <= threshold) inside = at, found = true;
  }
  if (!found) return from;
  if (inside == edge) return edge;
  outside = inside + (edge - from) / kScanPoints;
  while (std::abs(outside - inside) > 1e-3 * std::abs(outside - from)) {
    const double m = (inside + outside) / 2;
    (profile(m) <= threshold ? inside : outside) = m;
  }
  return inside;
}

}  // namespace

ProfileIntervals profile_intervals(const double* x, const double* y, const double* w, int64_t n,
                                   const Vec& t, double limit, const Vec& steps,
                                   const BootstrapOptions& options, const Vec& through_x,
                                   const Vec& through_y) {
  const auto h = static_cast<int64_t>(t.size());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  ProfileIntervals out{std::vector<BreakpointInterval>(h, {nan, nan}), Vec(h, limit)};
  Points p;
  if (standardise(x, y, w, n, h + 1, Collective{}, p) != FitStatus::kOk) return out;
  Vec tu(h);
  for (int64_t k = 0; k < h; ++k) tu[k] = p.to_u(t[k]);
  Vec through_u, through_v;
  for (size_t c = 0; c < through_x.size(); ++c) {
    through_u.push_back(p.to_u(through_x[c]));
    through_v.push_back(p.to_v(through_y[c]));
  }
  const Vec weighted = columns(p, p.w);
  bootstrap(p, weighted, tu, options, out.limits, out.replicated);
  // The first step: the guess, or a thousandth of the typical gap between
  // breakpoints.
  const double fallback = (p.u_max - p.u_min) / static_cast<double>(h + 1) * 1e-3;
  const auto first_step = [&](int64_t k) {
    const double guess = k < static_cast<int64_t>(steps.size()) ? steps[k] / p.x_scale : 0.0;
    return std::isfinite(guess) && guess > 0 ? guess : fallback;
  };
  std::vector<Vec> ends(2 * h);  // the lines at each scanned interval's ends
  // Each thread (within a batch's thread: this one alone) takes the next
  // breakpoint left, as the bootstrap's replicates, with its own solver:
  // the solver's workspace is not shared. The scanned (bootstrapped) ones
  // cost several times the others and sit together: fixed halves would
  // leave one thread with all of them.
  std::atomic<int64_t> next{0};
  at::parallel_for(0, std::min<int64_t>(h, at::get_num_threads()), 1, [&](int64_t, int64_t) {
    HingeLeastSquares ls(p.u.data(), weighted.data(), static_cast<int64_t>(p.u.size()), {});
    ProjectedError f(ls, CurveOptions{}, through_u, through_v);
    const double base = f(tu.data(), h).mse;
    for (int64_t k; (k = next++) < h;) {
      const double threshold = out.limits[k] * base;
      // The breakpoints bootstrapped are the weak ones, where the scan matters.
      const bool scan = k < static_cast<int64_t>(options.calibrate.size()) &&
                        options.calibrate[k] && options.replicates > 0;
      Profile low(f, tu, k, p.u_min, p.u_max, true, scan),
          high(f, tu, k, p.u_min, p.u_max, true, scan);
      double a = crossing(low, tu[k], p.u_min, first_step(k), base, threshold);
      double b = crossing(high, tu[k], p.u_max, first_step(k), base, threshold);
      out.intervals[k] = {p.to_x(a), p.to_x(b)};
      if (!scan) continue;
      a = farthest(low, a, p.u_min, threshold), b = farthest(high, b, p.u_max, threshold);
      out.intervals[k] = {p.to_x(a), p.to_x(b)};
      // The curve at each end: its lines, in x's and y's units. Near the
      // data's ends, the curves fit_curve fits: where the end segment
      // holds kFewestPoints points (with fewer its line is fixed by nothing).
      const auto n_points = static_cast<int64_t>(p.u.size());
      if (k == 0 && n_points > kFewestPoints) a = std::max(a, std::min(tu[k], p.u[kFewestPoints - 1]));
      if (k == h - 1 && n_points > kFewestPoints) {
        b = std::min(b, std::max(tu[k], p.u[n_points - 1 - kFewestPoints]));
      }
      for (auto [profile, tau, side] : {std::tuple{&low, a, 0}, {&high, b, 1}}) {
        if (!std::isfinite((*profile)(tau))) continue;
        const Vec& at = profile->breakpoints();
        const Lines lines = segment_lines(at, f(at.data(), h).coef, p.to_u(0.0));
        Vec& slopes = ends[2 * k + side];
        slopes.resize(2 * (h + 1));
        for (int64_t j = 0; j <= h; ++j) {
          slopes[j] = lines.slopes[j] * p.y_scale / p.x_scale;
          slopes[h + 1 + j] = p.y_shift + p.y_scale * lines.values[j];
        }
      }
    }
  });
  out.reach.assign(4, Vec(h + 1, nan));
  for (const Vec& end : ends) {
    for (int64_t j = 0; j < static_cast<int64_t>(end.size()); ++j) {
      const int64_t line = j <= h ? 0 : 2, segment = j <= h ? j : j - h - 1;
      out.reach[line][segment] = std::fmin(out.reach[line][segment], end[j]);
      out.reach[line + 1][segment] = std::fmax(out.reach[line + 1][segment], end[j]);
    }
  }
  return out;
}

}  // namespace relu_ext::curve
