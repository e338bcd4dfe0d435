#include "bindings.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <ATen/ops/zeros.h>
#include <torch/csrc/utils/pybind.h>

#include <ATen/Parallel.h>

#include "bootstrap.h"
#include "constrained_lstsq.h"
#include "criteria.h"
#include "exact_sum.h"
#include "fit.h"
#include "fit_curve.h"
#include "hinge_lstsq.h"
#include "intervals.h"
#include "lines.h"
#include "points.h"

namespace relu_ext::curve {
namespace {

namespace py = pybind11;

// A namedtuple type of module m (where pickle finds it: a batch's results
// cross processes under torch.distributed), made once at import.
py::object named_tuple(py::module_& m, const char* name, const std::vector<const char*>& fields) {
  py::list names;
  for (const char* field : fields) names.append(field);
  py::object type = py::module_::import("collections")
                        .attr("namedtuple")(name, names, py::arg("module") = m.attr("__name__"));
  m.attr(name) = type;
  return type;
}

// The result types, one per function below (set by bind()).
py::handle curve_search_type, breakpoint_intervals_type, curve_lines_type, criteria_type,
    hinge_solution_type, minimized_type, constrained_solution_type;

at::Tensor checked(const at::Tensor& t, const char* name, int64_t dim,
                   at::ScalarType dtype = at::kDouble) {
  TORCH_CHECK_VALUE(t.dim() == dim && t.scalar_type() == dtype && t.is_cpu(), name,
                    " must be a ", dim, "-D ", dtype, " CPU tensor, but got ", t.dim(), "-D ",
                    t.scalar_type(), " on ", t.device());
  return t.contiguous();
}

std::vector<double> to_vector(const at::Tensor& t) {
  const auto c = checked(t, "t", 1);
  return {c.const_data_ptr<double>(), c.const_data_ptr<double>() + c.numel()};
}

at::Tensor to_tensor(const std::vector<double>& v) {
  auto t = at::empty({static_cast<int64_t>(v.size())}, at::kDouble);
  std::copy(v.begin(), v.end(), t.mutable_data_ptr<double>());
  return t;
}

// The Python all-reduce as a Reduce: it gets a (count, kDigits) int64 tensor
// of its own (it may keep it) and returns the sums over the processes.
Reduce python_reduce(py::object reduce) {
  if (reduce.is_none()) return {};
  return [reduce = std::move(reduce)](int64_t* digits, int64_t count) {
    auto local = at::empty({count, ExactSum::kDigits}, at::kLong);
    std::copy_n(digits, count * ExactSum::kDigits, local.mutable_data_ptr<int64_t>());
    const auto sums = checked(reduce(local).cast<at::Tensor>(), "reduce's result", 2, at::kLong);
    TORCH_CHECK_VALUE(sums.sizes() == local.sizes(), "reduce must return the shape it got, ",
                      local.sizes(), ", but returned ", sums.sizes());
    std::copy_n(sums.const_data_ptr<int64_t>(), count * ExactSum::kDigits, digits);
  };
}

// exact_sums(values (R, N), segment (N) or None, segments) -> (R, segments, kDigits):
// the exact sum of each row's values in each segment (all in segment 0 when
// segment is None), as digits to all-reduce and round with exact_round.
at::Tensor exact_sums(const at::Tensor& values_in, const std::optional<at::Tensor>& segment_in,
                      int64_t segments) {
  const auto values = checked(values_in, "values", 2);
  const int64_t rows = values.size(0), n = values.size(1);
  TORCH_CHECK_VALUE(segments >= 1, "segments must be >= 1, but got ", segments);
  at::Tensor segment;
  if (segment_in) {
    segment = checked(*segment_in, "segment", 1, at::kLong);
    TORCH_CHECK_VALUE(segment.numel() == n, "segment must have one entry per value (", n,
                      "), but got ", segment.numel());
  }
  std::vector<ExactSum> sums(rows * segments);
  const double* v = values.const_data_ptr<double>();
  const int64_t* s = segment_in ? segment.const_data_ptr<int64_t>() : nullptr;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < n; ++i) {
      const int64_t which = s ? s[i] : 0;
      TORCH_CHECK_VALUE(0 <= which && which < segments, "segment[", i, "] must be in [0, ",
                        segments, "), but got ", which);
      const double x = v[r * n + i];
      TORCH_CHECK_VALUE(std::isfinite(x), "values must be finite, but values[", r, ", ", i,
                        "] is ", x);
      sums[r * segments + which].add(x);
    }
  }
  auto out = at::empty({rows, segments, ExactSum::kDigits}, at::kLong);
  int64_t* o = out.mutable_data_ptr<int64_t>();
  for (auto& sum : sums) {
    sum.normalize();
    o = std::copy_n(sum.digits(), ExactSum::kDigits, o);
  }
  return out;
}

