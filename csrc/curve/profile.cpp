#include "profile.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "lbfgs.h"

namespace relu_ext::curve {

using Vec = std::vector<double>;

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
}  // namespace

Profile::Profile(ProjectedError& f, const Vec& t, int64_t k, double u_min, double u_max,
                 bool keep_sides, bool scan)
    : f_(f), k_(k), u_min_(u_min), u_max_(u_max), keep_sides_(keep_sides), scan_(scan), t_(t) {
  const auto h = static_cast<int64_t>(t.size());
  for (int64_t j = std::max<int64_t>(0, k - kWindow); j <= std::min(h - 1, k + kWindow); ++j) {
    if (j != k) free_.push_back(j), at_.push_back(t[j]);
  }
}

double Profile::operator()(double tau) {
  const auto h = static_cast<int64_t>(t_.size());
  t_[k_] = tau;
  if (!free_.empty()) {
    Vec at = at_;
    double best = settle(tau, at);
    if (scan_) {
      Vec from = scanned(tau);
      const double other = settle(tau, from);
      if (other < best) best = other, at = std::move(from);
    }
    if (!std::isfinite(best)) return kInf;
    at_ = at;
  }
  place(at_);
  return f_(t_.data(), h).mse;
}

// The free neighbours re-optimised by L-BFGS from `at` (in place), and
// the error there: +inf where one would leave its side of τ.
double Profile::settle(double tau, Vec& at) {
  const auto h = static_cast<int64_t>(t_.size());
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
  place(at);
  return f_(t_.data(), h).mse;
}

// A start for the neighbours from a grid over each adjacent one's room
// (between τ and the next breakpoint out, or the data's end), the other
// neighbours where the last evaluation left them. Where a kink is weak
// for the noise, the error is far from convex in its neighbour's place:
// moving τ can make another place of the neighbour best, which L-BFGS
// from the last one does not reach. The profile is then too high, and
// the interval too short (docs/curves.md: the coverage without the grid).
Vec Profile::scanned(double tau) {
  const auto h = static_cast<int64_t>(t_.size());
  Vec at = at_;
  place(at);
  for (size_t i = 0; i < free_.size(); ++i) {
    const int64_t j = free_[i];
    if (j != k_ - 1 && j != k_ + 1) continue;
    const double low = j < k_ ? (j > 0 ? t_[j - 1] : u_min_) : tau;
    const double high = j < k_ ? tau : (j < h - 1 ? t_[j + 1] : u_max_);
    if (!(low < high)) continue;
    double best = kInf, where = at[i];
    for (int64_t g = 0; g < kScanPoints; ++g) {
      t_[j] = low + (high - low) * (static_cast<double>(g) + 0.5) / kScanPoints;
      const double e = f_(t_.data(), h).mse;
      if (e < best) best = e, where = t_[j];
    }
    at[i] = where;
    t_[j] = where;
  }
  return at;
}

void Profile::place(const Vec& values) {
  for (size_t i = 0; i < free_.size(); ++i) t_[free_[i]] = values[i];
}

}  // namespace relu_ext::curve
