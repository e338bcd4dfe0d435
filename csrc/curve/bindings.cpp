#include "bindings.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/csrc/utils/pybind.h>

#include "exact_sum.h"
#include "hinge_lstsq.h"
#include "lbfgs.h"

namespace relu_ext::curve {
namespace {

namespace py = pybind11;

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

class PyHingeLeastSquares {
 public:
  PyHingeLeastSquares(const at::Tensor& u, const at::Tensor& columns, py::object reduce)
      : u_(checked(u, "u", 1)),
        columns_(checked_columns(columns, u_)),
        ls_(u_.const_data_ptr<double>(), columns_.const_data_ptr<double>(), u_.numel(),
            python_reduce(std::move(reduce))) {}

  std::tuple<double, at::Tensor, at::Tensor> solve(const at::Tensor& t) {
    const auto x = to_vector(t);
    const auto& s = ls_.solve(x.data(), static_cast<int64_t>(x.size()));
    return {s.mse, to_tensor(s.coef), to_tensor(s.grad)};
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
  std::pair<at::Tensor, std::vector<double>> minimize(const at::Tensor& t, int64_t max_iter) {
    auto x = to_vector(t);
    const auto h = static_cast<int64_t>(x.size());
    // The tolerances are absolute: the error is measured relative to where
    // this run starts (the first evaluation), so that a fit already good to
    // 1e-9 still gets refined.
    double scale = 0;
    std::vector<double> trace;
    const Objective error = [&](const std::vector<double>& at, std::vector<double>& grad) {
      const auto& s = ls_.solve(at.data(), h);
      trace.push_back(s.mse);
      if (scale == 0) scale = std::isfinite(s.mse) ? std::max(s.mse, 1e-300) : 1.0;
      for (int64_t k = 0; k < h; ++k) grad[k] = s.grad[k] / scale;
      return s.mse / scale;
    };
    LbfgsOptions options;
    options.max_iter = max_iter;
    options.max_eval = max_iter + max_iter / 4;
    minimize_lbfgs(error, x, options);
    std::sort(x.begin(), x.end());
    return {to_tensor(x), std::move(trace)};
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

}  // namespace

void bind(py::module_& m) {
  py::class_<PyHingeLeastSquares>(m, "HingeLeastSquares",
                                  "One fit's sorted points; see csrc/curve/hinge_lstsq.h.")
      .def(py::init<const at::Tensor&, const at::Tensor&, py::object>(), py::arg("u"),
           py::arg("columns"), py::arg("reduce"))
      .def("solve", &PyHingeLeastSquares::solve, py::arg("t"),
           "(mse, coef, grad) at breakpoints t: the best c, α, β and the error's gradient.")
      .def("suffix_sums", &PyHingeLeastSquares::suffix_sums, py::arg("t"),
           "(5, H): S0, S1, S2, V0, V1 over the points right of each breakpoint.")
      .def("minimize", &PyHingeLeastSquares::minimize, py::arg("t"), py::arg("max_iter"),
           "L-BFGS from t: (sorted breakpoints, the error at every evaluation).");
  m.def("exact_sums", &exact_sums, py::arg("values"), py::arg("segment"), py::arg("segments"),
        "(R, segments, digits): exact sums of each row's values per segment (csrc/curve/exact_sum.h).");
  m.def("exact_round", &exact_round, py::arg("digits"),
        "The exact sums held in digits (from exact_sums, possibly all-reduced), rounded to float64.");
}

}  // namespace relu_ext::curve