// The sums whose digits are the last dim of `digits`, rounded to doubles.
at::Tensor exact_round(const at::Tensor& digits_in) {
  TORCH_CHECK_VALUE(digits_in.dim() >= 1 && digits_in.size(-1) == ExactSum::kDigits &&
                        digits_in.scalar_type() == at::kLong && digits_in.is_cpu(),
                    "digits must be an int64 CPU tensor of shape (..., ", ExactSum::kDigits,
                    "), but got ", digits_in.scalar_type(), " ", digits_in.sizes());
  const auto digits = digits_in.contiguous();
  auto shape = digits.sizes().vec();
  shape.pop_back();
  auto out = at::empty(shape, at::kDouble);
  const int64_t* d = digits.const_data_ptr<int64_t>();
  double* o = out.mutable_data_ptr<double>();
  for (int64_t i = 0; i < out.numel(); ++i) {
    ExactSum sum;
    std::copy_n(d + i * ExactSum::kDigits, ExactSum::kDigits, sum.digits());
    o[i] = sum.value();
  }
  return out;
}

// t as checked() requires, of the given shape (why: where it comes from),
// and finite.
at::Tensor checked_shape(const at::Tensor& t_in, const char* name, at::IntArrayRef shape,
                         const char* why) {
  auto t = checked(t_in, name, static_cast<int64_t>(shape.size()));
  TORCH_CHECK_VALUE(t.sizes() == shape, name, " must have shape ", shape, " (", why,
                    "), but got ", t.sizes());
  const double* p = t.const_data_ptr<double>();
  TORCH_CHECK_VALUE(std::all_of(p, p + t.numel(), [](double x) { return std::isfinite(x); }),
                    name, " must be finite");
  return t;
}

// constrained_lstsq(G, g, E, d, C, h) -> (feasible, z, nu, mu): the minimiser
// of zᵀGz − 2gᵀz subject to E·z = d, C·z >= h (constrained_lstsq.h).
py::object constrained_lstsq(
    const at::Tensor& G_in, const at::Tensor& g_in, const at::Tensor& E_in, const at::Tensor& d_in,
    const at::Tensor& C_in, const at::Tensor& h_in) {
  const int64_t n = checked(G_in, "G", 2).size(0);
  const auto G = checked_shape(G_in, "G", {n, n}, "n×n");
  TORCH_CHECK_VALUE(n >= 1, "G must be n×n with n >= 1, but got ", G.sizes());
  const auto g = checked_shape(g_in, "g", {n}, "n, from G");
  const int64_t equalities = checked(E_in, "E", 2).size(0);
  const auto E = checked_shape(E_in, "E", {equalities, n}, "m_e×n, n from G");
  const auto d = checked_shape(d_in, "d", {equalities}, "m_e, E's rows");
  const int64_t inequalities = checked(C_in, "C", 2).size(0);
  const auto C = checked_shape(C_in, "C", {inequalities, n}, "m_i×n, n from G");
  const auto h = checked_shape(h_in, "h", {inequalities}, "m_i, C's rows");
  const auto s = solve_constrained_lstsq({n, G.const_data_ptr<double>(), g.const_data_ptr<double>(),
                                          equalities, E.const_data_ptr<double>(),
                                          d.const_data_ptr<double>(), inequalities,
                                          C.const_data_ptr<double>(), h.const_data_ptr<double>()});
  return constrained_solution_type(s.feasible, to_tensor(s.z), to_tensor(s.nu), to_tensor(s.mu));
}


class PyHingeLeastSquares {
 public:
  PyHingeLeastSquares(const at::Tensor& u, const at::Tensor& columns, py::object reduce)
      : u_(checked(u, "u", 1)),
        columns_(checked_columns(columns, u_)),
        ls_(u_.const_data_ptr<double>(), columns_.const_data_ptr<double>(), u_.numel(),
            python_reduce(std::move(reduce))) {}

  py::object solve(const at::Tensor& t) {
    const auto x = to_vector(t);
    const auto& s = ls_.solve(x.data(), static_cast<int64_t>(x.size()));
    return hinge_solution_type(s.mse, to_tensor(s.coef), to_tensor(s.grad));
  }

  at::Tensor suffix_sums(const at::Tensor& t) const {
    const auto x = to_vector(t);
    const auto h = static_cast<int64_t>(x.size());
    auto out = at::empty({kSums, h}, at::kDouble);
    ls_.suffix_sums(x.data(), h, out.mutable_data_ptr<double>());
    return out;
  }

  // L-BFGS on the breakpoints from t; the sorted result and the error at
  // every evaluation.
  py::object minimize(const at::Tensor& t, int64_t max_iter) {
    auto x = to_vector(t);
    std::vector<double> trace;
    ProjectedError error(ls_, CurveOptions{}, {}, {});
    minimize_breakpoints(error, x, max_iter, trace);
    return minimized_type(to_tensor(x), trace);
  }

 private:
  static at::Tensor checked_columns(const at::Tensor& columns_in, const at::Tensor& u) {
    auto columns = checked(columns_in, "columns", 2);
    TORCH_CHECK_VALUE(columns.size(0) == kColumns && columns.size(1) == u.numel(),
                      "columns must be (", kColumns, ", ", u.numel(), "), but got ",
                      columns.sizes());
    const double* p = u.const_data_ptr<double>();
    TORCH_CHECK_VALUE(std::is_sorted(p, p + u.numel()), "u must be sorted ascending");
    const double* c = columns.const_data_ptr<double>();
    TORCH_CHECK_VALUE(std::all_of(c, c + columns.numel(), [](double x) { return std::isfinite(x); }),
                      "columns must be finite");
    return columns;
  }

