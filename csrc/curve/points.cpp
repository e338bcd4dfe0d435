#include "points.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace relu_ext::curve {
namespace {

// Quantiles come from a histogram of this many bins, not from sorting: its
// counts add up exactly across processes, so a split fit starts where a
// one-process fit does.
constexpr int64_t kQuantileBins = 8192;
// A point's weight in the histogram: its share of the total in units of
// 2^-52, an integer, so that the counts add up exactly in any order.
constexpr int kWeightBits = 52;

// and of 1e-300-sized ones normal.
int scale_exponent(const Vec& values, const Collective& collective) {
  double largest = 0;
  for (double value : values) largest = std::max(largest, std::abs(value));
  largest = all_max(largest, collective);
  int exponent = 0;
  if (largest > 0) std::frexp(largest, &exponent);
  return exponent;
}

// Mean and standard deviation (weighted) of the values over every process.
std::pair<double, double> moments(const Vec& values, const Vec& w, double weight,
                                  const Collective& collective) {
  std::vector<ExactSum> sum(1);
  for (size_t i = 0; i < values.size(); ++i) sum[0].add(w[i] * values[i]);
  const double mean = exact_totals(sum, collective)[0] / weight;
  std::vector<ExactSum> squares(1);
  for (size_t i = 0; i < values.size(); ++i) {
    const double d = values[i] - mean;
    squares[0].add(w[i] * d * d);
  }
  return {mean, std::sqrt(exact_totals(squares, collective)[0] / weight)};
}
}  // namespace

// The collective's int64 sum as hinge_lstsq.h's Reduce of exact sums' digits.
Reduce reduce_of(const Collective& collective) {
  if (!collective.active()) return {};
  return [&collective](int64_t* digits, int64_t count) {
    collective.sum(digits, count * ExactSum::kDigits);
  };
}

// The exact sums of several columns over every process's points, rounded.
Vec exact_totals(std::vector<ExactSum>& sums, const Collective& collective) {
  Vec out(sums.size());
  reduce_and_round(sums, reduce_of(collective), out.data());
  return out;
}

double all_max(double value, const Collective& collective) {
  if (collective.active()) collective.max(&value, 1);
  return value;
}

// Inverts a piecewise-linear cumulative function given at edges.
Vec interpolate(const Vec& targets, const Vec& cumulative, const Vec& edges) {
  Vec out(targets.size());
  const auto last = static_cast<int64_t>(edges.size()) - 1;
  for (size_t j = 0; j < targets.size(); ++j) {
    int64_t i = std::lower_bound(cumulative.begin(), cumulative.end(), targets[j]) -
                cumulative.begin();
    i = std::clamp<int64_t>(i, 1, last);
    const double lo = cumulative[i - 1], hi = cumulative[i];
    const double frac = std::clamp((targets[j] - lo) / std::max(hi - lo, 1e-300), 0.0, 1.0);
    out[j] = edges[i - 1] + frac * (edges[i] - edges[i - 1]);
  }
  return out;
}

Vec even_grid(int64_t count) {  // i / (count + 1), i = 1..count
  Vec p(count);
  for (int64_t i = 0; i < count; ++i) p[i] = static_cast<double>(i + 1) / (count + 1);
  return p;
}

// One curve's points of positive weight, standardised and sorted, with the

