// L-BFGS with a strong Wolfe line search (Nocedal & Wright, Numerical
// Optimization, 2nd ed., algorithms 7.4, 3.5 and 3.6), for fit_curve's
// breakpoints: a few to a few hundred variables and an objective that costs
// microseconds, where torch.optim.LBFGS's per-iteration tensor operations
// would cost far more than the objective itself.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace relu_ext::curve {

struct LbfgsOptions {
  int64_t max_iter = 200;
  int64_t max_eval = 250;
  int64_t history = 20;
  // Stop when the gradient's largest entry is at most this...
  double tolerance_grad = 1e-9;
  // ...or when a step moves no variable, or changes the value, by more.
  double tolerance_change = 1e-12;
};

// The value at x, with its gradient written to grad (of x's size).
using Objective = std::function<double(const std::vector<double>& x, std::vector<double>& grad)>;

// Minimises f from x, in place. Deterministic: the same x and f give the
// same iterates bit for bit.
void minimize_lbfgs(const Objective& f, std::vector<double>& x, const LbfgsOptions& options);

}  // namespace relu_ext::curve