  at::Tensor u_, columns_;  // kept alive: ls_ points into them
  HingeLeastSquares ls_;
};

// A float64 (B, cols) tensor's row b, or null for an absent tensor.
const double* row(const std::optional<at::Tensor>& t, int64_t b) {
  return t ? t->const_data_ptr<double>() + b * t->size(1) : nullptr;
}

std::optional<at::Tensor> checked_rows(const std::optional<at::Tensor>& t, const char* name,
                                       int64_t rows, int64_t cols = -1) {
  if (!t) return std::nullopt;
  auto c = checked(*t, name, 2);
  TORCH_CHECK_VALUE(c.size(0) == rows && (cols < 0 || c.size(1) == cols), name, " must have ",
                    rows, " rows", cols < 0 ? "" : " of the points' length", ", but got ",
                    c.sizes());
  return c;
}

// fit_curves(x, y, w, ...): fit.h's fit of each row of x, y (B, N), threads
// over the rows, as a CurveSearch; relu_ext/curve/_fit.py checks the
// arguments (here only what would otherwise be out of bounds). Select.fixed
// fits `units` units; bic and cv choose each row's number from 1 to `units`
// (select.h). With the collective's callbacks (B = 1), the
// points are this process's share and the callbacks all-reduce int64 sums
// and float64 maxima in place.
py::object fit_curves(const at::Tensor& x_in, const at::Tensor& y_in,
                      const std::optional<at::Tensor>& w_in, int64_t units, Select chosen_by,
                      int64_t folds, Loss loss, uint64_t seed,
                     int64_t restarts, int64_t max_iter, int64_t revive, int64_t mae_rounds,
                     int64_t monotone, int64_t convex,
                     const std::optional<at::Tensor>& breakpoints_in,
                     const std::optional<at::Tensor>& through_x_in,
                     const std::optional<at::Tensor>& through_y_in, py::object sum,
                     py::object max) {
  const auto x = checked(x_in, "x", 2), y = checked(y_in, "y", 2);
  const int64_t curves = x.size(0), n = x.size(1), hinges = units - 1;
  TORCH_CHECK_VALUE(y.sizes() == x.sizes(), "y must have x's shape ", x.sizes(), ", but got ",
                    y.sizes());
  TORCH_CHECK_VALUE(units >= 1 && (chosen_by != Select::kCv || folds >= 2) &&
                        (chosen_by == Select::kFixed || !breakpoints_in),
                    "fit_curves: units >= 1, folds >= 2 for cv, and breakpoints only with "
                    "Select.fixed (relu_ext/curve/_data.py checks them for fit_curve)");
  const auto w = checked_rows(w_in, "w", curves, n);
  const auto breakpoints = checked_rows(breakpoints_in, "breakpoints", curves, hinges);
  const auto through_x = checked_rows(through_x_in, "through_x", curves);
  const auto through_y = checked_rows(through_y_in, "through_y", curves);
  TORCH_CHECK_VALUE(through_x.has_value() == through_y.has_value() &&
                        (!through_x || through_x->sizes() == through_y->sizes()),
                    "through_x and through_y must be given together, of one shape");
  Collective collective;
  if (!sum.is_none()) {
    TORCH_CHECK_VALUE(curves == 1, "a collective fit takes one curve, but got ", curves);
    collective.sum = [sum](int64_t* values, int64_t count) {
      auto t = at::empty({count}, at::kLong);
      std::copy_n(values, count, t.mutable_data_ptr<int64_t>());
      const auto r = checked(sum(t).cast<at::Tensor>(), "sum's result", 1, at::kLong);
      TORCH_CHECK_VALUE(r.numel() == count, "sum must return ", count, " values");
      std::copy_n(r.const_data_ptr<int64_t>(), count, values);
    };
    collective.max = [max](double* values, int64_t count) {
      auto t = at::empty({count}, at::kDouble);
      std::copy_n(values, count, t.mutable_data_ptr<double>());
      const auto r = checked(max(t).cast<at::Tensor>(), "max's result", 1);
      TORCH_CHECK_VALUE(r.numel() == count, "max must return ", count, " values");
      std::copy_n(r.const_data_ptr<double>(), count, values);
    };
  }

  std::vector<CurveFit> fits(curves);
  const auto fit_one = [&](int64_t b) {
    CurveOptions options;
    options.hinges = hinges;
    options.select = chosen_by;
    options.max_units = units;
    options.folds = folds;
    options.loss = loss;
    options.seed = seed;
    options.restarts = restarts;
    options.max_iter = max_iter;
    options.revive = revive;
    options.mae_rounds = mae_rounds;
    options.monotone = static_cast<int>(monotone);
    options.convex = static_cast<int>(convex);
    if (breakpoints) options.breakpoints.assign(row(breakpoints, b), row(breakpoints, b) + hinges);
    if (through_x) {
      const int64_t count = through_x->size(1);
      options.through_x.assign(row(through_x, b), row(through_x, b) + count);
      options.through_y.assign(row(through_y, b), row(through_y, b) + count);
    }
    fits[b] = fit_curve(row(x, b), row(y, b), row(w, b), n, options, collective);
  };
  if (collective.active()) {
    fit_one(0);  // on this thread, which holds the GIL the callbacks need
  } else {
    py::gil_scoped_release no_gil;
    // One curve per task: a curve costs milliseconds, far above a task's cost.
    at::parallel_for(0, curves, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) fit_one(b);
    });
  }

  // Rows of fewer units than the most: t padded with NaN, coef with 0.
  int64_t most = chosen_by == Select::kFixed ? units : 1;
  for (const CurveFit& f : fits) most = std::max(most, f.units);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto status = at::empty({curves}, at::kLong), points = at::empty({curves}, at::kLong);
  auto chosen = at::empty({curves}, at::kLong);
  std::vector<at::Tensor> scale;  // x_shift, x_scale, y_shift, y_scale, u_min, u_max
  for (int i = 0; i < 6; ++i) scale.push_back(at::empty({curves}, at::kDouble));
  auto t = at::full({curves, most - 1}, nan, at::kDouble);
  auto coef = at::zeros({curves, most + 1}, at::kDouble);
  const int64_t tried = chosen_by == Select::kFixed ? 0 : units;
  auto scores = at::full({curves, tried}, nan, at::kDouble);
  py::list traces;
  for (int64_t b = 0; b < curves; ++b) {
    const CurveFit& f = fits[b];
    status.mutable_data_ptr<int64_t>()[b] = static_cast<int64_t>(f.status);
    points.mutable_data_ptr<int64_t>()[b] = f.points;
    chosen.mutable_data_ptr<int64_t>()[b] = f.units;
    const double values[] = {f.x_shift, f.x_scale, f.y_shift, f.y_scale, f.u_min, f.u_max};
    for (int i = 0; i < 6; ++i) scale[i].mutable_data_ptr<double>()[b] = values[i];
    if (f.status == FitStatus::kOk) {
      std::copy(f.t.begin(), f.t.end(), t.mutable_data_ptr<double>() + b * (most - 1));
      std::copy(f.coef.begin(), f.coef.end(), coef.mutable_data_ptr<double>() + b * (most + 1));
    }
    std::copy(f.scores.begin(), f.scores.end(), scores.mutable_data_ptr<double>() + b * tried);
    traces.append(to_tensor(f.trace));
  }
  return curve_search_type(status, points, scale[0], scale[1], scale[2], scale[3], scale[4],
                           scale[5], t, coef, traces, chosen, scores);
}

