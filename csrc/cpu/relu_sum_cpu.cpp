// CPU launchers of relu_sum and relu_sum_backward: dtype and layout handling,
// threads, and the fixed-order reduction over inputs. The arithmetic is in the
// kernels (relu_sum_kernels.h), chosen per instruction set (kernel_table.h).
#include <algorithm>
#include <array>
#include <optional>
#include <tuple>

#include <ATen/Dispatch.h>
#include <ATen/EmptyTensor.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "../checks.h"
#include "../kernel_inputs.h"
#include "kernel_table.h"
#include "storage.h"

namespace relu_ext::cpu {
namespace {

// About this many (input, unit) pairs per task before a thread is worth
// waking: the lesson's 20 points × 8 units stay on the calling thread.
constexpr int64_t kPairsPerTask = 1 << 15;

// A new contiguous CPU tensor, allocated without a trip through the
// dispatcher (~0.5 µs each, several per call: at the lesson's size a step's
// op costs a few µs in all).
at::Tensor new_cpu(at::IntArrayRef sizes, at::ScalarType dtype) {
  return at::detail::empty_cpu(sizes, dtype);
}

// x as the kernels walk it: runs of `inner` contiguous elements, run r using
// channel r % channels, whose units start at c * units in m, b, a. Shared
// 1-D units are the one-channel case, a single run of all of x, so the same
// loops serve both and the shared case calls the kernels exactly as before.
// Per-channel x is (outer, C, inner) (checks.h): a run per (outer, channel).
struct Runs {
  int64_t inner;     // elements per run
  int64_t channels;  // C (1 for shared units)
  int64_t units;     // K: units per channel

  static Runs of(const at::Tensor& x, const at::Tensor& m) {
    if (m.dim() == 2) return {x.size(2), m.size(0), m.size(1)};
    return {x.numel(), 1, m.numel()};
  }
  int64_t channel(int64_t i) const { return channels == 1 ? 0 : i / inner % channels; }
  // The end of the run holding element i, clipped to `end`.
  int64_t run_end(int64_t i, int64_t end) const {
    return channels == 1 ? end : std::min(end, (i / inner + 1) * inner);
  }
  template <class A>
  Units<A> of_channel(const Units<A>& all, int64_t c) const {
    const int64_t at = c * units;
    return {all.m + at, all.b + at, all.a ? all.a + at : nullptr, units};
  }
};

// Calls f(begin, end, channel) for each run-bounded piece of [begin, end),
// in order. With channels innermost (inner == 1, e.g. dim=-1 of (B, T, C)
// or channels-last) every piece is one element, a kernel call each: correct
// but far from the kernels' speed; a variant of the kernels with a unit set
// per vector lane is the planned speed-up (issue 10).
template <class F>
void for_each_run_piece(const Runs& runs, int64_t begin, int64_t end, F&& f) {
  for (int64_t i = begin; i < end;) {
    const int64_t piece_end = runs.run_end(i, end);
    f(i, piece_end, runs.channel(i));
    i = piece_end;
  }
}

enum class Sum { kReluSum, kStepSum };

// relu_sum and step_sum: a sum over the units for each input.
template <Sum kSum>
at::Tensor sum_over_units(const char* op, const at::Tensor& x_in, const at::Tensor& m_in,
                          const at::Tensor& b_in, const std::optional<at::Tensor>& a_in,
                          const char* a_name) {
  check_relu_sum_args(op, x_in, m_in, b_in, a_in, a_name);
  // The kernels read contiguous arrays: x in its own dtype (strided inputs
  // packed), the units in the compute dtype (16-bit units widened: O(K)).
  const auto dtype = compute_dtype(x_in.scalar_type());
  const auto x = x_in.contiguous();
  const auto m = as_kernel_input(m_in, dtype), b = as_kernel_input(b_in, dtype);
  std::optional<at::Tensor> a;
  if (a_in) a = as_kernel_input(*a_in, dtype);
  auto y = new_cpu(x.sizes(), x.scalar_type());
  const int64_t n = x.numel();
  const Runs runs = Runs::of(x, m);
  const int64_t units = runs.units;

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "sum_over_units_cpu", [&] {
    using St = Storage<scalar_t>;
    using S = typename St::S;
    using A = typename St::A;
    const auto kernel = kSum == Sum::kStepSum ? St::step(kernels()) : St::forward(kernels());
    const auto u = units_of<A>(m, b, a);
    const S* xp = data_of<scalar_t>(x);
    S* yp = mutable_data_of<scalar_t>(y);
    const int64_t grain = std::max<int64_t>(1, kPairsPerTask / std::max<int64_t>(units, 1));
    // The forward is bitwise the same however a range is split (kernel_table.h).
    at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
      for_each_run_piece(runs, begin, end, [&](int64_t i, int64_t piece_end, int64_t c) {
        kernel(xp + i, yp + i, piece_end - i, runs.of_channel(u, c));
      });
    });
  });
  return y;
}

at::Tensor relu_sum_cpu(const at::Tensor& x, const at::Tensor& m, const at::Tensor& b,
                        const std::optional<at::Tensor>& a) {
  return sum_over_units<Sum::kReluSum>("relu_sum", x, m, b, a, "a");
}

at::Tensor step_sum_cpu(const at::Tensor& x, const at::Tensor& m, const at::Tensor& b,
                        const at::Tensor& w) {
  return sum_over_units<Sum::kStepSum>("step_sum", x, m, b, w, "w");
}

