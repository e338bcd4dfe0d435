#include "criteria.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "exact_sum.h"

namespace relu_ext::curve {

int64_t free_parameters(int64_t units, int64_t through, bool breakpoints_estimated) {
  return (breakpoints_estimated ? 2 * units : units + 1) - through;
}

double deviance(double n, double error, double weight, double y_scale, double log_weights,
                Loss loss) {
  if (loss == Loss::kSquared) {
    // Gaussian with variances σ²/w_i, σ² at its maximum Σ w·r²/n.
    const double rss = std::max(error, kErrorFloor) * weight * y_scale * y_scale;
    return n * (std::log(2 * std::numbers::pi) + std::log(rss / n) + 1) - log_weights;
  }
  // Laplace with scales b/w_i, b at its maximum Σ w·|r|/n.
  const double b = std::max(error, std::sqrt(kErrorFloor)) * weight * y_scale / n;
  return 2 * n * (std::log(2 * b) + 1) - 2 * log_weights;
}

double log_weights(const Points& p, const Collective& collective) {
  std::vector<ExactSum> sum(1);
  for (double w : p.w) sum[0].add(std::log(w));
  return exact_totals(sum, collective)[0];
}

double bic(double deviance, int64_t parameters, double n) {
  return deviance + static_cast<double>(parameters) * std::log(n);
}

}  // namespace relu_ext::curve
