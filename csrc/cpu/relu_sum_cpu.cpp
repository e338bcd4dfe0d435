// CPU launchers of relu_sum and relu_sum_backward: dtype and layout handling,
// threads, and the fixed-order reduction over inputs. The arithmetic is in the
// kernels (relu_sum_kernels.h), chosen per instruction set (kernel_table.h).
#include <algorithm>
#include <array>
#include <optional>
#include <tuple>
#include <vector>

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
// dispatcher (several per call, where at the lesson's size the whole op
// costs a few µs: docs/how-it-works.md, "What a small call costs").
at::Tensor new_cpu(at::IntArrayRef sizes, at::ScalarType dtype) {
  return at::detail::empty_cpu(sizes, dtype);
}

// x as the kernels walk it. Per-channel x is (outer, C, inner) (checks.h),
// element (o, c, i) using channel c's K units; shared 1-D units are the
// one-channel case. Two walks, one kernel family (kernel_table.h):
// - runs: each run of `inner` contiguous elements has one channel, and the
//   kernels broadcast its units, as for shared units (all of x one run);
//   NCHW's inner is H·W;
// - columns: x as `outer` rows of C·inner columns, each column with its own
//   units (ColumnUnits) along the vector lanes. For short runs, where a
//   padded run would waste most of a tile: the channels innermost (inner 1:
//   (B, T, C) with dim=-1, channels-last), or a few elements per channel.
struct Layout {
  int64_t outer, channels, inner;
  int64_t units;  // K, per channel
  bool by_columns;

  // Longer runs fill the kernels' tiles well enough to walk them as runs.
  static constexpr int64_t kShortRun = 64;

  static Layout of(const at::Tensor& x, const at::Tensor& m) {
    if (m.dim() != 2) return {1, 1, x.numel(), m.numel(), false};
    const int64_t outer = x.size(0), channels = x.size(1), inner = x.size(2), k = m.size(1);
    // The column table holds K units for each of C·inner columns: past one
    // channel per column, only while it stays smaller than x.
    const bool short_runs = inner == 1 || (inner < kShortRun && 3 * k <= outer);
    return {outer, channels, inner, k, channels > 1 && inner > 0 && short_runs};
  }
  int64_t width() const { return channels * inner; }  // columns per row

  // Runs: the channel of element i, and the end of its run clipped to `end`.
  int64_t channel(int64_t i) const { return channels == 1 ? 0 : i / inner % channels; }
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
// in order.
template <class F>
void for_each_run_piece(const Layout& l, int64_t begin, int64_t end, F&& f) {
  for (int64_t i = begin; i < end;) {
    const int64_t piece_end = l.run_end(i, end);
    f(i, piece_end, l.channel(i));
    i = piece_end;
  }
}

// The column kernels' units (ColumnUnits, kernel_table.h): column
// j = c·inner + i takes channel c's. Three tables (m, b, a) of the columns'
// blocks of `lanes`, zero past the last column. O(C·K·inner), against the
// O(N·K) of the sum it serves.
template <class A>
struct ColumnTable {
  int64_t lanes, size;  // size: values per table, blocks × K × lanes
  at::Tensor storage;
  ColumnUnits<A> units;

  ColumnTable(const Layout& l, int64_t lanes_, const Units<A>& u, at::ScalarType dtype)
      : lanes(lanes_), size((l.width() + lanes - 1) / lanes * l.units * lanes) {
    storage = new_cpu({3, size}, dtype);
    A* p = storage.template mutable_data_ptr<A>();
    std::fill_n(p, 3 * size, A(0));
    const A* from[3] = {u.m, u.b, u.a};
    for (int t = 0; t < 3; ++t) {
      if (from[t] == nullptr) continue;
      for (int64_t j = 0; j < l.width(); ++j)
        for (int64_t k = 0; k < l.units; ++k)
          p[t * size + at(l, j, k)] = from[t][j / l.inner * l.units + k];
    }
    units = {p, p + size, u.a ? p + 2 * size : nullptr, l.units};
  }

  // Where unit k of column j is in a table.
  int64_t at(const Layout& l, int64_t j, int64_t k) const {
    return (j / lanes * l.units + k) * lanes + j % lanes;
  }

