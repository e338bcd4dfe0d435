// CUDA launchers of relu_sum_linear and relu_sum_linear_backward (the dense
// algorithm): argument checks, dtype dispatch, launch shapes, block slots and
// the choice of compile-time gradient variant. The kernels are in
// relu_sum_linear_kernels.cuh. Headers are kept to ATen core and c10, as in
// relu_sum_cuda.cu (the toolkit here is partial, and nvcc is faster so).
//
// The breakpoint variants (relu_sum_linear_breakpoints*) have no CUDA kernels
// yet: a CUDA tensor gets a NotImplementedError saying so (registered below),
// rather than the dense kernels under the breakpoint op's name.
#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <tuple>

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include "../checks.h"
#include "../kernel_inputs.h"
#include "launch_shapes.h"
#include "relu_sum_linear_kernels.cuh"

namespace relu_ext::cuda {
namespace {

int64_t linear_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

dim3 linear_grid(int64_t blocks, const char* what) {
  TORCH_CHECK(blocks <= std::numeric_limits<int32_t>::max(), "relu_sum_linear: ", blocks,
              " CUDA blocks for ", what, " are more than a grid holds");
  return dim3(static_cast<unsigned>(blocks));
}

// A (optional) parameter in the compute dtype, contiguous.
template <class A>
const A* ptr_or_null(const std::optional<at::Tensor>& t) {
  return t ? t->const_data_ptr<A>() : nullptr;
}

at::Tensor relu_sum_linear_cuda(const at::Tensor& x_in, const at::Tensor& m_in,
                                const at::Tensor& b_in, const at::Tensor& a_in,
                                const std::optional<at::Tensor>& bias_in) {
  check_relu_sum_linear_args("relu_sum_linear", x_in, m_in, b_in, a_in, bias_in);
  const DeviceGuard guard(x_in.device());
  const auto acc = compute_dtype(x_in.scalar_type());
  const auto x = x_in.contiguous();
  const auto m = as_kernel_input(m_in, acc), b = as_kernel_input(b_in, acc),
             a = as_kernel_input(a_in, acc);
  std::optional<at::Tensor> bias;
  if (bias_in) bias = as_kernel_input(*bias_in, acc);
  const LinearShape s{x.size(0), x.size(1), m.size(1), a.size(0)};
  auto y = at::empty({s.n, s.outputs}, x.options());
  if (s.n == 0 || s.outputs == 0) return y;
  // Output tiles, o fastest (blocks running together share an n tile).
  const dim3 grid = linear_grid(
      linear_ceil_div(s.n, kLinearTile) * linear_ceil_div(s.outputs, kLinearTile), "y");
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "relu_sum_linear_cuda", [&] {
    using A = acc_t<scalar_t>;
    constexpr auto kernel =
        linear_forward_kernel<scalar_t, kLinearThreads, kLinearSide, kLinearTile, kLinearStep>;
    RELU_EXT_LAUNCH(kernel, grid, dim3(kLinearThreads), 0, current_stream(),
                    x.const_data_ptr<scalar_t>(), m.const_data_ptr<A>(), b.const_data_ptr<A>(),
                    a.const_data_ptr<A>(), ptr_or_null<A>(bias), s,
                    y.mutable_data_ptr<scalar_t>());
  });
  return y;
}

// Σ over the slot rows of `partial` ([slots, cols] in the compute dtype):
// the row itself for one slot, else reduce_blocks_kernel's fixed-shape sum.
template <class A>
at::Tensor sum_slots(const at::Tensor& partial, int64_t slots, int64_t cols) {
  if (slots == 1) return partial.view({cols});
  at::Tensor total = at::empty({cols}, partial.options());
  constexpr auto kernel = reduce_blocks_kernel<A, kReduceWarps>;
  RELU_EXT_LAUNCH(kernel, linear_grid(linear_ceil_div(cols, kReduceWarps), "the reduction"), dim3(32, kReduceWarps), 0, current_stream(),
                  partial.const_data_ptr<A>(), slots, cols, total.mutable_data_ptr<A>());
  return total;
}

// dx (into dx, when asked for) and dm, db ([rows, I·K] in the compute dtype,
// rows = those asked for, dm first) by linear_grad_t_kernel. N, I > 0.
template <class T, unsigned kGrads>
at::Tensor grads_t(const LinearShape& s, const T* x, const T* g, const acc_t<T>* m,
                   const acc_t<T>* b, const acc_t<T>* a, T* dx,
                   const at::TensorOptions& acc_options) {
  using A = acc_t<T>;
  constexpr int rows = LinearGradRows<kGrads>::count;
  // Block slots per input: they share kMaxBlocks, each input gets at least
  // one and each slot at least one n tile; fixed by the shapes alone, so
  // every sum has one order. The buffer holds at most max(kMaxBlocks, I)·G·K
  // values.
  const int64_t slots = std::min<int64_t>(linear_ceil_div(s.n, kLinearTile),
                                          std::max<int64_t>(kMaxBlocks / s.inputs, 1));
  at::Tensor partial;
  if (rows) partial = at::empty({slots, rows * s.hinges()}, acc_options);
  constexpr auto kernel =
      linear_grad_t_kernel<T, kGrads, kLinearThreads, kLinearSide, kLinearTile, kLinearStep>;
  RELU_EXT_LAUNCH(kernel, linear_grid(slots * s.inputs, "dx, dm, db"), dim3(kLinearThreads), 0,
                  current_stream(), x, g, m, b, a, s, dx,
                  rows ? partial.mutable_data_ptr<A>() : nullptr);
  if (!rows) return {};
  // [slots, rows, I·K] summed over slots: columns are (row, unit) pairs.
  return sum_slots<A>(partial, slots, rows * s.hinges()).view({rows, s.hinges()});
}

// The runtime set of gradients as one compile-time variant: what is not
// asked for costs nothing.
template <class T, unsigned Bits = 1>
at::Tensor grads_t_dispatch(unsigned bits, const LinearShape& s, const T* x, const T* g,
                            const acc_t<T>* m, const acc_t<T>* b, const acc_t<T>* a, T* dx,
                            const at::TensorOptions& acc_options) {
  if constexpr (Bits < 8) {
    if (bits == Bits) return grads_t<T, Bits>(s, x, g, m, b, a, dx, acc_options);
    return grads_t_dispatch<T, Bits + 1>(bits, s, x, g, m, b, a, dx, acc_options);
  } else {
    TORCH_INTERNAL_ASSERT(false, "relu_sum_linear_backward: no kernel for gradient set ", bits);
  }
}

// da (O·I·K values in the compute dtype) by linear_grad_a_kernel. N, O, I·K > 0.
template <class T>
at::Tensor grad_a(const LinearShape& s, const T* x, const T* g, const acc_t<T>* m,
                  const acc_t<T>* b, const at::TensorOptions& acc_options) {
  using A = acc_t<T>;
  const int64_t tiles =
      linear_ceil_div(s.outputs, kLinearTile) * linear_ceil_div(s.hinges(), kLinearTile);
  // Slots per tile as for dx: at most max(kMaxBlocks, tiles) blocks, so the
  // buffer holds at most max(kMaxBlocks·kLinearTile², O·I·K) values.
  const int64_t slots = std::min<int64_t>(linear_ceil_div(s.n, kLinearStep),
                                          std::max<int64_t>(kMaxBlocks / tiles, 1));
  at::Tensor partial = at::empty({slots, s.outputs * s.hinges()}, acc_options);
  constexpr auto kernel =
      linear_grad_a_kernel<T, kLinearThreads, kLinearSide, kLinearTile, kLinearStep>;
  RELU_EXT_LAUNCH(kernel, linear_grid(slots * tiles, "da"), dim3(kLinearThreads), 0,
                  current_stream(), x, g, m, b, s, partial.mutable_data_ptr<A>());
  return sum_slots<A>(partial, slots, s.outputs * s.hinges());
}

using Grads = std::tuple<std::optional<at::Tensor>, std::optional<at::Tensor>,
                         std::optional<at::Tensor>, std::optional<at::Tensor>>;

Grads relu_sum_linear_backward_cuda(const at::Tensor& grad_in, const at::Tensor& x_in,
                                    const at::Tensor& m_in, const at::Tensor& b_in,
                                    const at::Tensor& a_in, std::array<bool, 4> output_mask) {
  const char* op = "relu_sum_linear_backward";
  check_relu_sum_linear_args(op, x_in, m_in, b_in, a_in, std::nullopt);
  check_linear_grad(op, grad_in, x_in, a_in);
  const DeviceGuard guard(x_in.device());
  const auto dtype = x_in.scalar_type();
  const auto acc = compute_dtype(dtype);
  const auto x = x_in.contiguous(), g = grad_in.contiguous();
  const auto m = as_kernel_input(m_in, acc), b = as_kernel_input(b_in, acc),
             a = as_kernel_input(a_in, acc);
  const LinearShape s{x.size(0), x.size(1), m.size(1), a.size(0)};
  const auto acc_options = x.options().dtype(acc);
  const bool need_x = output_mask[0], need_m = output_mask[1], need_b = output_mask[2],
             need_a = output_mask[3];

  std::optional<at::Tensor> dx, dm, db, da;
  if (need_x) dx = at::empty({s.n, s.inputs}, x.options());
  // dm, db: zeros without samples or units; da: without samples, outputs or hinges.
  const bool mb_kernel = (need_m || need_b) && s.n > 0 && s.hinges() > 0;
  const unsigned bits = (need_x && s.n > 0 && s.inputs > 0 ? kLinearGradX : 0u) |
                        (mb_kernel && need_m ? kLinearGradM : 0u) |
                        (mb_kernel && need_b ? kLinearGradB : 0u);
  at::Tensor sums, da_sum;  // [rows, I·K] (dm, db asked for) and [O·I·K], compute dtype
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "relu_sum_linear_backward_cuda", [&] {
    using A = acc_t<scalar_t>;
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    const A *mp = m.const_data_ptr<A>(), *bp = b.const_data_ptr<A>(), *ap = a.const_data_ptr<A>();
    if (bits)
      sums = grads_t_dispatch<scalar_t>(bits, s, xp, gp, mp, bp, ap,
                                        bits & kLinearGradX ? dx->mutable_data_ptr<scalar_t>()
                                                            : nullptr,
                                        acc_options);
    if (need_a && s.n > 0 && s.outputs > 0 && s.hinges() > 0)
      da_sum = grad_a<scalar_t>(s, xp, gp, mp, bp, acc_options);
  });
  // In the parameters' dtype (float32 for a 16-bit x with float32 ones).
  const auto param_options = m_in.options();
  int64_t row = 0;
  const auto unit_grad = [&]() -> at::Tensor {
    if (!mb_kernel) return at::zeros(m_in.sizes(), param_options);
    return sums[row++].view(m_in.sizes()).to(m_in.scalar_type());
  };
  if (need_m) dm = unit_grad();
  if (need_b) db = unit_grad();
  if (need_a)
    da = da_sum.defined() ? da_sum.view(a_in.sizes()).to(a_in.scalar_type())
                          : at::zeros(a_in.sizes(), a_in.options());
  return {dx, dm, db, da};
}

[[noreturn]] void breakpoints_not_implemented(const char* op) {
  TORCH_CHECK_NOT_IMPLEMENTED(false, op,
                              "(): the breakpoint algorithm has no CUDA kernels yet; "
                              "relu_sum_linear (the dense algorithm) runs on CUDA");
}

}  // namespace

RELU_EXT_CUDA_IMPL(lib) {
  lib.impl("relu_sum_linear", &relu_sum_linear_cuda);
  lib.impl("relu_sum_linear_backward", &relu_sum_linear_backward_cuda);
  lib.impl("relu_sum_linear_breakpoints",
           [](const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
              const std::optional<at::Tensor>&) -> at::Tensor {
             breakpoints_not_implemented("relu_sum_linear_breakpoints");
           });
  lib.impl("relu_sum_linear_breakpoints_backward",
           [](const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
              const at::Tensor&, std::array<bool, 4>) -> Grads {
             breakpoints_not_implemented("relu_sum_linear_breakpoints_backward");
           });
}

}  // namespace relu_ext::cuda