// The sums over inputs (dm, db, da) are taken per chunk of inputs, then the
// chunks' partial sums are added in chunk order. Chunk boundaries depend on N
// and C·K alone, and within a chunk the kernel is called on pieces bounded by
// spans and runs (sizes again), never on the thread count, so every result is
// bitwise reproducible. The partial sums take chunks × 3 × C·K values: at
// most 256 chunks, and fewer for large C·K, so they stay within
// kMaxPartialSums.
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
  const auto param_dtype = m_in.scalar_type();
  const auto dtype = compute_dtype(x_in.scalar_type());
  const auto x = x_in.contiguous(), g = grad_in.contiguous();
  const auto m = as_kernel_input(m_in, dtype), b = as_kernel_input(b_in, dtype);
  std::optional<at::Tensor> a;
  if (a_in) a = as_kernel_input(*a_in, dtype);
  const int64_t n = x.numel();
  const Runs runs = Runs::of(x, m);
  // units: per input (the work of a kernel call per element); all_units: C·K,
  // the length of each sum over inputs.
  const int64_t units = runs.units, all_units = m.numel();

  const bool need_x = output_mask[0], need_m = output_mask[1], need_b = output_mask[2],
             need_a = output_mask[3] && a.has_value();
  const unsigned grads = (need_x ? kGradX : 0) | (need_m ? kGradM : 0) |
                         (need_b ? kGradB : 0) | (need_a ? kGradA : 0);

  std::optional<at::Tensor> dx, dm, db, da;
  if (grads == 0) return {dx, dm, db, da};
  if (need_x) dx = new_cpu(x.sizes(), x.scalar_type());
  const bool sums_over_inputs = grads & ~kGradX;

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "relu_sum_backward_cpu", [&] {
    using St = Storage<scalar_t>;
    using S = typename St::S;
    using A = typename St::A;
    // Spans and chunks of the compute dtype's size: a 16-bit x is summed in
    // the same order as its float32 widening would be.
    constexpr int64_t span = kBackwardSpan<A>;
    const int64_t chunk = chunk_size<A>(n, all_units);
    const int64_t chunks = std::max<int64_t>((n + chunk - 1) / chunk, 1);
    // partial[c][j][k]: chunk c's sum for gradient j (dm, db, da) of unit k
    // (of all C·K units, channel-major like m).
    // With one chunk (small inputs) the kernel sums straight into the
    // gradients instead.
    const bool one_chunk = chunks == 1;
    const std::array<bool, 3> need_sum{need_m, need_b, need_a};
    std::array<at::Tensor, 3> sums;
    std::array<A*, 3> sum_ptrs{};
    at::Tensor partial;
    A* pp = nullptr;
    if (sums_over_inputs) {
      if (one_chunk) {
        for (int j = 0; j < 3; ++j) {
          if (!need_sum[j]) continue;
          sums[j] = new_cpu(m.sizes(), dtype);
          sum_ptrs[j] = sums[j].mutable_data_ptr<A>();
          std::fill_n(sum_ptrs[j], all_units, A(0));
        }
      } else {
        partial = new_cpu({chunks, 3, all_units}, dtype);
        pp = partial.mutable_data_ptr<A>();
        std::fill_n(pp, chunks * 3 * all_units, A(0));
      }
    }
    const auto backward = St::backward(kernels());
    const auto u = units_of<A>(m, b, a);
    const S* xp = data_of<scalar_t>(x);
    const S* gp = data_of<scalar_t>(g);
    S* dxp = need_x ? mutable_data_of<scalar_t>(*dx) : nullptr;
    const int64_t grain = std::max<int64_t>(1, kPairsPerTask / (chunk * std::max<int64_t>(units, 1)));
    at::parallel_for(0, chunks, grain, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        A* p = pp ? pp + c * 3 * all_units : nullptr;
        A* const out[3] = {p ? p : sum_ptrs[0], p ? p + all_units : sum_ptrs[1],
                           p ? p + 2 * all_units : sum_ptrs[2]};
        const int64_t end = std::min(n, (c + 1) * chunk);
        for (int64_t i = c * chunk; i < end; i += span) {
          const int64_t span_end = std::min(i + span, end);
          for_each_run_piece(runs, i, span_end, [&](int64_t j, int64_t piece_end, int64_t ch) {
            const int64_t at = ch * units;
            backward(xp + j, gp + j, dxp ? dxp + j : nullptr, piece_end - j,
                     runs.of_channel(u, ch), grads, out[0] ? out[0] + at : nullptr,
                     out[1] ? out[1] + at : nullptr, out[2] ? out[2] + at : nullptr);
          });
        }
      }
    });
    // Each gradient its own tensor (outputs must not alias), summed over
    // chunks in chunk order.
    const auto sum_chunks = [&](int64_t j) {
      if (one_chunk) return as_dtype(sums[j], param_dtype);
      auto out = new_cpu(m.sizes(), dtype);
      A* op = out.mutable_data_ptr<A>();
      std::copy(pp + j * all_units, pp + (j + 1) * all_units, op);
      for (int64_t c = 1; c < chunks; ++c) {
        const A* p = pp + (c * 3 + j) * all_units;
        for (int64_t k = 0; k < all_units; ++k) op[k] += p[k];
      }
      return as_dtype(out, param_dtype);
    };
    if (need_m) dm = sum_chunks(0);
    if (need_b) db = sum_chunks(1);
    if (need_a) da = sum_chunks(2);
  });
  return {dx, dm, db, da};
}

}  // namespace

TORCH_LIBRARY_IMPL(relu_ext, CPU, lib) {
  lib.impl("relu_sum", &relu_sum_cpu);
  lib.impl("relu_sum_backward", &relu_sum_backward_cpu);
  lib.impl("step_sum", &step_sum_cpu);
}

}  // namespace relu_ext::cpu