  // Sums laid out like a table back in m's layout (C, K): a channel's
  // columns added in column order.
  void fold(const Layout& l, const A* sums, A* out) const {
    for (int64_t c = 0; c < l.channels; ++c)
      for (int64_t k = 0; k < l.units; ++k) {
        A total = sums[at(l, c * l.inner, k)];
        for (int64_t i = 1; i < l.inner; ++i) total += sums[at(l, c * l.inner + i, k)];
        out[c * l.units + k] = total;
      }
  }
};

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
  if (n == 0) return y;
  const Layout layout = Layout::of(x, m);
  const int64_t units = std::max<int64_t>(layout.units, 1);

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "sum_over_units_cpu", [&] {
    using St = Storage<scalar_t>;
    using A = typename St::A;
    const auto& table = kernels();
    const auto& k = St::of(table);
    const auto u = units_of<A>(m, b, a);
    const auto* xp = data_of<scalar_t>(x);
    auto* yp = mutable_data_of<scalar_t>(y);
    // The forward is bitwise the same however a range is split (kernel_table.h).
    if (layout.by_columns) {
      const ColumnTable<A> columns(layout, table.lanes<A>(), u, dtype);
      const auto kernel = kSum == Sum::kStepSum ? k.step_columns : k.forward_columns;
      const int64_t width = layout.width();
      const int64_t grain = std::max<int64_t>(1, kPairsPerTask / (width * units));
      at::parallel_for(0, layout.outer, grain, [&](int64_t r0, int64_t r1) {
        kernel(xp + r0 * width, yp + r0 * width, r1 - r0, width, columns.units);
      });
      return;
    }
    const auto kernel = kSum == Sum::kStepSum ? k.step : k.forward;
    const int64_t grain = std::max<int64_t>(1, kPairsPerTask / units);
    at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
      for_each_run_piece(layout, begin, end, [&](int64_t i, int64_t piece_end, int64_t c) {
        kernel(xp + i, yp + i, piece_end - i, layout.of_channel(u, c));
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
// chunks' partial sums are added in chunk order. Chunk boundaries depend on
// the sizes alone, and within a chunk the kernel is called on pieces bounded
// by spans and runs (sizes again), never on the thread count, so every
// result is bitwise reproducible. The partial sums take chunks × 3 × `sums`
// values (C·K, or a column table's size): at most 256 chunks, and fewer for
// many units, so they stay within kMaxPartialSums.
constexpr int64_t kMaxChunks = 256;
constexpr int64_t kMaxPartialSums = int64_t{1} << 22;

// Elements per chunk (or rows, for columns), a whole number of `span`s.
int64_t chunk_size(int64_t n, int64_t span, int64_t sums) {
  const int64_t max_chunks =
      std::clamp<int64_t>(kMaxPartialSums / (3 * std::max<int64_t>(sums, 1)), 1, kMaxChunks);
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
  const Layout layout = Layout::of(x, m);
  // units: per input (the work of a kernel call per element).
  const int64_t units = std::max<int64_t>(layout.units, 1);

  const bool need_x = output_mask[0], need_m = output_mask[1], need_b = output_mask[2],
             need_a = output_mask[3] && a.has_value();
  const unsigned grads = (need_x ? kGradX : 0) | (need_m ? kGradM : 0) |
                         (need_b ? kGradB : 0) | (need_a ? kGradA : 0);

  std::optional<at::Tensor> dx, dm, db, da;
  if (grads == 0) return {dx, dm, db, da};
  if (need_x) dx = new_cpu(x.sizes(), x.scalar_type());
  const std::array<bool, 3> need_sum{need_m, need_b, need_a};

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "relu_sum_backward_cpu", [&] {
    using St = Storage<scalar_t>;
    using A = typename St::A;
    const auto& table = kernels();
    const auto& k = St::of(table);
    const auto u = units_of<A>(m, b, a);
    const auto* xp = data_of<scalar_t>(x);
    const auto* gp = data_of<scalar_t>(g);
    auto* dxp = need_x ? mutable_data_of<scalar_t>(*dx) : nullptr;
    std::optional<ColumnTable<A>> columns;
    if (layout.by_columns) columns.emplace(layout, table.lanes<A>(), u, dtype);

    // What is walked: elements in spans (runs), or rows in spans of rows
    // (columns), a span being what the kernel takes at once; and how many
    // sums over it there are (C·K, or a column table's size).
    const int64_t width = layout.by_columns ? layout.width() : 1;
    const int64_t items = n / width;
    const int64_t span = layout.by_columns ? kColumnSpanRows : kBackwardSpan<A>;
    const int64_t sums = layout.by_columns ? columns->size : m.numel();
    const int64_t chunk = chunk_size(items, span, sums);
    const int64_t chunks = std::max<int64_t>((items + chunk - 1) / chunk, 1);
    // partial[c][j]: chunk c's sums for gradient j (dm, db, da), in m's
    // layout (runs) or the column table's. With one chunk of runs (small
    // inputs) the kernel sums straight into the gradients instead.
    const bool direct = chunks == 1 && !layout.by_columns;
    std::array<at::Tensor, 3> grad_sums;
    at::Tensor partial;
    if (grads & ~kGradX) {
      if (direct) {
        for (int j = 0; j < 3; ++j) {
          if (!need_sum[j]) continue;
          grad_sums[j] = new_cpu(m.sizes(), dtype);
          std::fill_n(grad_sums[j].template mutable_data_ptr<A>(), sums, A(0));
        }
      } else {
        partial = new_cpu({chunks, 3, sums}, dtype);
        std::fill_n(partial.template mutable_data_ptr<A>(), chunks * 3 * sums, A(0));
      }
    }
    const auto sums_of = [&](int64_t c) {
      std::array<A*, 3> out{};
      for (int j = 0; j < 3; ++j) {
        if (!need_sum[j]) continue;
        out[j] = direct ? grad_sums[j].template mutable_data_ptr<A>()
                        : partial.template mutable_data_ptr<A>() + (c * 3 + j) * sums;
      }
      return out;
    };
    const int64_t grain = std::max<int64_t>(1, kPairsPerTask / (chunk * width * units));
    at::parallel_for(0, chunks, grain, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        const auto out = sums_of(c);
        const int64_t end = std::min(items, (c + 1) * chunk);
        for (int64_t i = c * chunk; i < end; i += span) {
          const int64_t span_end = std::min(i + span, end);
          if (layout.by_columns) {
            const int64_t at = i * width;
            k.backward_columns(xp + at, gp + at, dxp ? dxp + at : nullptr, span_end - i, width,
                               columns->units, grads, out[0], out[1], out[2]);
            continue;
          }
          for_each_run_piece(layout, i, span_end, [&](int64_t j, int64_t piece_end, int64_t ch) {
            const int64_t at = ch * layout.units;
            const auto from = [&](A* p) { return p ? p + at : nullptr; };
            k.backward(xp + j, gp + j, dxp ? dxp + j : nullptr, piece_end - j,
                       layout.of_channel(u, ch), grads, from(out[0]), from(out[1]),
                       from(out[2]));
          });
        }
      }
    });
    // Each gradient its own tensor (outputs must not alias): the chunks'
    // sums added in chunk order, folded back into m's layout for columns.
    const auto gradient = [&](int j) {
      if (direct) return as_dtype(grad_sums[j], param_dtype);
      std::vector<A> total(sums);
      const A* pp = partial.template const_data_ptr<A>();
      std::copy(pp + j * sums, pp + (j + 1) * sums, total.begin());
      for (int64_t c = 1; c < chunks; ++c) {
        const A* p = pp + (c * 3 + j) * sums;
        for (int64_t s = 0; s < sums; ++s) total[s] += p[s];
      }
      auto out = new_cpu(m.sizes(), dtype);
      A* op = out.template mutable_data_ptr<A>();
      if (layout.by_columns) columns->fold(layout, total.data(), op);
      else std::copy(total.begin(), total.end(), op);
      return as_dtype(out, param_dtype);
    };
    if (need_m) dm = gradient(0);
    if (need_b) db = gradient(1);
    if (need_a) da = gradient(2);
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