FitStatus standardise(const double* x, const double* y, const double* w, int64_t n,
                      int64_t units, const Collective& collective, Points& p) {
  Vec xs, ys, ws;
  for (int64_t i = 0; i < n; ++i) {
    const double wi = w ? w[i] : 1.0;
    if (!(wi > 0)) continue;
    xs.push_back(x[i]);
    ys.push_back(y[i]);
    ws.push_back(wi);
  }
  std::vector<ExactSum> totals(1);
  for (double wi : ws) totals[0].add(wi);
  p.weight = exact_totals(totals, collective)[0];
  int64_t count = static_cast<int64_t>(xs.size());
  if (collective.active()) collective.sum(&count, 1);
  p.count = count;
  if (count < units) return FitStatus::kTooFewPoints;

  p.x_exponent = scale_exponent(xs, collective);
  p.y_exponent = scale_exponent(ys, collective);
  for (double& xi : xs) xi = std::ldexp(xi, -p.x_exponent);
  for (double& yi : ys) yi = std::ldexp(yi, -p.y_exponent);
  std::tie(p.x_mean_, p.x_std_) = moments(xs, ws, p.weight, collective);
  std::tie(p.y_mean_, p.y_std_) = moments(ys, ws, p.weight, collective);
  if (!(p.x_std_ > 0)) return FitStatus::kConstantX;
  if (!(p.y_std_ > 0)) p.y_std_ = 1;  // a constant: nothing to scale
  p.x_shift = std::ldexp(p.x_mean_, p.x_exponent);
  p.x_scale = std::ldexp(p.x_std_, p.x_exponent);
  p.y_shift = std::ldexp(p.y_mean_, p.y_exponent);
  p.y_scale = std::ldexp(p.y_std_, p.y_exponent);

  std::vector<int64_t> order(xs.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return xs[a] < xs[b]; });
  p.u.resize(xs.size());
  p.v.resize(xs.size());
  p.w.resize(xs.size());
  for (size_t i = 0; i < order.size(); ++i) {
    p.u[i] = (xs[order[i]] - p.x_mean_) / p.x_std_;
    p.v[i] = (ys[order[i]] - p.y_mean_) / p.y_std_;
    p.w[i] = ws[order[i]];
  }
  const double inf = std::numeric_limits<double>::infinity();
  p.u_max = all_max(p.u.empty() ? -inf : p.u.back(), collective);
  p.u_min = -all_max(p.u.empty() ? -inf : -p.u.front(), collective);

  std::vector<int64_t> counts(kQuantileBins, 0);
  const double width = p.u_max - p.u_min;
  for (size_t i = 0; i < p.u.size(); ++i) {
    const auto bin = static_cast<int64_t>((p.u[i] - p.u_min) / width * kQuantileBins);
    counts[std::clamp<int64_t>(bin, 0, kQuantileBins - 1)] +=
        std::llround(std::ldexp(p.w[i] / p.weight, kWeightBits));
  }
  if (collective.active()) collective.sum(counts.data(), kQuantileBins);
  p.cumulative.assign(kQuantileBins + 1, 0.0);
  int64_t running = 0;
  for (int64_t b = 0; b < kQuantileBins; ++b) {
    running += counts[b];
    p.cumulative[b + 1] = static_cast<double>(running);
  }
  for (double& c : p.cumulative) c /= static_cast<double>(running);
  p.edges.resize(kQuantileBins + 1);
  for (int64_t b = 0; b <= kQuantileBins; ++b) {
    p.edges[b] = p.u_min + width * static_cast<double>(b) / kQuantileBins;
  }
  return FitStatus::kOk;
}

void restandardise(const double* y, const Collective& collective, Points& p) {
  // standardise's steps on y: the exact sums are the same in any order.
  Vec ys(y, y + p.u.size());
  p.y_exponent = scale_exponent(ys, collective);
  for (double& yi : ys) yi = std::ldexp(yi, -p.y_exponent);
  std::tie(p.y_mean_, p.y_std_) = moments(ys, p.w, p.weight, collective);
  if (!(p.y_std_ > 0)) p.y_std_ = 1;  // a constant: nothing to scale
  p.y_shift = std::ldexp(p.y_mean_, p.y_exponent);
  p.y_scale = std::ldexp(p.y_std_, p.y_exponent);
  p.v.resize(ys.size());
  for (size_t i = 0; i < ys.size(); ++i) p.v[i] = (ys[i] - p.y_mean_) / p.y_std_;
}

// The solver's columns for weights w: w, w·u, w·u², w·v, w·u·v, w·v².
Vec columns(const Points& p, const Vec& w) {
  const auto n = static_cast<int64_t>(p.u.size());
  Vec c(kColumns * n);
  for (int64_t i = 0; i < n; ++i) {
    const double wu = w[i] * p.u[i], wv = w[i] * p.v[i];
    c[0 * n + i] = w[i];
    c[1 * n + i] = wu;
    c[2 * n + i] = wu * p.u[i];
    c[3 * n + i] = wv;
    c[4 * n + i] = wu * p.v[i];
    c[5 * n + i] = wv * p.v[i];
  }
  return c;
}

double evaluate(double u, const Vec& t, const Vec& coef) {
  double f = coef[0] + coef[1] * u;
  for (size_t k = 0; k < t.size(); ++k) f += coef[2 + k] * std::max(u - t[k], 0.0);
  return f;
}
}  // namespace relu_ext::curve
