// CPU kernels of relu_sum_breakpoints and its backward: the N-level passes of
// the breakpoint algorithm (breakpoint_table.h has the K-level half and the
// method). Each input costs one lookup (interval_index.h) instead of K units:
//   forward   y  = slope[i]·x + intercept[i]
//   backward  dx = g·slope[i];   g and g·x summed per interval i
// These loops are hand-written because the ATen equivalents measured far too
// slow on this project's busy 2-core machine (N = 262,144, K = 4,096): one
// torch.searchsorted ~25 ms, one torch.sort of x ~30 ms, against ~8 ms for
// this op's whole forward + backward.
//
// Inputs, parameters or an incoming gradient that are not all finite go to
// the dense kernels, so NaN and ±Inf behave exactly as there; so do K = 0 and
// empty inputs.
#include <algorithm>
#include <array>
#include <atomic>
#include <limits>
#include <optional>
#include <tuple>

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include "../checks.h"
#include "breakpoint_table.h"
#include "interval_index.h"

namespace relu_ext::breakpoints {
namespace {

using Grads = std::tuple<std::optional<at::Tensor>, std::optional<at::Tensor>,
                         std::optional<at::Tensor>, std::optional<at::Tensor>>;

at::Tensor dense_relu_sum(const at::Tensor& x, const at::Tensor& m, const at::Tensor& b,
                          const std::optional<at::Tensor>& a) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("relu_ext::relu_sum", "")
          .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                            const std::optional<at::Tensor>&)>();
  return op.call(x, m, b, a);
}

Grads dense_relu_sum_backward(const at::Tensor& grad, const at::Tensor& x,
                              const at::Tensor& m, const at::Tensor& b,
                              const std::optional<at::Tensor>& a,
                              std::array<bool, 4> output_mask) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("relu_ext::relu_sum_backward", "")
          .typed<Grads(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                       const at::Tensor&, const std::optional<at::Tensor>&,
                       std::array<bool, 4>)>();
  return op.call(grad, x, m, b, a, output_mask);
}

// Whether every element is finite: x - x is 0 exactly for finite x and NaN
// for ±inf and NaN. (torch.isfinite(t).all() makes five passes, five thread
// wake-ups, and measured several ms at N = 262,144 on the busy 2-core machine;
// the inputs' check is fused into the passes below instead.)
template <class T>
bool all_finite(const T* p, int64_t n) {
  bool ok = true;
  for (int64_t i = 0; i < n; ++i) ok &= (p[i] - p[i] == T(0));
  return ok;
}

// The units' parameters in float64, contiguous, when all are finite.
struct Params {
  at::Tensor m, b;
  std::optional<at::Tensor> a;

  UnitParams view() const {
    return {m.const_data_ptr<double>(), b.const_data_ptr<double>(),
            a ? a->const_data_ptr<double>() : nullptr, m.numel()};
  }
};

std::optional<Params> finite_params(const at::Tensor& m, const at::Tensor& b,
                                    const std::optional<at::Tensor>& a) {
  const auto as_double = [](const at::Tensor& t) { return t.to(at::kDouble).contiguous(); };
  Params p{as_double(m), as_double(b), a ? std::optional(as_double(*a)) : std::nullopt};
  for (const auto* t : {&p.m, &p.b, p.a ? &*p.a : &p.m})
    if (!all_finite(t->const_data_ptr<double>(), t->numel())) return std::nullopt;
  return p;
}

at::Tensor as_kernel_input(const at::Tensor& t, at::ScalarType dtype) {
  return t.to(dtype).contiguous();
}

// IntervalIndex counts events in 32 bits.
void check_unit_count(const char* op, const at::Tensor& m) {
  TORCH_CHECK_VALUE(m.numel() < std::numeric_limits<int32_t>::max(), op,
                    "(): at most 2^31 - 2 units, but got ", m.numel(),
                    "; use algorithm=\"dense\"");
}