// Rows of (B, H) breakpoints: each row's leading non-NaN entries, checked
// sorted and finite.
std::vector<std::vector<double>> breakpoint_rows(const at::Tensor& t) {
  const int64_t curves = t.size(0), h = t.size(1);
  std::vector<std::vector<double>> rows(curves);
  for (int64_t b = 0; b < curves; ++b) {
    const double* r = row(t, b);
    const auto count = std::find_if(r, r + h, [](double v) { return std::isnan(v); }) - r;
    TORCH_CHECK_VALUE(std::is_sorted(r, r + count) && std::all_of(r, r + count, [](double v) {
                        return std::isfinite(v);
                      }), "t's rows must be sorted and finite, padded with NaN at the end");
    rows[b].assign(r, r + count);
  }
  return rows;
}

// breakpoint_intervals(x, y, w, t, limit, step, replicates, level, dof, seed,
// bootstrap) -> BreakpointIntervals: the profile-likelihood intervals of
// each row's breakpoints (low, high) and the limits they used, (B, H)
// (intervals.h). Row b's breakpoints are t[b]'s leading non-NaN
// entries, sorted; limit (B,), the F test's; step (B, H) or None, the
// guesses at the half-widths. With replicates = R > 0, the limits of the
// breakpoints `bootstrap` (B, H) bool marks (None: all) are calibrated by a
// bootstrap of R replicates (level and dof (B,) needed then), and slopes,
// intercepts and their standard errors (B, R, H + 1) are the replicates'
// (NaN for the segments no bootstrapped block holds); else they are empty.
// least_slopes, greatest_slopes, least_intercepts, greatest_intercepts
// (B, H + 1): intervals.h's reach, each segment's lines at the bootstrapped
// breakpoints' interval ends.
py::object breakpoint_intervals_of(
    const at::Tensor& x_in, const at::Tensor& y_in, const std::optional<at::Tensor>& w_in,
    const at::Tensor& t_in, const at::Tensor& limit_in, const std::optional<at::Tensor>& step_in,
    int64_t replicates, double level, const std::optional<at::Tensor>& dof_in, uint64_t seed,
    const std::optional<at::Tensor>& bootstrap_in, const std::optional<at::Tensor>& through_x_in,
    const std::optional<at::Tensor>& through_y_in) {
  const auto x = checked(x_in, "x", 2), y = checked(y_in, "y", 2);
  const int64_t curves = x.size(0), n = x.size(1);
  TORCH_CHECK_VALUE(y.sizes() == x.sizes(), "y must have x's shape ", x.sizes(), ", but got ",
                    y.sizes());
  const auto w = checked_rows(w_in, "w", curves, n);
  const auto t = checked_rows(t_in, "t", curves).value();
  const auto limit = checked(limit_in, "limit", 1);
  TORCH_CHECK_VALUE(limit.numel() == curves, "limit must have one entry per curve (", curves,
                    "), but got ", limit.numel());
  const int64_t h = t.size(1);
  const auto step = checked_rows(step_in, "step", curves);
  TORCH_CHECK_VALUE(!step || step->size(1) == h, "step must have t's shape ", t.sizes(),
                    ", but got ", step ? step->sizes() : t.sizes());
  TORCH_CHECK_VALUE(replicates >= 0, "replicates must be >= 0, but got ", replicates);
  const auto through_x = checked_rows(through_x_in, "through_x", curves);
  const auto through_y = checked_rows(through_y_in, "through_y", curves);
  TORCH_CHECK_VALUE(through_x.has_value() == through_y.has_value() &&
                        (!through_x || through_x->sizes() == through_y->sizes()),
                    "through_x and through_y must be given together, of one shape");
  TORCH_CHECK_VALUE(!through_x || replicates == 0,
                    "the bootstrap simulates unconstrained fits: replicates must be 0 with "
                    "through points, but got ", replicates);
  at::Tensor dof, chosen;
  if (replicates > 0) {
    TORCH_CHECK_VALUE(0 < level && level < 1, "level must be in (0, 1), but got ", level);
    TORCH_CHECK_VALUE(dof_in.has_value(), "dof must be given with replicates");
    dof = checked(*dof_in, "dof", 1, at::kLong);
    TORCH_CHECK_VALUE(dof.numel() == curves, "dof must have one entry per curve (", curves,
                      "), but got ", dof.numel());
    chosen = bootstrap_in ? checked(*bootstrap_in, "bootstrap", 2, at::kBool)
                          : at::full({curves, h}, true, at::kBool);
    TORCH_CHECK_VALUE(chosen.sizes() == t.sizes(), "bootstrap must have t's shape ", t.sizes(),
                      ", but got ", chosen.sizes());
  }
  const auto nan = std::numeric_limits<double>::quiet_NaN();
  auto low = at::full({curves, h}, nan, at::kDouble), high = at::full({curves, h}, nan, at::kDouble);
  auto limits = at::full({curves, h}, nan, at::kDouble);
  auto slopes = at::full({curves, replicates, h + 1}, nan, at::kDouble);
  auto intercepts = at::full({curves, replicates, h + 1}, nan, at::kDouble);
  auto se_slopes = at::full({curves, replicates, h + 1}, nan, at::kDouble);
  auto se_intercepts = at::full({curves, replicates, h + 1}, nan, at::kDouble);
  auto reach = at::full({curves, 4, h + 1}, nan, at::kDouble);
  const auto rows = breakpoint_rows(t);
  for (int64_t b = 0; b < curves; ++b) {
    const double l = limit.const_data_ptr<double>()[b];
    TORCH_CHECK_VALUE(l >= 1 && std::isfinite(l), "limit must be finite and >= 1, but got ", l);
    TORCH_CHECK_VALUE(replicates == 0 || dof.const_data_ptr<int64_t>()[b] >= 1,
                      "dof must be >= 1, but got ", dof.const_data_ptr<int64_t>()[b]);
  }
  {
    py::gil_scoped_release no_gil;
    at::parallel_for(0, curves, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const auto count = static_cast<int64_t>(rows[b].size());
        BootstrapOptions options;
        if (replicates > 0) {
          const bool* marked = chosen.const_data_ptr<bool>() + b * h;
          options.calibrate.assign(marked, marked + count);
          options.replicates = replicates, options.level = level, options.seed = seed;
          options.dof = dof.const_data_ptr<int64_t>()[b];
        }
        const std::vector<double> steps =
            step ? std::vector<double>(row(step, b), row(step, b) + count) : std::vector<double>{};
        std::vector<double> xc, yc;
        if (through_x) {
          xc.assign(row(through_x, b), row(through_x, b) + through_x->size(1));
          yc.assign(row(through_y, b), row(through_y, b) + through_y->size(1));
        }
        const ProfileIntervals found =
            profile_intervals(row(x, b), row(y, b), row(w, b), n, rows[b],
                              limit.const_data_ptr<double>()[b], steps, options, xc, yc);
        const ReplicatedLines& replicated = found.replicated;
        const std::pair<const std::vector<std::vector<double>>*, at::Tensor*> lines[] = {
            {&replicated.slopes, &slopes}, {&replicated.intercepts, &intercepts},
            {&replicated.se_slopes, &se_slopes}, {&replicated.se_intercepts, &se_intercepts}};
        for (const auto& [from, to] : lines) {
          for (size_t r = 0; r < from->size(); ++r) {
            const int64_t at = (b * replicates + static_cast<int64_t>(r)) * (h + 1);
            std::copy((*from)[r].begin(), (*from)[r].end(), to->mutable_data_ptr<double>() + at);
          }
        }
        for (size_t line = 0; line < found.reach.size(); ++line) {
          std::copy(found.reach[line].begin(), found.reach[line].end(),
                    reach.mutable_data_ptr<double>() + (b * 4 + static_cast<int64_t>(line)) * (h + 1));
        }
        for (int64_t k = 0; k < count; ++k) {
          low.mutable_data_ptr<double>()[b * h + k] = found.intervals[k].low;
          high.mutable_data_ptr<double>()[b * h + k] = found.intervals[k].high;
          limits.mutable_data_ptr<double>()[b * h + k] = found.limits[k];
        }
      }
    });
  }
  const auto reaches = reach.unbind(1);
  return breakpoint_intervals_type(low, high, limits, slopes, intercepts, se_slopes,
                                   se_intercepts, reaches[0], reaches[1], reaches[2], reaches[3]);
}


