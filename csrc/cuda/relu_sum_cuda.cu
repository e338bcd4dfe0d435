// CUDA launchers of relu_sum and relu_sum_backward: argument checks, dtype
// dispatch, launch shapes and the choice of compile-time gradient variant.
// The kernels are in relu_sum_kernels.cuh. Headers are kept to ATen core and
// c10 (no torch/extension.h, no ATen/cuda/CUDAContext.h): nvcc then compiles
// this file in a fraction of the time.
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
#include "relu_sum_kernels.cuh"

namespace relu_ext::cuda {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// x (contiguous) as the kernels walk it (channel_layout.h): per-channel x is
// (outer, C, inner) (checks.h); shared units are one channel of all of x.
ChannelLayout layout_of(const at::Tensor& x, const at::Tensor& m) {
  if (m.dim() != 2) return {1, x.numel(), x.numel(), 0, 0, 0, 0, 0};
  const int64_t channels = m.size(0), inner = x.size(2), rows = x.size(0);
  const int64_t width = channels * inner;
  const int64_t tile_width = std::min<int64_t>(std::max<int64_t>(width, 1), kWarpSize);
  return {channels, inner, rows * inner, rows, width, static_cast<int32_t>(tile_width),
          static_cast<int32_t>(kWarpSize / tile_width),
          static_cast<int32_t>(std::min<int64_t>(ceil_div(width, tile_width),
                                                 std::numeric_limits<int32_t>::max()))};
}

// Short runs take the column walk (channel_layout.h): with inner < 32 a warp
// walking one channel would load from several runs C·inner apart, where by
// columns its loads are consecutive inputs of a row. One channel keeps the
// walk without channel arithmetic (its inputs are all of x, consecutive).
bool by_columns(const ChannelLayout& layout) {
  return layout.channels > 1 && layout.inner < kWarpSize;
}

// The column walk's grid: `slices` blocks for each of the layout's column tiles.
dim3 column_grid(const ChannelLayout& layout, int64_t slices) {
  const int64_t blocks = slices * layout.tiles;
  TORCH_CHECK(layout.tiles < std::numeric_limits<int32_t>::max() &&
                  blocks <= std::numeric_limits<int32_t>::max(),
              "relu_ext: ", blocks, " CUDA blocks (", layout.channels, " channels of ",
              layout.positions, " inputs) are more than a grid holds");
  return dim3(static_cast<unsigned>(blocks));
}

// The units as the kernels take them: all C·K parameters, count K per channel.
template <class A>
Units<A> kernel_units(const at::Tensor& m, const at::Tensor& b,
                      const std::optional<at::Tensor>& a) {
  Units<A> u = units_of<A>(m, b, a);
  u.count = m.size(-1);
  return u;
}

// `slices` blocks for each of the layout's channels (channel_layout.h).
dim3 channel_grid(const ChannelLayout& layout, int64_t slices) {
  const int64_t blocks = slices * layout.channels;
  TORCH_CHECK(blocks <= std::numeric_limits<int32_t>::max(), "relu_ext: ", blocks,
              " CUDA blocks (", layout.channels, " channels of ", layout.positions,
              " inputs) are more than a grid holds");
  return dim3(static_cast<unsigned>(blocks));
}

// One channel (shared units, or C = 1) takes the kernel compiled without
// channel arithmetic, whose registers would cost the shared case occupancy;
// short runs the column walk, long ones the walk by channel.
template <class T, bool HasA, Pass P>
void launch_per_input_kernel(const T* x, const T* grad, T* out, const ChannelLayout& layout,
                             Units<acc_t<T>> u) {
  using A = acc_t<T>;
  if (by_columns(layout)) {
    // A block takes kItems row groups of each of its warps (ColumnWalk).
    const int64_t block_rows = int64_t{kItems} * (kThreads / kWarpSize) * layout.tile_rows;
    const dim3 grid = column_grid(layout, ceil_div(layout.rows, block_rows));
    constexpr auto kernel = per_input_kernel<T, HasA, P, Walk::kColumns, kThreads, kItems,
                                             kColumnTileK>;
    RELU_EXT_LAUNCH(kernel, grid, dim3(kThreads),
                    per_input_shared_bytes<A>(kColumnTileK, kWarpSize, HasA), current_stream(),
                    x, grad, out, layout, u);
    return;
  }
  const dim3 grid = channel_grid(layout, ceil_div(layout.positions, kThreads * kItems));
  const int shared_bytes = per_input_shared_bytes<A>(kTileK, 1, HasA);
  if (layout.channels == 1) {
    constexpr auto kernel = per_input_kernel<T, HasA, P, Walk::kOneChannel, kThreads, kItems,
                                             kTileK>;
    RELU_EXT_LAUNCH(kernel, grid, dim3(kThreads), shared_bytes, current_stream(), x, grad, out,
                    layout, u);
  } else {
    constexpr auto kernel = per_input_kernel<T, HasA, P, Walk::kRuns, kThreads, kItems, kTileK>;
    RELU_EXT_LAUNCH(kernel, grid, dim3(kThreads), shared_bytes, current_stream(), x, grad, out,
                    layout, u);
  }
}

template <class T, Pass P>
void launch_per_input(const T* x, const T* grad, T* out, const ChannelLayout& layout,
                      Units<acc_t<T>> u) {
  if (layout.positions == 0 || layout.channels == 0) return;
  // step_sum always has weights, even when K = 0 leaves their pointer null.
  if (P == Pass::kStep || u.a) {
    launch_per_input_kernel<T, true, P>(x, grad, out, layout, u);
  } else if constexpr (P != Pass::kStep) {
    launch_per_input_kernel<T, false, P>(x, grad, out, layout, u);
  }
}

// relu_sum (P = kForward) and step_sum (P = kStep, weights in `a`): a sum
// over the units for each input.
template <Pass P>
at::Tensor sum_over_units(const char* op, const at::Tensor& x_in, const at::Tensor& m_in,
                          const at::Tensor& b_in, const std::optional<at::Tensor>& a_in,
                          const char* a_name) {
  check_relu_sum_args(op, x_in, m_in, b_in, a_in, a_name);
  const DeviceGuard guard(x_in.device());
  const auto acc = compute_dtype(x_in.scalar_type());
  const auto x = x_in.contiguous();
  const auto m = as_kernel_input(m_in, acc), b = as_kernel_input(b_in, acc);
  std::optional<at::Tensor> a;
  if (a_in) a = as_kernel_input(*a_in, acc);
  auto y = at::empty(x.sizes(), x.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "sum_over_units_cuda", [&] {
    launch_per_input<scalar_t, P>(x.const_data_ptr<scalar_t>(), nullptr,
                                  y.mutable_data_ptr<scalar_t>(), layout_of(x, m),
                                  kernel_units<acc_t<scalar_t>>(m, b, a));
  });
  return y;
}

at::Tensor relu_sum_cuda(const at::Tensor& x, const at::Tensor& m, const at::Tensor& b,
                         const std::optional<at::Tensor>& a) {
  return sum_over_units<Pass::kForward>("relu_sum", x, m, b, a, "a");
}

at::Tensor step_sum_cuda(const at::Tensor& x, const at::Tensor& m, const at::Tensor& b,
                         const at::Tensor& w) {
  return sum_over_units<Pass::kStep>("step_sum", x, m, b, w, "w");
}

// dm, db, da for the gradients in kGrads: per-block partial sums, then their
// sum over each channel's block slots. Returns [one row per gradient, C·K] in
// the accumulation dtype; N > 0 and K > 0.
template <class T, bool HasA, unsigned kGrads>
at::Tensor param_grads(const T* x, const T* grad, const ChannelLayout& layout,
                       Units<acc_t<T>> u, const at::TensorOptions& acc_options) {
  using A = acc_t<T>;
  constexpr int rows = GradRows<param_need(kGrads)>::count;
  const int64_t row_len = layout.channels * u.count;
  // Block slots per channel (runs) or per column tile (columns): they share
  // kMaxBlocks, but each channel or tile has at least one slot and every slot
  // at least one chunk. Fixed by the shapes alone (never by the device), so
  // every sum has one order.
  at::Tensor partial;
  int64_t slots;
  if (by_columns(layout)) {
    // A chunk is kChunk / 32 row groups of tile_rows rows. Each block slot
    // leaves tile_rows·inner rows of partial sums (param_grad_kernel), at most
    // 32; so at most 32·max(kMaxBlocks, tiles)·rows·C·K / tiles values.
    const int64_t block_slots = std::min<int64_t>(
        ceil_div(layout.rows, int64_t{kChunk / kWarpSize} * layout.tile_rows),
        std::max<int64_t>(kMaxBlocks / layout.tiles, 1));
    slots = block_slots * layout.tile_rows * layout.inner;
    partial = at::empty({slots, rows, row_len}, acc_options);
    constexpr auto grads_kernel = param_grad_kernel<T, HasA, kGrads, true, kThreads, kChunk>;
    RELU_EXT_LAUNCH(grads_kernel, column_grid(layout, block_slots), dim3(kThreads), 0,
                    current_stream(), x, grad, layout, u, partial.mutable_data_ptr<A>());
  } else {
    // The partial sums take at most max(kMaxBlocks, C)·rows·K values.
    slots = std::min<int64_t>(ceil_div(layout.positions, kChunk),
                              std::max<int64_t>(kMaxBlocks / layout.channels, 1));
    partial = at::empty({slots, rows, row_len}, acc_options);
    constexpr auto grads_kernel = param_grad_kernel<T, HasA, kGrads, false, kThreads, kChunk>;
    RELU_EXT_LAUNCH(grads_kernel, channel_grid(layout, slots), dim3(kThreads), 0,
                    current_stream(), x, grad, layout, u, partial.mutable_data_ptr<A>());
  }
  A* const partial_ptr = partial.mutable_data_ptr<A>();
  // One slot per channel (its inputs fit one chunk, or C > kMaxBlocks / 2;
  // by columns: also inner = 1 and 32 or more channels): its row is the sum, bit for bit what the reduction would give (that adds
  // zeros, and a sum started from +0 is never -0).
  if (slots == 1) return partial[0];
  at::Tensor total = at::empty({rows, row_len}, acc_options);
  A* const total_ptr = total.mutable_data_ptr<A>();
  const int64_t cols = rows * row_len;
  const dim3 reduce_grid(static_cast<unsigned>(ceil_div(cols, kReduceWarps)));
  constexpr auto reduce_kernel = reduce_blocks_kernel<A, kReduceWarps>;
  RELU_EXT_LAUNCH(reduce_kernel, reduce_grid, dim3(32, kReduceWarps), 0, current_stream(),
                  partial_ptr, slots, cols, total_ptr);
  return total;
}

// Turns the runtime choice (output weights or not, which of dm, db, da) into
// one compile-time variant: a gradient nobody asked for costs nothing.
template <class T, bool HasA, unsigned Bits = 1>
at::Tensor param_grads_dispatch(unsigned bits, const T* x, const T* grad,
                                const ChannelLayout& layout, Units<acc_t<T>> u,
                                const at::TensorOptions& acc_options) {
  if constexpr (Bits < 8) {
    if constexpr (HasA || !(Bits & kGradA)) {  // no da without output weights
      if (bits == Bits) return param_grads<T, HasA, Bits>(x, grad, layout, u, acc_options);
    }
    return param_grads_dispatch<T, HasA, Bits + 1>(bits, x, grad, layout, u, acc_options);
  } else {
    TORCH_INTERNAL_ASSERT(false, "relu_sum_backward: no kernel for gradient set ", bits);
  }
}

using Grads = std::tuple<std::optional<at::Tensor>, std::optional<at::Tensor>,
                         std::optional<at::Tensor>, std::optional<at::Tensor>>;

Grads relu_sum_backward_cuda(const at::Tensor& grad_in, const at::Tensor& x_in,
                             const at::Tensor& m_in, const at::Tensor& b_in,
                             const std::optional<at::Tensor>& a_in,
                             std::array<bool, 4> output_mask) {
  check_relu_sum_args("relu_sum_backward", x_in, m_in, b_in, a_in);
  check_grad("relu_sum_backward", grad_in, x_in);
  const DeviceGuard guard(x_in.device());
  const auto dtype = x_in.scalar_type();
  const auto acc = compute_dtype(dtype);
  const auto x = x_in.contiguous(), g = grad_in.contiguous();
  const auto m = as_kernel_input(m_in, acc), b = as_kernel_input(b_in, acc);
  std::optional<at::Tensor> a;
  if (a_in) a = as_kernel_input(*a_in, acc);
  const int64_t n = x.numel(), units = m.numel();
  const bool need_x = output_mask[0], need_m = output_mask[1], need_b = output_mask[2],
             need_a = output_mask[3] && a.has_value();
  const unsigned param_bits =
      (need_m ? kGradM : 0u) | (need_b ? kGradB : 0u) | (need_a ? kGradA : 0u);

  std::optional<at::Tensor> dx, dm, db, da;
  if (need_x) dx = at::empty(x.sizes(), x.options());
  const ChannelLayout layout = layout_of(x, m);
  at::Tensor sums;  // [rows, C·K]: dm, db, da as far as asked for
  if (param_bits && (n == 0 || units == 0)) {
    sums = at::zeros({__builtin_popcount(param_bits), units}, x.options().dtype(acc));
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "relu_sum_backward_cuda", [&] {
    const auto u = kernel_units<acc_t<scalar_t>>(m, b, a);
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    if (need_x)
      launch_per_input<scalar_t, Pass::kGradX>(xp, gp, dx->mutable_data_ptr<scalar_t>(), layout,
                                               u);
    if (param_bits && !sums.defined()) {
      const auto options = x.options().dtype(acc);
      sums = u.a ? param_grads_dispatch<scalar_t, true>(param_bits, xp, gp, layout, u, options)
                 : param_grads_dispatch<scalar_t, false>(param_bits, xp, gp, layout, u, options);
    }
  });
  // dm, db, da in the units' dtype (float32 for a 16-bit x with float32
  // units) and shape.
  const auto param_dtype = m_in.scalar_type();
  int64_t row = 0;
  const auto grad_of_units = [&] { return sums[row++].view(m_in.sizes()).to(param_dtype); };
  if (need_m) dm = grad_of_units();
  if (need_b) db = grad_of_units();
  if (need_a) da = grad_of_units();
  return {dx, dm, db, da};
}

}  // namespace

RELU_EXT_CUDA_IMPL(lib) {
  lib.impl("relu_sum", &relu_sum_cuda);
  lib.impl("relu_sum_backward", &relu_sum_backward_cuda);
  lib.impl("step_sum", &step_sum_cuda);
}

}  // namespace relu_ext::cuda
