// CPU launchers of relu_sum and relu_sum_backward: dtype and layout handling,
// threads, and the fixed-order reduction over inputs. The arithmetic is in the
// kernels (relu_sum_kernels.h), chosen per instruction set (kernel_table.h).
#include <algorithm>
#include <array>
#include <optional>
#include <tuple>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include "../checks.h"
#include "../kernel_inputs.h"
#include "kernel_table.h"

namespace relu_ext::cpu {
namespace {

// About this many (input, unit) pairs per task before a thread is worth
// waking: the lesson's 20 points × 8 units stay on the calling thread.
constexpr int64_t kPairsPerTask = 1 << 15;

// relu_sum and step_sum: a sum over the units for each input, by the kernel
// `pick` chooses from the instruction set's table.
template <class Pick>
at::Tensor sum_over_units(const char* op, const at::Tensor& x_in, const at::Tensor& m_in,
                          const at::Tensor& b_in, const std::optional<at::Tensor>& a_in,
                          const char* a_name, Pick pick) {
  check_relu_sum_args(op, x_in, m_in, b_in, a_in, a_name);
  // The kernels read contiguous arrays of the compute dtype: float16 and
  // bfloat16 are widened (O(N + K) memory, never N×K), strided inputs packed.
  const auto dtype = compute_dtype(x_in.scalar_type());
  const auto x = as_kernel_input(x_in, dtype);
  const auto m = as_kernel_input(m_in, dtype), b = as_kernel_input(b_in, dtype);
  std::optional<at::Tensor> a;
  if (a_in) a = as_kernel_input(*a_in, dtype);
  auto y = at::empty(x.sizes(), x.options());
  const int64_t n = x.numel(), units = m.numel();

  AT_DISPATCH_FLOATING_TYPES(dtype, "sum_over_units_cpu", [&] {
    const ForwardFn<scalar_t> kernel = pick(kernels(), scalar_t{});
    const auto u = units_of<scalar_t>(m, b, a);
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* yp = y.mutable_data_ptr<scalar_t>();
    const int64_t grain = std::max<int64_t>(1, kPairsPerTask / std::max<int64_t>(units, 1));
    at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
      kernel(xp + begin, yp + begin, end - begin, u);
    });
  });
  return as_dtype(y, x_in.scalar_type());
}

at::Tensor relu_sum_cpu(const at::Tensor& x, const at::Tensor& m, const at::Tensor& b,
                        const std::optional<at::Tensor>& a) {
  return sum_over_units("relu_sum", x, m, b, a, "a", [](const KernelTable& t, auto s) {
    return t.forward<decltype(s)>();
  });
}

at::Tensor step_sum_cpu(const at::Tensor& x, const at::Tensor& m, const at::Tensor& b,
                        const at::Tensor& w) {
  return sum_over_units("step_sum", x, m, b, w, "w", [](const KernelTable& t, auto s) {
    return t.step<decltype(s)>();
  });
}

// The sums over inputs (dm, db, da) are taken per chunk of inputs, then the
// chunks' partial sums are added in chunk order. Chunk boundaries depend on N
// and K alone, never on the thread count, so every result is bitwise
// reproducible. The partial sums take chunks × 3 × K values: at most 256
// chunks, and fewer for large K, so they stay within kMaxPartialSums.
constexpr int64_t kMaxChunks = 256;
constexpr int64_t kMaxPartialSums = int64_t{1} << 22;

template <class T>
int64_t chunk_size(int64_t n, int64_t units) {
  const int64_t span = kBackwardSpan<T>;
  const int64_t max_chunks =
      std::clamp<int64_t>(kMaxPartialSums / (3 * std::max<int64_t>(units, 1)), 1, kMaxChunks);
  const int64_t spans = (n + span * max_chunks - 1) / (span * max_chunks);
  return std::max<int64_t>(spans, 1) * span;
}

using Grads = std::tuple<std::optional<at::Tensor>, std::optional<at::Tensor>,
                         std::optional<at::Tensor>, std::optional<at::Tensor>>;