// curve_lines(x, w, t, coef, sigma, breakpoints_estimated, through_x) ->
// CurveLines: each row's segment lines (slopes, intercepts (B, H + 1), NaN
// beyond its own) and the delta-method standard errors of the lines and
// breakpoints (lines.h), for the curve c + α·x + Σ β_k·relu(x - t_k) of
// coef = (c, α, β) (B, H + 2) and t (B, H) (NaN-padded, β 0 there) fitted
// to the points x of weights w (B, N) with residual standard deviation
// sigma (B,); through_x (B, P) or None: points it was made to pass through.
py::object curve_lines(const at::Tensor& x_in, const at::Tensor& w_in, const at::Tensor& t_in,
                       const at::Tensor& coef_in, const at::Tensor& sigma_in,
                       bool breakpoints_estimated, const std::optional<at::Tensor>& through_in) {
  const auto x = checked(x_in, "x", 2), w = checked(w_in, "w", 2), t = checked(t_in, "t", 2);
  const int64_t curves = x.size(0), n = x.size(1), h = t.size(1);
  TORCH_CHECK_VALUE(w.sizes() == x.sizes(), "w must have x's shape ", x.sizes(), ", but got ",
                    w.sizes());
  TORCH_CHECK_VALUE(t.size(0) == curves, "t must have one row per curve (", curves, "), but got ",
                    t.sizes());
  const auto coef = checked_shape(coef_in, "coef", {curves, h + 2}, "c, α and β per curve");
  const auto sigma = checked(sigma_in, "sigma", 1);
  TORCH_CHECK_VALUE(sigma.numel() == curves, "sigma must have one entry per curve (", curves,
                    "), but got ", sigma.numel());
  const auto through = checked_rows(through_in, "through_x", curves);
  const auto rows = breakpoint_rows(t);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto slopes = at::full({curves, h + 1}, nan, at::kDouble);
  auto intercepts = at::full({curves, h + 1}, nan, at::kDouble);
  auto se_slopes = at::full({curves, h + 1}, nan, at::kDouble);
  auto se_intercepts = at::full({curves, h + 1}, nan, at::kDouble);
  auto se_breakpoints = at::full({curves, h}, nan, at::kDouble);
  {
    py::gil_scoped_release no_gil;
    at::parallel_for(0, curves, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const auto& tb = rows[b];
        const auto hb = static_cast<int64_t>(tb.size());
        std::vector<double> cb(row(coef, b), row(coef, b) + hb + 2);
        const std::vector<double> through_b =
            through ? std::vector<double>(row(through, b), row(through, b) + through->size(1))
                    : std::vector<double>{};
        const Lines lines = segment_lines(tb, cb, 0.0);
        // The errors in standardised x, u = (x - μ)/s, as the bootstrap's
        // replicates take them: x in years makes JᵀWJ's columns of 1 and x
        // nearly collinear, which its Cholesky factor would pay for in
        // digits. c + α·x + Σ β·relu(x - t) = (c + α·μ) + α·s·u + Σ β·s·relu(u - t').
        const double* xb = row(x, b);
        const double* wb = row(w, b);
        double weight = 0, first = 0, second = 0;
        for (int64_t i = 0; i < n; ++i) weight += wb[i], first += wb[i] * xb[i];
        const double mu = weight > 0 ? first / weight : 0.0;
        for (int64_t i = 0; i < n; ++i) second += wb[i] * (xb[i] - mu) * (xb[i] - mu);
        const double spread = weight > 0 && second > 0 ? std::sqrt(second / weight) : 1.0;
        std::vector<double> u(n), tu(hb), cu(cb), through_u(through_b.size());
        for (int64_t i = 0; i < n; ++i) u[i] = (xb[i] - mu) / spread;
        for (int64_t k = 0; k < hb; ++k) tu[k] = (tb[k] - mu) / spread, cu[2 + k] = cb[2 + k] * spread;
        cu[0] = cb[0] + cb[1] * mu, cu[1] = cb[1] * spread;
        for (size_t c = 0; c < through_b.size(); ++c) through_u[c] = (through_b[c] - mu) / spread;
        CurveErrors errors = curve_errors(u.data(), wb, n, tu, cu, sigma.const_data_ptr<double>()[b],
                                          -mu / spread, breakpoints_estimated, through_u);
        for (double& e : errors.slopes) e /= spread;
        for (double& e : errors.breakpoints) e *= spread;
        const auto put = [&](at::Tensor& to, const std::vector<double>& from, int64_t width) {
          std::copy(from.begin(), from.end(), to.mutable_data_ptr<double>() + b * width);
        };
        put(slopes, lines.slopes, h + 1), put(intercepts, lines.values, h + 1);
        put(se_slopes, errors.slopes, h + 1), put(se_intercepts, errors.values, h + 1);
        put(se_breakpoints, errors.breakpoints, h);
      }
    });
  }
  return curve_lines_type(slopes, intercepts, se_slopes, se_intercepts, se_breakpoints);
}

