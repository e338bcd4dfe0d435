// fit_curve's options and results, the types every step of the search
// shares: the options of one curve's fit, the collective its points may be
// split over, and what a fit returns.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace relu_ext::curve {

// All-reductions over the processes that each hold a share of one curve's
// points (torch.distributed); both empty for one process.
struct Collective {
  std::function<void(int64_t* values, int64_t count)> sum;  // in place
  std::function<void(double* values, int64_t count)> max;   // in place
  bool active() const { return static_cast<bool>(sum); }
};

enum class Loss { kSquared, kAbsolute };

// How the number of units is set: given (hinges + 1), or chosen from 1 to
// max_units by the Bayesian information criterion or by k-fold
// cross-validation (select.h).
enum class Select { kFixed, kBic, kCv };

// The fewest points a segment of a fit holds, where the units leave room. A
// line through one point is not fixed by the data: the least error can put
// one there through an outlier, losing a breakpoint the curve has, and its
// JᵀWJ is singular (curve_summary's errors infinite); docs/curves.md says
// how often that happened before this rule.
constexpr int64_t kFewestPoints = 2;

struct CurveOptions {
  int64_t hinges = 0;  // breakpoints: units - 1, for Select::kFixed
  Select select = Select::kFixed;
  int64_t max_units = 1;  // the most units tried, for kBic and kCv
  int64_t folds = 5;      // for kCv
  Loss loss = Loss::kSquared;
  uint64_t seed = 0;
  int64_t restarts = 4;    // starts tried, the best kept
  int64_t max_iter = 200;  // L-BFGS iterations per run
  int64_t revive = 3;      // rounds of moving dead breakpoints
  int64_t mae_rounds = 12;
  int monotone = 0;  // +1 non-decreasing, -1 non-increasing, 0 free
  int convex = 0;    // +1 convex, -1 concave, 0 free
  // Fixed breakpoints in x's units, strictly increasing (hinges of them), or
  // empty for free ones.
  std::vector<double> breakpoints;
  // Points the function passes through, in x's and y's units.
  std::vector<double> through_x, through_y;
  // More starting breakpoints, in x's units, tried after the usual ones
  // (select.h's: the fit of one unit fewer; a cross-validation fold's: the
  // fit of all the points). A start of fewer than `hinges` breakpoints gets
  // the rest where its fit's error is largest.
  std::vector<std::vector<double>> starts;
  bool usual_starts = true;  // false: only `starts`

  bool shaped() const { return monotone != 0 || convex != 0; }
  bool constrained() const { return shaped() || !through_x.empty(); }
};

enum class FitStatus : int64_t {
  kOk = 0,
  kTooFewPoints = 1,  // fewer points of positive weight than units
  kConstantX = 2,     // x takes one value
  kInfeasible = 3,    // no function of the family meets the constraints
};

struct CurveFit {
  FitStatus status = FitStatus::kOk;
  int64_t points = 0;  // of positive weight, over every process
  // x = x_shift + x_scale·u and y = y_shift + y_scale·v.
  double x_shift = 0, x_scale = 1, y_shift = 0, y_scale = 1;
  double u_min = 0, u_max = 0;  // the range of u over the points
  int64_t units = 0;         // of the fit: hinges + 1, or the number chosen
  std::vector<double> t;     // sorted breakpoints (units - 1), in u
  std::vector<double> coef;  // c, α, β_1..β_H, in v
  // The kept run's objective at every evaluation, in v's units (squared for
  // the squared loss).
  std::vector<double> trace;
  // The kept run's final error in v's units (the mean squared or absolute
  // error over the points, weighted).
  double error = 0;
  // Units chosen from the data: the criterion at K = 1, 2, ... max_units (in
  // y's units; NaN for K not tried, where the fit would have as many
  // parameters as points; +inf where no fit of K units meets the
  // constraints).
  std::vector<double> scores;
};

}  // namespace relu_ext::curve
