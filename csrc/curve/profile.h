// The profile likelihood of one breakpoint of a fitted curve: the least
// squared error with t_k held at τ and everything else at its best. Every
// coefficient is solved exactly by fit_curve's solver in microseconds; the
// breakpoints up to kWindow places away by L-BFGS; further ones are held.
// The interval search (intervals.h) walks it outwards from t_k; the
// bootstrap (bootstrap.h) reads it at the true breakpoint of each replicate.
#pragma once

#include <cstdint>
#include <vector>

#include "fit.h"

namespace relu_ext::curve {

// Breakpoints on each side of t_k re-optimised in its profile: moving t_k
// changes the function near it, and what compensates is near it too (the
// coefficients, global, are re-solved exactly at every τ). Further ones are
// held: each costs L-BFGS a variable at every evaluation (docs/curves.md
// has the cost of a summary either way).
inline constexpr int64_t kWindow = 2;

// Places on the grid a scan tries for each adjacent neighbour, and on the
// grid the interval search looks past a weak breakpoint's first crossing.
inline constexpr int64_t kScanPoints = 24;

// Breakpoint k's profile: the error at t_k = τ, its neighbours re-optimised
// from where the last evaluation left them (the search moves τ in small
// steps, so that is close to their optimum).
class Profile {
 public:
  // t: the fitted breakpoints, sorted (f's units). keep_sides: +inf where a
  // neighbour would cross τ (for an interval, whose breakpoint would become
  // another's); false: the error whatever the order. scan: also search each
  // adjacent neighbour's whole room (see scanned).
  Profile(ProjectedError& f, const std::vector<double>& t, int64_t k, double u_min, double u_max,
          bool keep_sides = true, bool scan = false);

  double operator()(double tau);

  // The breakpoints of the last evaluation: τ at k, the neighbours where
  // they settled, the others as fitted.
  const std::vector<double>& breakpoints() const { return t_; }

 private:
  double settle(double tau, std::vector<double>& at);
  std::vector<double> scanned(double tau);
  void place(const std::vector<double>& values);

  ProjectedError& f_;
  int64_t k_;
  double u_min_, u_max_;
  bool keep_sides_, scan_;
  std::vector<double> t_;      // τ at k, the free ones, the others as fitted
  std::vector<int64_t> free_;  // the neighbours re-optimised...
  std::vector<double> at_;     // ...and where the last evaluation left them
};

}  // namespace relu_ext::curve