// fit_criteria(x, y, w, rss, parameters) -> FitCriteria: the log-likelihood,
// AIC and BIC (criteria.h) of fits to each row's points (x, y) of weights w
// (B, N; weight 0 leaves a point out) whose residual sum of squares is rss
// (B,) and which have `parameters` (B,) free parameters: the Gaussian
// likelihood, in the units select.cpp scores a fit in (NaN for a row whose
// x takes one value).
py::object fit_criteria(const at::Tensor& x_in, const at::Tensor& y_in, const at::Tensor& w_in,
                        const at::Tensor& rss_in, const at::Tensor& parameters_in) {
  const auto x = checked(x_in, "x", 2), y = checked(y_in, "y", 2), w = checked(w_in, "w", 2);
  const int64_t curves = x.size(0), n = x.size(1);
  TORCH_CHECK_VALUE(y.sizes() == x.sizes() && w.sizes() == x.sizes(),
                    "y and w must have x's shape ", x.sizes(), ", but got ", y.sizes(), " and ",
                    w.sizes());
  const auto rss = checked_shape(rss_in, "rss", {curves}, "one per curve");
  const auto parameters = checked(parameters_in, "parameters", 1, at::kLong);
  TORCH_CHECK_VALUE(parameters.numel() == curves, "parameters must have one entry per curve (",
                    curves, "), but got ", parameters.numel());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto llf = at::full({curves}, nan, at::kDouble), aic = at::full({curves}, nan, at::kDouble);
  auto bics = at::full({curves}, nan, at::kDouble);
  for (int64_t b = 0; b < curves; ++b) {
    Points p;
    if (standardise(row(x, b), row(y, b), row(w, b), n, 1, Collective{}, p) != FitStatus::kOk) {
      continue;
    }
    const double count = static_cast<double>(p.count);
    const double error = rss.const_data_ptr<double>()[b] / (p.weight * p.y_scale * p.y_scale);
    const double d = deviance(count, error, p.weight, p.y_scale, log_weights(p, Collective{}),
                              Loss::kSquared);
    const int64_t free = parameters.const_data_ptr<int64_t>()[b];
    llf.mutable_data_ptr<double>()[b] = -d / 2;
    aic.mutable_data_ptr<double>()[b] = d + 2 * static_cast<double>(free);
    bics.mutable_data_ptr<double>()[b] = bic(d, free, count);
  }
  return criteria_type(llf, aic, bics);
}

