#include "profile.h"

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

// Breakpoint k's profile: the error at t_k = τ, the others re-optimised from
// where the last evaluation left them (the search moves τ in small steps, so
// that is close to their optimum).
class Profile {
 public:
  Profile(ProjectedError& f, const Vec& t, int64_t k, double u_min, double u_max)
      : f_(f), k_(k), u_min_(u_min), u_max_(u_max), t_(t), others_(t) {
    others_.erase(others_.begin() + k);
  }

  double operator()(double tau) {
    const auto h = static_cast<int64_t>(t_.size());
    if (h > 1) {
      Vec others = others_;
      double scale = 0;  // relative tolerances, as minimize_breakpoints
      const Objective error = [&](const Vec& at, Vec& grad) {
        place(at, tau);
        const auto& s = f_(t_.data(), h);
        if (scale == 0) scale = std::isfinite(s.mse) ? std::max(s.mse, 1e-300) : 1.0;
        for (int64_t j = 0, i = 0; j < h; ++j) {
          if (j != k_) grad[i++] = s.grad[j] / scale;
        }
        return s.mse / scale;
      };
      LbfgsOptions options;
      minimize_lbfgs(error, others, options);
      // Each other breakpoint must stay on its side of τ, inside the data.
      for (int64_t i = 0; i < h - 1; ++i) {
        const bool left = i < k_;
        if ((left && !(u_min_ < others[i] && others[i] < tau)) ||
            (!left && !(tau < others[i] && others[i] < u_max_))) {
          return kInf;
        }
      }
      others_ = others;
    }
    place(others_, tau);
    return f_(t_.data(), h).mse;
  }

 private:
  void place(const Vec& others, double tau) {
    for (size_t j = 0, i = 0; j < t_.size(); ++j) {
      t_[j] = static_cast<int64_t>(j) == k_ ? tau : others[i++];
    }
  }

  ProjectedError& f_;
  int64_t k_;
  double u_min_, u_max_;
  Vec t_, others_;
};

// Where the profile crosses `threshold` walking from t_k (inside) towards
// `edge`: steps growing fourfold until outside, then bisection (the profile
// is at best piecewise smooth: it has a kink at every data point) until the
// end is known to a millionth of its distance from t_k.
double crossing(Profile& profile, double from, double edge, double first_step, double threshold) {
  double inside = from, step = first_step;
  double outside = edge;
  const double direction = edge > from ? 1.0 : -1.0;
  while (true) {
    const double at = from + direction * step;
    if ((at - edge) * direction >= 0) {
      if (profile(edge) <= threshold) return edge;
      break;
    }
    if (profile(at) > threshold) {
      outside = at;
      break;
    }
    inside = at;
    step *= 4;
  }
  for (int i = 0; i < 60 && std::abs(outside - inside) > 1e-6 * std::abs(outside - from); ++i) {
    const double mid = (inside + outside) / 2;
    (profile(mid) <= threshold ? inside : outside) = mid;
  }
  return (inside + outside) / 2;
}

}  // namespace

std::vector<BreakpointInterval> breakpoint_intervals(const double* x, const double* y,
                                                     const double* w, int64_t n, const Vec& t,
                                                     double limit) {
  const auto h = static_cast<int64_t>(t.size());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<BreakpointInterval> out(h, {nan, nan});
  Points p;
  if (standardise(x, y, w, n, h + 1, Collective{}, p) != FitStatus::kOk) return out;
  const Vec weighted = columns(p, p.w);
  HingeLeastSquares ls(p.u.data(), weighted.data(), static_cast<int64_t>(p.u.size()), {});
  ProjectedError f(ls, CurveOptions{}, {}, {});
  Vec tu(h);
  for (int64_t k = 0; k < h; ++k) tu[k] = p.to_u(t[k]);
  const double threshold = limit * f(tu.data(), h).mse;
  // The first step: a thousandth of the typical gap between breakpoints.
  const double first_step = (p.u_max - p.u_min) / static_cast<double>(h + 1) * 1e-3;
  for (int64_t k = 0; k < h; ++k) {
    Profile low(f, tu, k, p.u_min, p.u_max), high(f, tu, k, p.u_min, p.u_max);
    out[k] = {p.to_x(crossing(low, tu[k], p.u_min, first_step, threshold)),
              p.to_x(crossing(high, tu[k], p.u_max, first_step, threshold))};
  }
  return out;
}

}  // namespace relu_ext::curve