// Inputs per parallel task of the element-wise passes, and per block whose
// intervals are located together (IntervalIndex::locate) before use.
constexpr int64_t kGrain = 4096, kBlock = 256;

at::Tensor relu_sum_breakpoints_cpu(const at::Tensor& x_in, const at::Tensor& m,
                                    const at::Tensor& b, const std::optional<at::Tensor>& a) {
  check_relu_sum_args("relu_sum_breakpoints", x_in, m, b, a);
  check_unit_count("relu_sum_breakpoints", m);
  // K = 0 and an empty x are the dense op's trivial cases.
  if (x_in.numel() == 0 || m.numel() == 0) return dense_relu_sum(x_in, m, b, a);
  const auto params = finite_params(m, b, a);
  if (!params) return dense_relu_sum(x_in, m, b, a);
  const auto dtype = compute_dtype(x_in.scalar_type());
  const auto x = as_kernel_input(x_in, dtype);
  auto y = at::empty(x.sizes(), x.options());
  std::atomic<bool> x_finite{true};

  AT_DISPATCH_FLOATING_TYPES(dtype, "relu_sum_breakpoints_cpu", [&] {
    const auto table = make_breakpoint_table<scalar_t>(params->view());
    const IntervalIndex<scalar_t> index(table.events);
    const double* line = table.line.data();
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* yp = y.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) {
      bool finite = true;
      int64_t interval[kBlock];
      for (int64_t block = begin; block < end; block += kBlock) {
        const int64_t len = std::min(kBlock, end - block);
        index.locate(xp + block, len, interval);
        for (int64_t j = 0; j < len; ++j) {
          const scalar_t xn = xp[block + j];
          const int64_t i = interval[j];
          finite &= (xn - xn == scalar_t(0));
          yp[block + j] =
              static_cast<scalar_t>(line[2 * i] * static_cast<double>(xn) + line[2 * i + 1]);
        }
      }
      if (!finite) x_finite.store(false, std::memory_order_relaxed);
    });
  });
  if (!x_finite.load()) return dense_relu_sum(x_in, m, b, a);
  return y.to(x_in.scalar_type());
}

// The per-interval sums are taken per chunk of inputs, then added in chunk
// order: chunk boundaries depend on N and K only, never on the thread count,
// so the result is bitwise reproducible. Each chunk holds at least
// 2·(K + 1) inputs, so its accumulators are no bigger than its inputs and
// adding them up (serially) costs at most half a pass over the inputs.
constexpr int64_t kMaxChunks = 16, kMinChunkInputs = 16384;

int64_t chunk_count(int64_t n, int64_t k) {
  return std::clamp<int64_t>(n / std::max(kMinChunkInputs, 2 * (k + 1)), 1, kMaxChunks);
}

