#include "bootstrap.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <memory>
#include <utility>

#include "fit.h"
#include "lines.h"
#include "profile.h"
#include "random.h"

namespace relu_ext::curve {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Breakpoints on each side of a bootstrapped one re-fitted with it in its
// replicates. Its statistic is the rise of the whole curve's error at its
// true value over the replicate's least; the points beyond its neighbours'
// neighbours add the same to both, but for the small shifts of the
// breakpoints there, which the replicates leave out (docs/curves.md
// measures the quantile either way). One keeps a K = 20 curve's block at a
// fifth of its points.
constexpr int64_t kBlockWindow = 1;

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

// One simulated block's fit, seen from the world it was simulated in.
struct Replicate {
  Vec statistics;          // each of the block's breakpoints' likelihood-ratio statistic at its true value
  Vec slopes, intercepts;  // each of the block's segments', in x's and y's units
  Vec se_slopes, se_intercepts;  // their standard errors, the replicate's own
};

// The block's points (p's u and w, simulated v; q: them standardised,
// bar v, which is set here; same_x: a solver over them) fitted afresh, from their
// true breakpoints t and fit_curve's usual starts (without which the
// statistic's quantile comes out low, docs/curves.md: the fit of a weak
// kink is sometimes best far from the truth):
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
  const CurveErrors errors = curve_errors(q.u.data(), q.w.data(), n, fit.t, fit.coef, sigma, at_zero);
  for (int64_t j = 0; j <= h; ++j) {
    out.se_slopes[j] = errors.slopes[j] * std::abs(to_slope);
    out.se_intercepts[j] = errors.values[j] * p.y_scale * q.y_scale;
  }
  return out;
}

}  // namespace

double rank_quantile(std::vector<double> values, double level) {
  values.erase(std::remove_if(values.begin(), values.end(), [](double v) { return std::isnan(v); }),
               values.end());
  const auto count = static_cast<int64_t>(values.size());
  if (count == 0) return std::numeric_limits<double>::quiet_NaN();
  const auto rank = std::clamp<int64_t>(
      static_cast<int64_t>(std::ceil(level * static_cast<double>(count + 1))) - 1, 0, count - 1);
  std::nth_element(values.begin(), values.begin() + rank, values.end());
  return values[rank];
}

void bootstrap(const Points& p, const Vec& weighted, const Vec& tu,
               const BootstrapOptions& options, Vec& limits, ReplicatedLines& out) {
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
      // Never below the F test's, the limit it tends to.
      limits[k] = std::max(limits[k], 1 + rank_quantile(std::move(values), options.level) /
                                              static_cast<double>(dof));
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

}  // namespace relu_ext::curve