Grads relu_sum_backward_cpu(const at::Tensor& grad_in, const at::Tensor& x_in,
                            const at::Tensor& m_in, const at::Tensor& b_in,
                            const std::optional<at::Tensor>& a_in,
                            std::array<bool, 4> output_mask) {
  check_relu_sum_args("relu_sum_backward", x_in, m_in, b_in, a_in);
  check_grad("relu_sum_backward", grad_in, x_in);
  // dx in x's dtype, dm, db, da in the units' (float32 for a 16-bit x with
  // float32 units).
  const auto out_dtype = x_in.scalar_type(), param_dtype = m_in.scalar_type();
  const auto dtype = compute_dtype(out_dtype);
  const auto x = as_kernel_input(x_in, dtype), g = as_kernel_input(grad_in, dtype);
  const auto m = as_kernel_input(m_in, dtype), b = as_kernel_input(b_in, dtype);
  std::optional<at::Tensor> a;
  if (a_in) a = as_kernel_input(*a_in, dtype);
  const int64_t n = x.numel(), units = m.numel();

  const bool need_x = output_mask[0], need_m = output_mask[1], need_b = output_mask[2],
             need_a = output_mask[3] && a.has_value();
  const unsigned grads = (need_x ? kGradX : 0) | (need_m ? kGradM : 0) |
                         (need_b ? kGradB : 0) | (need_a ? kGradA : 0);

  std::optional<at::Tensor> dx, dm, db, da;
  if (grads == 0) return {dx, dm, db, da};
  if (need_x) dx = at::empty(x.sizes(), x.options());
  const bool sums_over_inputs = grads & ~kGradX;

  AT_DISPATCH_FLOATING_TYPES(dtype, "relu_sum_backward_cpu", [&] {
    constexpr int64_t span = kBackwardSpan<scalar_t>;
    const int64_t chunk = chunk_size<scalar_t>(n, units);
    const int64_t chunks = (n + chunk - 1) / chunk;
    // partial[c][j][k]: chunk c's sum for gradient j (dm, db, da) of unit k.
    at::Tensor partial;
    if (sums_over_inputs) partial = at::zeros({std::max<int64_t>(chunks, 1), 3, units}, x.options());
    const auto backward = kernels().backward<scalar_t>();
    const auto u = units_of<scalar_t>(m, b, a);
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    scalar_t* dxp = need_x ? dx->mutable_data_ptr<scalar_t>() : nullptr;
    scalar_t* pp = sums_over_inputs ? partial.mutable_data_ptr<scalar_t>() : nullptr;
    const int64_t grain = std::max<int64_t>(1, kPairsPerTask / (chunk * std::max<int64_t>(units, 1)));
    at::parallel_for(0, chunks, grain, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        scalar_t* p = pp ? pp + c * 3 * units : nullptr;
        const int64_t end = std::min(n, (c + 1) * chunk);
        for (int64_t i = c * chunk; i < end; i += span) {
          backward(xp + i, gp + i, dxp ? dxp + i : nullptr, std::min(span, end - i), u, grads,
                   p, p ? p + units : nullptr, p ? p + 2 * units : nullptr);
        }
      }
    });
    // Each gradient its own tensor (outputs must not alias), summed over
    // chunks in chunk order.
    const auto sum_chunks = [&](int64_t j) {
      auto out = at::empty({units}, x.options());
      scalar_t* op = out.mutable_data_ptr<scalar_t>();
      std::copy(pp + j * units, pp + (j + 1) * units, op);
      for (int64_t c = 1; c < chunks; ++c) {
        const scalar_t* p = pp + (c * 3 + j) * units;
        for (int64_t k = 0; k < units; ++k) op[k] += p[k];
      }
      return as_dtype(out, param_dtype);
    };
    if (need_m) dm = sum_chunks(0);
    if (need_b) db = sum_chunks(1);
    if (need_a) da = sum_chunks(2);
  });
  if (dx) dx = as_dtype(*dx, out_dtype);
  return {dx, dm, db, da};
}

}  // namespace

TORCH_LIBRARY_IMPL(relu_ext, CPU, lib) {
  lib.impl("relu_sum", &relu_sum_cpu);
  lib.impl("relu_sum_backward", &relu_sum_backward_cpu);
  lib.impl("step_sum", &step_sum_cpu);
}

}  // namespace relu_ext::cpu