Grads relu_sum_breakpoints_backward_cpu(const at::Tensor& grad_in, const at::Tensor& x_in,
                                        const at::Tensor& m, const at::Tensor& b,
                                        const std::optional<at::Tensor>& a,
                                        std::array<bool, 4> output_mask) {
  check_relu_sum_args("relu_sum_breakpoints_backward", x_in, m, b, a);
  check_grad("relu_sum_breakpoints_backward", grad_in, x_in);
  check_unit_count("relu_sum_breakpoints_backward", m);
  const auto dense = [&] { return dense_relu_sum_backward(grad_in, x_in, m, b, a, output_mask); };
  if (x_in.numel() == 0 || m.numel() == 0) return dense();
  const auto params = finite_params(m, b, a);
  if (!params) return dense();
  const auto out_dtype = x_in.scalar_type();
  const auto dtype = compute_dtype(out_dtype);
  const auto x = as_kernel_input(x_in, dtype), g = as_kernel_input(grad_in, dtype);
  const int64_t n = x.numel(), k = m.numel();
  const bool need_x = output_mask[0], need_m = output_mask[1], need_b = output_mask[2],
             need_a = output_mask[3] && a.has_value();
  const bool need_sums = need_m || need_b || need_a;
  if (!need_x && !need_sums) return {};

  std::optional<at::Tensor> dx, dm, db, da;
  if (need_x) dx = at::empty(x.sizes(), x.options());
  const auto f64 = x.options().dtype(at::kDouble);
  if (need_m) dm = at::empty({k}, f64);
  if (need_b) db = at::empty({k}, f64);
  if (need_a) da = at::empty({k}, f64);
  const int64_t chunks = need_sums ? chunk_count(n, k) : 0;
  // sums[c][i][0], sums[c][i][1]: chunk c's sums of g and of g·x over interval i.
  auto sums = at::empty({chunks, k + 1, 2}, f64);
  std::atomic<bool> inputs_finite{true};

  AT_DISPATCH_FLOATING_TYPES(dtype, "relu_sum_breakpoints_backward_cpu", [&] {
    const auto table = make_breakpoint_table<scalar_t>(params->view());
    const IntervalIndex<scalar_t> index(table.events);
    const double* line = table.line.data();
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    scalar_t* dxp = need_x ? dx->mutable_data_ptr<scalar_t>() : nullptr;
    // Checks x and g finite in [begin, end), writes dx there and, when
    // `acc` is given, adds g and g·x of interval i into acc[2i], acc[2i + 1].
    const auto pass = [&](int64_t begin, int64_t end, double* acc) {
      bool finite = true;
      int64_t interval[kBlock];
      for (int64_t block = begin; block < end; block += kBlock) {
        const int64_t len = std::min(kBlock, end - block);
        index.locate(xp + block, len, interval);
        for (int64_t j = block; j < block + len; ++j) {
          const scalar_t xj = xp[j], gj = gp[j];
          const int64_t i = interval[j - block];
          finite &= (xj - xj == scalar_t(0)) & (gj - gj == scalar_t(0));
          if (dxp) dxp[j] = static_cast<scalar_t>(gj * line[2 * i]);
          if (acc) {
            acc[2 * i] += gj;
            acc[2 * i + 1] += static_cast<double>(gj) * static_cast<double>(xj);
          }
        }
      }
      if (!finite) inputs_finite.store(false, std::memory_order_relaxed);
    };
    if (!need_sums) {
      at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) { pass(begin, end, nullptr); });
      return;
    }
    double* sp = sums.mutable_data_ptr<double>();
    const int64_t stride = 2 * (k + 1), per_chunk = (n + chunks - 1) / chunks;
    at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        std::fill(sp + c * stride, sp + (c + 1) * stride, 0.0);
        pass(c * per_chunk, std::min(n, (c + 1) * per_chunk), sp + c * stride);
      }
    });
    if (!inputs_finite.load()) return;
    // Chunk 0 plus chunk 1 plus ..., per interval, in that order.
    for (int64_t c = 1; c < chunks; ++c)
      for (int64_t i = 0; i < stride; ++i) sp[i] += sp[c * stride + i];
    const auto out = [](std::optional<at::Tensor>& t) {
      return t ? t->mutable_data_ptr<double>() : nullptr;
    };
    unit_gradients(table, sp, params->view(), out(dm), out(db), out(da));
  });
  if (!inputs_finite.load()) return dense();
  // dx in x's dtype, dm, db, da in the units'.
  const auto result = [](std::optional<at::Tensor>& t, at::ScalarType dtype) {
    return t ? std::optional(t->to(dtype)) : std::nullopt;
  };
  const auto param_dtype = m.scalar_type();
  return {result(dx, out_dtype), result(dm, param_dtype), result(db, param_dtype),
          result(da, param_dtype)};
}

}  // namespace

TORCH_LIBRARY_IMPL(relu_ext, CPU, lib) {
  lib.impl("relu_sum_breakpoints", &relu_sum_breakpoints_cpu);
  lib.impl("relu_sum_breakpoints_backward", &relu_sum_breakpoints_backward_cpu);
}

}  // namespace relu_ext::breakpoints
