#include "lbfgs.h"

#include <algorithm>
#include <cmath>
#include <deque>

#include "linalg.h"

namespace relu_ext::curve {
namespace {

using Vec = std::vector<double>;

double dot(const Vec& a, const Vec& b) { return curve::dot(a.data(), b.data(), static_cast<int64_t>(a.size())); }

double max_abs(const Vec& a) {
  double m = 0;
  for (double v : a) m = std::max(m, std::abs(v));
  return m;
}

// Sufficient decrease and curvature constants of the strong Wolfe conditions.
constexpr double kC1 = 1e-4;
constexpr double kC2 = 0.9;
constexpr int kMaxLineSearchEvals = 25;
// The line search stops refining once its bracket, times the direction's
// largest entry, is this narrow: no variable would move by more.
constexpr double kBracketTolerance = 1e-9;

// A trial step along the search direction: its length, value, gradient, and
// the gradient's component along the direction.
struct Trial {
  double step = 0, value = 0, slope = 0;
  Vec grad;
};

// The minimiser of the cubic through (s1, f1, d1) and (s2, f2, d2) (values
// and slopes), clamped to [lo, hi]; the midpoint when the cubic has none.
double cubic_minimum(const Trial& a, const Trial& b, double lo, double hi) {
  const double d1 = a.slope + b.slope - 3 * (a.value - b.value) / (a.step - b.step);
  const double square = d1 * d1 - a.slope * b.slope;
  if (!(square >= 0)) return (lo + hi) / 2;
  const double d2 = std::sqrt(square);
  const double at = a.step <= b.step
                        ? b.step - (b.step - a.step) * (b.slope + d2 - d1) / (b.slope - a.slope + 2 * d2)
                        : a.step - (a.step - b.step) * (a.slope + d2 - d1) / (a.slope - b.slope + 2 * d2);
  return std::isfinite(at) ? std::clamp(at, lo, hi) : (lo + hi) / 2;
}

class LineSearch {
 public:
  LineSearch(const Objective& f, const Vec& x, const Vec& direction, const Trial& start)
      : f_(f), x_(x), direction_(direction), start_(start) {}

  // A step satisfying the strong Wolfe conditions, or the best one found
  // within kMaxLineSearchEvals evaluations.
  Trial search(double step) {
    Trial previous = start_, current = evaluate(step);
    Trial low, high;
    bool bracketed = false;
    while (true) {
      // Negated tests, so that a NaN value counts as a step too far.
      if (!sufficient_decrease(current) ||
          (evaluations_ > 1 && !(current.value < previous.value))) {
        low = previous, high = current, bracketed = true;
        break;
      }
      if (std::abs(current.slope) <= -kC2 * start_.slope) return current;
      if (current.slope >= 0) {
        low = current, high = previous, bracketed = true;
        break;
      }
      if (evaluations_ >= kMaxLineSearchEvals) return current;
      // Still descending: extrapolate, at least 1% further, at most 10×.
      const double lo = current.step + 0.01 * (current.step - previous.step);
      const double next = cubic_minimum(previous, current, lo, 10 * current.step);
      previous = std::move(current);
      current = evaluate(next);
    }
    return bracketed ? zoom(std::move(low), std::move(high)) : current;
  }

  int64_t evaluations() const { return evaluations_; }

 private:
  bool sufficient_decrease(const Trial& t) const {
    return t.value <= start_.value + kC1 * t.step * start_.slope;
  }

  Trial evaluate(double step) {
    Trial t;
    t.step = step;
    Vec x(x_.size());
    for (size_t i = 0; i < x.size(); ++i) x[i] = x_[i] + step * direction_[i];
    t.grad.resize(x.size());
    t.value = f_(x, t.grad);
    t.slope = dot(t.grad, direction_);
    ++evaluations_;
    return t;
  }

