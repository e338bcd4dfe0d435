#include "profile.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <tuple>
#include <limits>
#include <memory>
#include <numbers>

#include "cholesky.h"
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

// Breakpoints on each side of a bootstrapped one re-fitted with it in its
// replicates (profile.h). Its statistic is the rise of the whole curve's
// error at its true value over the replicate's least; the points beyond its
// neighbours' neighbours add the same to both, but for the small shifts of
// the breakpoints there, which the replicates leave out. Measured on a
// curve of 7 breakpoints and 800 points, its third kink weak
// (tests/test_curve_summary.py, 12 × 400 replicates): that breakpoint's 95%
// quantile of the statistic is 4.67 ± 0.09 re-fitting one neighbour a side,
// 4.55 ± 0.13 re-fitting the whole curve.
// One keeps a K = 20 curve's block at a fifth of its points.
constexpr int64_t kBlockWindow = 1;

// Places on the grid Profile's scan tries for each adjacent neighbour.
constexpr int64_t kScanPoints = 24;

// Breakpoint k's profile: the error at t_k = τ, its neighbours re-optimised
// from where the last evaluation left them (the search moves τ in small
// steps, so that is close to their optimum).
class Profile {
 public:
  // keep_sides: +inf where a neighbour would cross τ (for an interval, whose
  // breakpoint would become another's); false: the error whatever the order.
  // scan: also search each adjacent neighbour's whole room (see scanned).
  Profile(ProjectedError& f, const Vec& t, int64_t k, double u_min, double u_max,
          bool keep_sides = true, bool scan = false)
      : f_(f), k_(k), u_min_(u_min), u_max_(u_max), keep_sides_(keep_sides), scan_(scan), t_(t) {
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

  // The breakpoints of the last evaluation: τ at k, the neighbours where
  // they settled, the others as fitted.
  const Vec& breakpoints() const { return t_; }

 private:
  // The free neighbours re-optimised by L-BFGS from `at` (in place), and
  // the error there: +inf where one would leave its side of τ.
  double settle(double tau, Vec& at) {
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
  // the interval too short (three-segment truths, N = 1000, σ = 2: 90% of
  // the nominal 95% without the grid).
  Vec scanned(double tau) {
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

  void place(const Vec& values) {
    for (size_t i = 0; i < free_.size(); ++i) t_[free_[i]] = values[i];
  }

  ProjectedError& f_;
  int64_t k_;
  double u_min_, u_max_;
  bool keep_sides_, scan_;
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

// Standard normal numbers by Box and Muller's transform of splitmix64's
// uniforms: the same stream from a seed on every platform, up to the last
// bits of log and cos.
class Normal {
 public:
  explicit Normal(uint64_t seed) : state_(seed) {}
  double operator()() {
    const double u1 = 1.0 - uniform(), u2 = uniform();  // u1 in (0, 1]
    return std::sqrt(-2 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2);
  }

 private:
  double uniform() {
    return static_cast<double>(mix64(state_ += 0x9e3779b97f4a7c15ull) >> 11) * 0x1p-53;
  }
  uint64_t state_;
};

// Breakpoints [first, last] bootstrapped together, on points [begin, end)
// (sorted by u): those between the breakpoints just outside, or the data's
// ends.
struct Block {
  int64_t first, last, begin, end;
  std::vector<int64_t> calibrated;  // the breakpoints asked for
};

// The blocks of the breakpoints to calibrate: each with a neighbour a side,
// overlapping or touching blocks merged (a segment is then a single
// block's).
std::vector<Block> blocks_of(const Points& p, const Vec& t, const std::vector<bool>& calibrate) {
  const auto h = static_cast<int64_t>(t.size());
  std::vector<Block> blocks;
  for (int64_t k = 0; k < h; ++k) {
    if (k >= static_cast<int64_t>(calibrate.size()) || !calibrate[k]) continue;
    const int64_t first = std::max<int64_t>(0, k - kBlockWindow);
    const int64_t last = std::min(h - 1, k + kBlockWindow);
    if (blocks.empty() || first > blocks.back().last + 1) blocks.push_back({first, last, 0, 0, {}});
    blocks.back().last = last;
    blocks.back().calibrated.push_back(k);
  }
  for (Block& b : blocks) {
    const double low = b.first > 0 ? t[b.first - 1] : -kInf;
    const double high = b.last < h - 1 ? t[b.last + 1] : kInf;
    b.begin = std::lower_bound(p.u.begin(), p.u.end(), low) - p.u.begin();
    b.end = std::upper_bound(p.u.begin(), p.u.end(), high) - p.u.begin();
  }
  return blocks;
}

// The standard errors of each segment's slope and of its line's value at u0
// (its intercept, u0 being where x = 0) for the curve (t, coef) fitted to q's
// points with residual variance sigma² (q's units): σ·√(gᵀ(JᵀWJ)⁻¹g) for g
// the gradient in (c, α, β, t), J the Jacobian at the points, the delta
// method of curve_summary's own (relu_ext/curve/_summary.py), from the
// Cholesky factor of JᵀWJ with its columns scaled to a unit diagonal. NaN
// where that is singular, a pivot under 1e-7 of the largest (a segment
// without the points to fix its line), as curve_summary's are NaN.
struct LineErrors {
  Vec slopes, intercepts;
};
LineErrors line_errors(const Points& q, const Vec& t, const Vec& coef, double sigma, double u0) {
  const auto h = static_cast<int64_t>(t.size());
  const int64_t p = 2 * h + 2;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  LineErrors out{Vec(h + 1, nan), Vec(h + 1, nan)};
  Vec gram(p * p, 0.0), row(p);
  for (size_t i = 0; i < q.u.size(); ++i) {
    const double u = q.u[i];
    row[0] = 1, row[1] = u;
    for (int64_t k = 0; k < h; ++k) {
      row[2 + k] = std::max(u - t[k], 0.0);
      row[2 + h + k] = u > t[k] ? -coef[2 + k] : 0.0;
    }
    for (int64_t a = 0; a < p; ++a) {
      if (row[a] == 0) continue;
      const double weighted = q.w[i] * row[a];
      for (int64_t b = a; b < p; ++b) gram[a * p + b] += weighted * row[b];
    }
  }
  Vec scale(p);
  for (int64_t a = 0; a < p; ++a) scale[a] = gram[a * p + a] > 0 ? std::sqrt(gram[a * p + a]) : 1.0;
  for (int64_t a = 0; a < p; ++a) {
    for (int64_t b = a; b < p; ++b) gram[a * p + b] /= scale[a] * scale[b];
  }
  if (!cholesky_upper(gram.data(), p)) return out;
  double largest = 0, smallest = kInf;
  for (int64_t a = 0; a < p; ++a) {
    largest = std::max(largest, gram[a * p + a]), smallest = std::min(smallest, gram[a * p + a]);
  }
  if (!(smallest > 1e-7 * largest)) return out;
  const auto error_of = [&](Vec g) {  // σ·‖U⁻ᵀD⁻¹g‖
    for (int64_t a = 0; a < p; ++a) g[a] /= scale[a];
    cholesky_solve_lower(gram.data(), p, g.data());
    double squares = 0;
    for (const double v : g) squares += v * v;
    return sigma * std::sqrt(squares);
  };
  for (int64_t j = 0; j <= h; ++j) {
    // Segment j: c + α·u + Σ_{k<j} β_k·(u - t_k).
    Vec slope(p, 0.0), value(p, 0.0);
    slope[1] = 1, value[0] = 1, value[1] = u0;
    for (int64_t k = 0; k < j; ++k) {
      slope[2 + k] = 1, value[2 + k] = u0 - t[k], value[2 + h + k] = -coef[2 + k];
    }
    out.slopes[j] = error_of(std::move(slope));
    out.intercepts[j] = error_of(std::move(value));
  }
  return out;
}

// Each segment's line of the curve (t sorted, coef = c, α, β) in its own
// standardised units: slope, and value at u0; segment j is
// c + α·u + Σ_{k<j} β_k·(u - t_k).
struct Lines {
  Vec slopes, values;
};
Lines segment_lines(const Vec& t, const Vec& coef, double u0) {
  const auto h = static_cast<int64_t>(t.size());
  Lines out{Vec(h + 1), Vec(h + 1)};
  double slope = coef[1], intercept = coef[0];  // the line's, at u = 0
  for (int64_t j = 0; j <= h; ++j) {
    if (j > 0) slope += coef[1 + j], intercept -= coef[1 + j] * t[j - 1];
    out.slopes[j] = slope;
    out.values[j] = intercept + slope * u0;
  }
  return out;
}

// One simulated block's fit, seen from the world it was simulated in.
struct Replicate {
  Vec statistics;          // each of the block's breakpoints' likelihood-ratio statistic at its true value
  Vec slopes, intercepts;  // each of the block's segments', in x's and y's units
  Vec se_slopes, se_intercepts;  // their standard errors, the replicate's own
};

// The block's points (p's u and w, simulated v; q: them standardised,
// bar v, which is set here; same_x: a solver over them) fitted afresh, from their
// true breakpoints t and fit_curve's usual starts (without which the
// statistic's quantile comes out 5% lower: the fit of a weak kink is
// sometimes best far from the truth):
// the statistic (profile(t_k) - RSS)/((RSS + outside)/dof) of each
// breakpoint calibrated, outside the simulated RSS of the points beyond the
// block (p's v units), and the fitted segments' lines.
Replicate replicate(const Points& p, const Block& block, Points& q,
                    const HingeLeastSquares& same_x, const Vec& v, const Vec& t,
                    double outside, int64_t dof) {
  const auto h = static_cast<int64_t>(t.size());
  const int64_t n = block.end - block.begin;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Replicate out{Vec(h, kInf), Vec(h + 1, nan), Vec(h + 1, nan), Vec(h + 1, nan),
                Vec(h + 1, nan)};
  restandardise(v.data(), Collective{}, q);
  CurveOptions options;
  options.hinges = h;
  options.restarts = 2;
  options.starts = {t};
  // One solver for the fit and the profiles: building it costs a third of
  // a start's search, and the profiles reuse the sums the fit rounded.
  const Vec weighted = columns(q, q.w);
  HingeLeastSquares ls(q.u.data(), weighted.data(), n, same_x);
  const CurveFit fit = fit_points(q, options, ls);
  ProjectedError f(ls, CurveOptions{}, {}, {});
  // outside in q's mean squared error: q's RSS in p's v units is
  // error·weight·y_scale².
  const double beyond = outside / (q.weight * q.y_scale * q.y_scale);
  for (const int64_t calibrated : block.calibrated) {
    const int64_t k = calibrated - block.first;
    Profile at(f, fit.t, k, q.u_min, q.u_max, /*keep_sides=*/false, /*scan=*/true);
    const double profile = at(q.to_u(t[k]));
    const double least = std::min(fit.error, profile);
    out.statistics[k] = (profile - least) / ((least + beyond) / static_cast<double>(dof));
  }
  // x and y are q's u and v through p's scaling twice.
  const double to_slope = q.y_scale * p.y_scale / (q.x_scale * p.x_scale);
  const double at_zero = (-p.x_shift / p.x_scale - q.x_shift) / q.x_scale;  // x = 0 in q's u
  const Lines lines = segment_lines(fit.t, fit.coef, at_zero);
  for (int64_t j = 0; j <= h; ++j) {
    out.slopes[j] = lines.slopes[j] * to_slope;
    out.intercepts[j] = p.y_shift + p.y_scale * (q.y_shift + q.y_scale * lines.values[j]);
  }
  // The replicate's σ² is the whole curve's: its RSS, the block's and beyond.
  const double sigma = std::sqrt((fit.error + beyond) * q.weight / static_cast<double>(dof));
  const LineErrors errors = line_errors(q, fit.t, fit.coef, sigma, at_zero);
  for (int64_t j = 0; j <= h; ++j) {
    out.se_slopes[j] = errors.slopes[j] * std::abs(to_slope);
    out.se_intercepts[j] = errors.intercepts[j] * p.y_scale * q.y_scale;
  }
  return out;
}

// profile.h's bootstrap over p's points (weighted: their solver columns),
// the breakpoints tu in p's u: sets the calibrated breakpoints' limits in
// out, and out's replicated lines.
void bootstrap(const Points& p, const Vec& weighted, const Vec& tu,
               const BootstrapOptions& options, ProfileIntervals& out) {
  const auto h = static_cast<int64_t>(tu.size());
  const int64_t replicates = options.replicates, dof = options.dof;
  const std::vector<Block> blocks = blocks_of(p, tu, options.calibrate);
  if (replicates < 1 || blocks.empty()) return;
  HingeLeastSquares ls(p.u.data(), weighted.data(), static_cast<int64_t>(p.u.size()), {});
  const HingeSolution fit = ls.solve(tu.data(), h);
  // The noise of point i: σ/√w_i, σ² = RSS/dof in v's units.
  const double sigma = std::sqrt(fit.mse * p.weight / static_cast<double>(dof));
  const auto count = static_cast<int64_t>(blocks.size());
  std::vector<Replicate> found(count * replicates);
  // Each block's points standardised (p's u as their x), what its replicates
  // share; a block that cannot be standardised has no replicates (NaN
  // lines, infinite statistics).
  std::vector<Points> standardised(count);
  std::vector<bool> usable(count);
  for (int64_t b = 0; b < count; ++b) {
    const Block& block = blocks[b];
    usable[b] = standardise(p.u.data() + block.begin, p.v.data() + block.begin,
                            p.w.data() + block.begin, block.end - block.begin,
                            block.last - block.first + 2, Collective{},
                            standardised[b]) == FitStatus::kOk;
  }
  // And a solver over each, whose sums of w, w·u and w·u² its replicates'
  // solvers copy: all but v's are the same in every replicate.
  std::vector<Vec> block_columns(count);
  std::vector<std::unique_ptr<HingeLeastSquares>> same_x(count);
  for (int64_t b = 0; b < count; ++b) {
    if (!usable[b]) continue;
    const Points& q = standardised[b];
    block_columns[b] = columns(q, q.w);
    same_x[b] = std::make_unique<HingeLeastSquares>(q.u.data(), block_columns[b].data(),
                                                   static_cast<int64_t>(q.u.size()), Reduce{});
    same_x[b]->round_x_sums();
  }
  // Each block's fitted values and noise scales, the same in every replicate.
  std::vector<Vec> means(count), scales(count);
  for (int64_t b = 0; b < count; ++b) {
    for (int64_t at = blocks[b].begin; at < blocks[b].end; ++at) {
      means[b].push_back(evaluate(p.u[at], tu, fit.coef));
      scales[b].push_back(sigma / std::sqrt(p.w[at]));
    }
  }
  // Each thread takes the next task left, the blocks interleaved (task t is
  // block t % count's replicate t / count): parallel_for's fixed halves
  // left a thread idle while the other fitted the largest block alone, or
  // while it waited, descheduled, on a machine with other work. A
  // replicate depends on its index alone, whichever thread fits it.
  std::atomic<int64_t> next{0};
  at::parallel_for(0, at::get_num_threads(), 1, [&](int64_t, int64_t) {
    std::vector<Points> mine(count);  // the thread's copies, v overwritten
    for (int64_t task; (task = next++) < count * replicates;) {
      const int64_t b = task % count, r = task / count, i = b * replicates + r;
      const Block& block = blocks[b];
      // mix64(0) = 0: a block of all the breakpoints draws what the whole
      // curve's bootstrap always drew.
      Normal normal(mix64(options.seed ^ mix64(static_cast<uint64_t>(r))) ^
                    mix64(static_cast<uint64_t>(block.first)));
      Vec v(block.end - block.begin);
      for (size_t j = 0; j < v.size(); ++j) v[j] = means[b][j] + scales[b][j] * normal();
      // The points beyond the block add σ²·χ² on the degrees of freedom
      // the block's own fit (2 parameters per breakpoint, and c, α) leaves
      // to the whole curve's.
      const int64_t parameters = 2 * (block.last - block.first + 1) + 2;
      double outside = 0;
      for (int64_t d = (block.end - block.begin) - parameters; d < dof; ++d) {
        const double z = normal();
        outside += z * z;
      }
      const Vec t(tu.begin() + block.first, tu.begin() + block.last + 1);
      if (!usable[b]) {
        const double nan = std::numeric_limits<double>::quiet_NaN();
        const int64_t hb = block.last - block.first + 1;
        found[i] = {Vec(hb, kInf), Vec(hb + 1, nan), Vec(hb + 1, nan), Vec(hb + 1, nan),
                    Vec(hb + 1, nan)};
        continue;
      }
      if (mine[b].u.empty()) mine[b] = standardised[b];
      found[i] = replicate(p, block, mine[b], *same_x[b], v, t, sigma * sigma * outside, dof);
    }
  });
  // The level-quantile of each breakpoint's statistic, as the (B + 1)·level-th
  // smallest; never below the F test's (the limit it tends to).
  const auto rank = std::clamp<int64_t>(
      static_cast<int64_t>(std::ceil(options.level * static_cast<double>(replicates + 1))) - 1,
      0, replicates - 1);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (auto* lines : {&out.slopes, &out.intercepts, &out.se_slopes, &out.se_intercepts}) {
    lines->assign(replicates, Vec(h + 1, nan));
  }
  for (int64_t b = 0; b < count; ++b) {
    const Block& block = blocks[b];
    const Replicate* mine = found.data() + b * replicates;
    for (const int64_t k : block.calibrated) {
      Vec values(replicates);
      for (int64_t r = 0; r < replicates; ++r) values[r] = mine[r].statistics[k - block.first];
      std::nth_element(values.begin(), values.begin() + rank, values.end());
      out.limits[k] = std::max(out.limits[k], 1 + values[rank] / static_cast<double>(dof));
    }
    // The block's segments but an end one against a breakpoint held fixed:
    // that segment's line is freer in the whole curve, where the breakpoint
    // moves too, than in the block.
    const int64_t first = block.first > 0 ? block.first + 1 : block.first;
    const int64_t last = block.last < h - 1 ? block.last : block.last + 1;
    for (int64_t r = 0; r < replicates; ++r) {
      for (int64_t j = first; j <= last; ++j) {
        const int64_t local = j - block.first;
        out.slopes[r][j] = mine[r].slopes[local];
        out.intercepts[r][j] = mine[r].intercepts[local];
        out.se_slopes[r][j] = mine[r].se_slopes[local];
        out.se_intercepts[r][j] = mine[r].se_intercepts[local];
      }
    }
  }
}

}  // namespace

ProfileIntervals profile_intervals(const double* x, const double* y, const double* w, int64_t n,
                                   const Vec& t, double limit, const Vec& steps,
                                   const BootstrapOptions& options) {
  const auto h = static_cast<int64_t>(t.size());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  ProfileIntervals out{std::vector<BreakpointInterval>(h, {nan, nan}), Vec(h, limit)};
  Points p;
  if (standardise(x, y, w, n, h + 1, Collective{}, p) != FitStatus::kOk) return out;
  Vec tu(h);
  for (int64_t k = 0; k < h; ++k) tu[k] = p.to_u(t[k]);
  const Vec weighted = columns(p, p.w);
  bootstrap(p, weighted, tu, options, out);
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
    ProjectedError f(ls, CurveOptions{}, {}, {});
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