// rank_quantile(values (B, R, K), level) -> (B, K): bootstrap.h's quantile
// of each (b, k)'s R values.
at::Tensor rank_quantiles(const at::Tensor& values_in, double level) {
  const auto values = checked(values_in, "values", 3);
  TORCH_CHECK_VALUE(0 < level && level < 1, "level must be in (0, 1), but got ", level);
  const int64_t curves = values.size(0), r = values.size(1), k = values.size(2);
  auto out = at::empty({curves, k}, at::kDouble);
  const double* v = values.const_data_ptr<double>();
  for (int64_t b = 0; b < curves; ++b) {
    for (int64_t j = 0; j < k; ++j) {
      std::vector<double> column(r);
      for (int64_t i = 0; i < r; ++i) column[i] = v[(b * r + i) * k + j];
      out.mutable_data_ptr<double>()[b * k + j] = rank_quantile(std::move(column), level);
    }
  }
  return out;
}

}  // namespace

void bind(py::module_& m) {
  py::enum_<FitStatus>(m, "FitStatus", "Why a curve could not be fitted (csrc/curve/options.h).")
      .value("ok", FitStatus::kOk)
      .value("too_few_points", FitStatus::kTooFewPoints)
      .value("constant_x", FitStatus::kConstantX)
      .value("infeasible", FitStatus::kInfeasible);
  py::enum_<Select>(m, "Select", "How fit_curves sets the number of units (csrc/curve/select.h).")
      .value("fixed", Select::kFixed)
      .value("bic", Select::kBic)
      .value("cv", Select::kCv);
  py::enum_<Loss>(m, "Loss", "What fit_curves minimises.")
      .value("squared", Loss::kSquared)
      .value("absolute", Loss::kAbsolute);
  curve_search_type = named_tuple(m, "CurveSearch", {"status", "points", "x_shift", "x_scale",
      "y_shift", "y_scale", "u_min", "u_max", "breakpoints", "coef", "traces", "units",
      "scores"}).release();
  breakpoint_intervals_type = named_tuple(m, "BreakpointIntervals", {"low", "high", "limits",
      "slopes", "intercepts", "se_slopes", "se_intercepts", "least_slopes", "greatest_slopes",
      "least_intercepts", "greatest_intercepts"}).release();
  curve_lines_type = named_tuple(m, "CurveLines", {"slopes", "intercepts", "se_slopes",
      "se_intercepts", "se_breakpoints"}).release();
  criteria_type = named_tuple(m, "FitCriteria", {"log_likelihood", "aic", "bic"}).release();
  hinge_solution_type = named_tuple(m, "HingeSolution", {"mse", "coef", "grad"}).release();
  minimized_type = named_tuple(m, "Minimized", {"breakpoints", "trace"}).release();
  constrained_solution_type =
      named_tuple(m, "ConstrainedSolution", {"feasible", "z", "nu", "mu"}).release();

  py::class_<PyHingeLeastSquares>(m, "HingeLeastSquares",
                                  "One fit's sorted points; see csrc/curve/hinge_lstsq.h.")
      .def(py::init<const at::Tensor&, const at::Tensor&, py::object>(), py::arg("u"),
           py::arg("columns"), py::arg("reduce"))
      .def("solve", &PyHingeLeastSquares::solve, py::arg("t"),
           "HingeSolution(mse, coef, grad) at breakpoints t: the best c, α, β and the error's "
           "gradient.")
      .def("suffix_sums", &PyHingeLeastSquares::suffix_sums, py::arg("t"),
           "(5, H): S0, S1, S2, V0, V1 over the points right of each breakpoint.")
      .def("minimize", &PyHingeLeastSquares::minimize, py::arg("t"), py::arg("max_iter"),
           "Minimized(breakpoints, trace): L-BFGS from t, the sorted breakpoints and the error "
           "at every evaluation.");
  m.def("fit_curves", &fit_curves, py::arg("x"), py::arg("y"), py::arg("w"), py::arg("units"),
        py::arg("select"), py::arg("folds"), py::arg("loss"), py::arg("seed"),
        py::arg("restarts"), py::arg("max_iter"), py::arg("revive"), py::arg("mae_rounds"),
        py::arg("monotone"), py::arg("convex"), py::arg("breakpoints"), py::arg("through_x"),
        py::arg("through_y"), py::arg("sum"), py::arg("max"),
        "fit_curve's search for each row of x, y: a CurveSearch (csrc/curve/fit.h, select.h).");
  m.def("breakpoint_intervals", &breakpoint_intervals_of, py::arg("x"), py::arg("y"),
        py::arg("w"), py::arg("t"), py::arg("limit"), py::arg("step") = py::none(),
        py::arg("replicates") = 0, py::arg("level") = 0.95, py::arg("dof") = py::none(),
        py::arg("seed") = 0, py::arg("bootstrap") = py::none(),
        py::arg("through_x") = py::none(), py::arg("through_y") = py::none(),
        "BreakpointIntervals: profile-likelihood intervals of each row's breakpoints, the limits "
        "of those `bootstrap` marks (None: all) calibrated by a parametric bootstrap when "
        "replicates > 0, the replicates' slopes and intercepts and their standard errors, and "
        "the lines at the bootstrapped intervals' ends (csrc/curve/intervals.h, bootstrap.h).");
  m.def("curve_lines", &curve_lines, py::arg("x"), py::arg("w"), py::arg("t"), py::arg("coef"),
        py::arg("sigma"), py::arg("breakpoints_estimated"), py::arg("through_x") = py::none(),
        "CurveLines: each row's segment lines and the delta-method standard errors of the lines "
        "and breakpoints (csrc/curve/lines.h).");
  m.def("fit_criteria", &fit_criteria, py::arg("x"), py::arg("y"), py::arg("w"), py::arg("rss"),
        py::arg("parameters"),
        "FitCriteria(log_likelihood, aic, bic) of each row's fit (csrc/curve/criteria.h).");
  m.def("free_parameters", &free_parameters, py::arg("units"), py::arg("through"),
        py::arg("breakpoints_estimated"),
        "The free parameters of a fit of `units` segments (csrc/curve/criteria.h).");
  m.def("rank_quantile", &rank_quantiles, py::arg("values"), py::arg("level"),
        "(B, K): the level-quantile of each (B, R, K) row's non-NaN values over R "
        "(csrc/curve/bootstrap.h); NaN for none.");
  m.def("exact_sums", &exact_sums, py::arg("values"), py::arg("segment"), py::arg("segments"),
        "(R, segments, digits): exact sums of each row's values per segment (csrc/curve/exact_sum.h).");
  m.def("constrained_lstsq", &constrained_lstsq, py::arg("G"), py::arg("g"), py::arg("E"),
        py::arg("d"), py::arg("C"), py::arg("h"),
        "ConstrainedSolution(feasible, z, nu, mu): min zᵀGz − 2gᵀz s.t. E·z = d, C·z >= h, "
        "float64 CPU; the multipliers satisfy 2(Gz − g) = Eᵀnu + Cᵀmu, mu >= 0 "
        "(csrc/curve/constrained_lstsq.h).");
  m.def("exact_round", &exact_round, py::arg("digits"),
        "The exact sums held in digits (from exact_sums, possibly all-reduced), rounded to float64.");
}

}  // namespace relu_ext::curve