  // Algorithm 3.6: `low` satisfies sufficient decrease and has the lower
  // value; the minimiser lies between low and high.
  Trial zoom(Trial low, Trial high) {
    const double scale = max_abs(direction_);
    while (evaluations_ < kMaxLineSearchEvals &&
           std::abs(high.step - low.step) * scale >= kBracketTolerance) {
      const double lo = std::min(low.step, high.step), hi = std::max(low.step, high.step);
      double step = cubic_minimum(low, high, lo, hi);
      // Never within a tenth of the bracket's ends: the bracket must shrink.
      const double margin = 0.1 * (hi - lo);
      step = std::clamp(step, lo + margin, hi - margin);
      Trial trial = evaluate(step);
      if (!sufficient_decrease(trial) || !(trial.value < low.value)) {
        high = std::move(trial);
      } else {
        if (std::abs(trial.slope) <= -kC2 * start_.slope) return trial;
        if (trial.slope * (high.step - low.step) >= 0) high = std::move(low);
        low = std::move(trial);
      }
    }
    return low;
  }

  const Objective& f_;
  const Vec& x_;
  const Vec& direction_;
  const Trial& start_;
  int64_t evaluations_ = 0;
};

}  // namespace

void minimize_lbfgs(const Objective& f, Vec& x, const LbfgsOptions& options) {
  const size_t n = x.size();
  Trial here;
  here.grad.resize(n);
  here.value = f(x, here.grad);
  int64_t evaluations = 1;
  const auto finite = [](double v) { return std::isfinite(v); };
  if (!std::isfinite(here.value) || !std::all_of(here.grad.begin(), here.grad.end(), finite)) {
    return;  // nowhere to go from; the line search never steps onto such a point
  }
  if (max_abs(here.grad) <= options.tolerance_grad) return;

  // The last `history` steps s and gradient changes y, with 1/(y·s).
  std::deque<Vec> s_history, y_history;
  std::deque<double> rho_history;
  Vec direction(n), alpha(options.history);
  for (int64_t iteration = 1;; ++iteration) {
    // Algorithm 7.4, the two-loop recursion: direction = -H·grad.
    for (size_t i = 0; i < n; ++i) direction[i] = -here.grad[i];
    const size_t m = s_history.size();
    for (size_t i = m; i-- > 0;) {
      alpha[i] = rho_history[i] * dot(s_history[i], direction);
      for (size_t j = 0; j < n; ++j) direction[j] -= alpha[i] * y_history[i][j];
    }
    if (m > 0) {  // the initial Hessian is s·y / y·y of the newest pair
      const double gamma = 1 / (rho_history[m - 1] * dot(y_history[m - 1], y_history[m - 1]));
      for (double& d : direction) d *= gamma;
    }
    for (size_t i = 0; i < m; ++i) {
      const double beta = rho_history[i] * dot(y_history[i], direction);
      for (size_t j = 0; j < n; ++j) direction[j] += (alpha[i] - beta) * s_history[i][j];
    }

    here.slope = dot(here.grad, direction);
    if (here.slope > -options.tolerance_change) break;  // not a descent direction
    // The first step is scaled to move by at most 1 in the 1-norm of the gradient.
    double grad_l1 = 0;
    for (double g : here.grad) grad_l1 += std::abs(g);
    const double step = iteration == 1 ? std::min(1.0, 1 / grad_l1) : 1.0;

    LineSearch search(f, x, direction, here);
    Trial next = search.search(step);
    evaluations += search.evaluations();

    Vec s(n), y(n);
    for (size_t i = 0; i < n; ++i) {
      s[i] = next.step * direction[i];
      y[i] = next.grad[i] - here.grad[i];
      x[i] += s[i];
    }
    const double change = std::abs(next.value - here.value);
    const double ys = dot(y, s);
    if (options.history > 0 && ys > 1e-10) {  // only pairs that keep the inverse Hessian positive
      if (static_cast<int64_t>(s_history.size()) == options.history) {
        s_history.pop_front();
        y_history.pop_front();
        rho_history.pop_front();
      }
      s_history.push_back(std::move(s));
      y_history.push_back(std::move(y));
      rho_history.push_back(1 / ys);
    }
    const double moved = next.step * max_abs(direction);
    here.value = next.value;
    here.grad = std::move(next.grad);

    if (iteration >= options.max_iter || evaluations >= options.max_eval) break;
    if (max_abs(here.grad) <= options.tolerance_grad) break;
    if (moved <= options.tolerance_change || change < options.tolerance_change) break;
  }
}

}  // namespace relu_ext::curve
