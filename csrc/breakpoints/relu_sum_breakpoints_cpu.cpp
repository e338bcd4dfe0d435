// CPU kernels of relu_sum_breakpoints and its backward: the N-level passes of
// the breakpoint algorithm (breakpoint_table.h has the K-level half and the
// method). Each input costs one lookup (interval_index.h) in its channel's
// table (channel_tables.h; shared units are one channel) instead of K units:
//   forward   y  = slope[i]·x + intercept[i]
//   backward  dx = g·slope[i];   g and g·x summed per channel and interval i
// These loops are hand-written because one ATen equivalent (torch.searchsorted,
// a torch.sort of x) alone takes longer than this op's whole forward +
// backward (measured in docs/breakpoints.md, "Measurements behind the code").
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
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include "../checks.h"
#include "../cpu/storage.h"
#include "breakpoint_table.h"
#include "channel_layout.h"
#include "channel_tables.h"

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
// for ±inf and NaN. (torch.isfinite(t).all() makes five passes and five
// thread wake-ups, milliseconds at large N (docs/breakpoints.md); the inputs'
// check is fused into the passes below instead.)
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

using cpu::kConverted;
using cpu::Storage;

// A block of inputs in the compute type A: the elements themselves, or
// (16-bit) widened into `buf` by the instruction set's conversion.
template <class T, class A = typename Storage<T>::A>
const A* block_in_compute_type(const typename Storage<T>::S* in, A* buf, int64_t n) {
  if constexpr (kConverted<T>) {
    Storage<T>::widen(cpu::kernels())(in, buf, n);
    return buf;
  } else {
    return in;
  }
}

// Where a block's results go in the compute type: straight into `out`, or
// (16-bit) into `buf`, which narrow_block then rounds into `out`.
template <class T, class A = typename Storage<T>::A>
A* block_out_compute_type(typename Storage<T>::S* out, A* buf) {
  if constexpr (kConverted<T>) {
    return buf;
  } else {
    return out;
  }
}

template <class T, class A = typename Storage<T>::A>
void narrow_block(const A* buf, typename Storage<T>::S* out, int64_t n) {
  if constexpr (kConverted<T>) Storage<T>::narrow(cpu::kernels())(buf, out, n);
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

// kArrays blocks of S where blocks that are not contiguous are gathered
// (channel_layout.h); allocated per task, and not at all for one channel,
// whose blocks are all read in place.
template <class S, int kArrays>
class Staging {
 public:
  explicit Staging(const ChannelLayout& layout)
      : data_(layout.channels > 1 ? kArrays * kBlock : 0) {}
  S* operator[](int i) { return data_.empty() ? nullptr : data_.data() + i * kBlock; }

 private:
  std::vector<S> data_;
};

// The forward for a block of one channel's inputs: y = slope·x + intercept
// of x's interval. Whether every x was finite.
template <class A>
bool evaluate_block(const ChannelTable<A>& channel, const A* xp, A* yp, int64_t len,
                    int64_t* interval) {
  channel.index.locate(xp, len, interval);
  const double* line = channel.table.line.data();
  bool finite = true;
  for (int64_t j = 0; j < len; ++j) {
    const A xn = xp[j];
    const int64_t i = interval[j];
    finite &= (xn - xn == A(0));
    yp[j] = static_cast<A>(line[2 * i] * static_cast<double>(xn) + line[2 * i + 1]);
  }
  return finite;
}

at::Tensor relu_sum_breakpoints_cpu(const at::Tensor& x_in, const at::Tensor& m,
                                    const at::Tensor& b, const std::optional<at::Tensor>& a) {
  check_relu_sum_args("relu_sum_breakpoints", x_in, m, b, a);
  check_unit_count("relu_sum_breakpoints", m);
  // K = 0 and an empty x are the dense op's trivial cases.
  if (x_in.numel() == 0 || m.numel() == 0) return dense_relu_sum(x_in, m, b, a);
  const auto params = finite_params(m, b, a);
  if (!params) return dense_relu_sum(x_in, m, b, a);
  // x read in its own dtype: a 16-bit x is widened a block at a time.
  const auto x = x_in.contiguous();
  auto y = at::empty(x.sizes(), x.options());
  const auto layout = ChannelLayout::of(x, m);
  std::atomic<bool> x_finite{true};

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "relu_sum_breakpoints_cpu", [&] {
    using A = typename Storage<scalar_t>::A;
    using S = typename Storage<scalar_t>::S;
    const auto tables = make_channel_tables<A>(params->view(), layout.channels);
    const S* xs = cpu::data_of<scalar_t>(x);
    S* ys = cpu::mutable_data_of<scalar_t>(y);
    at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) {
      bool finite = true;
      int64_t interval[kBlock];
      A x_buf[kConverted<scalar_t> ? kBlock : 1], y_buf[kConverted<scalar_t> ? kBlock : 1];
      if (layout.channels == 1) {
        // Shared units: blocks in place, in memory order. (The general walk
        // below is measurably slower for them: docs/breakpoints.md.)
        for (int64_t p = begin; p < end; p += kBlock) {
          const int64_t len = std::min(kBlock, end - p);
          const A* xp = block_in_compute_type<scalar_t>(xs + p, x_buf, len);
          A* yp = block_out_compute_type<scalar_t>(ys + p, y_buf);
          finite &= evaluate_block(tables[0], xp, yp, len, interval);
          narrow_block<scalar_t>(y_buf, ys + p, len);
        }
      } else {
        Staging<S, 2> stage(layout);
        layout.for_each_block(begin, end, kBlock, [&](const Block& block) {
          const int64_t len = block.size;
          const A* xp = block_in_compute_type<scalar_t>(layout.read(xs, block, stage[0]), x_buf, len);
          S* yd = layout.write_to(ys, block, stage[1]);
          A* yp = block_out_compute_type<scalar_t>(yd, y_buf);
          finite &= evaluate_block(tables[block.channel], xp, yp, len, interval);
          narrow_block<scalar_t>(y_buf, yd, len);
          layout.finish_write(yd, ys, block);
        });
      }
      if (!finite) x_finite.store(false, std::memory_order_relaxed);
    });
  });
  if (!x_finite.load()) return dense_relu_sum(x_in, m, b, a);
  return y;
}

// The per-interval sums are taken per chunk of a channel's inputs, then
// added in chunk order: chunk boundaries depend on E (N / C) and K only,
// never on the thread count, so the result is bitwise reproducible. Each
// chunk but a channel's only one holds at least 2·(K + 1) inputs, so its
// accumulators are no bigger than its inputs and adding them up (serially
// per channel) costs at most half a pass over the inputs.
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
  const auto x = x_in.contiguous(), g = grad_in.contiguous();
  const auto layout = ChannelLayout::of(x, m);
  // k: units per channel (K of (C, K) or of shared (K,) units).
  const int64_t n = x.numel(), k = m.size(-1), channels = layout.channels;
  const bool need_x = output_mask[0], need_m = output_mask[1], need_b = output_mask[2],
             need_a = output_mask[3] && a.has_value();
  const bool need_sums = need_m || need_b || need_a;
  if (!need_x && !need_sums) return {};

  std::optional<at::Tensor> dx, dm, db, da;
  if (need_x) dx = at::empty(x.sizes(), x.options());
  const auto f64 = x.options().dtype(at::kDouble);
  if (need_m) dm = at::empty(m.sizes(), f64);
  if (need_b) db = at::empty(m.sizes(), f64);
  if (need_a) da = at::empty(m.sizes(), f64);
  const int64_t chunks = need_sums ? chunk_count(layout.per_channel, k) : 0;
  // sums[c][q][i][0], sums[c][q][i][1]: chunk q of channel c's sums of g and
  // of g·x over interval i of its table.
  auto sums = at::empty({channels, chunks, k + 1, 2}, f64);
  std::atomic<bool> inputs_finite{true};

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "relu_sum_breakpoints_backward_cpu", [&] {
    using A = typename Storage<scalar_t>::A;
    using S = typename Storage<scalar_t>::S;
    const auto tables = make_channel_tables<A>(params->view(), channels);
    const S* xs = cpu::data_of<scalar_t>(x);
    const S* gs = cpu::data_of<scalar_t>(g);
    S* dxs = need_x ? cpu::mutable_data_of<scalar_t>(*dx) : nullptr;
    // Checks x and g finite at the positions [begin, end) (channel order),
    // writes dx there and, when `acc` is given (then [begin, end) lies in
    // one channel), adds g and g·x of interval i into acc[2i], acc[2i + 1].
    const auto pass = [&](int64_t begin, int64_t end, double* acc) {
      bool finite = true;
      int64_t interval[kBlock];
      constexpr int64_t kBuf = kConverted<scalar_t> ? kBlock : 1;
      A x_buf[kBuf], g_buf[kBuf], dx_buf[kBuf];
      Staging<S, 3> stage(layout);
      layout.for_each_block(begin, end, kBlock, [&](const Block& block) {
        const int64_t len = block.size;
        const A* xp = block_in_compute_type<scalar_t>(layout.read(xs, block, stage[0]), x_buf, len);
        const A* gp = block_in_compute_type<scalar_t>(layout.read(gs, block, stage[1]), g_buf, len);
        S* dxd = dxs ? layout.write_to(dxs, block, stage[2]) : nullptr;
        A* dxp = dxd ? block_out_compute_type<scalar_t>(dxd, dx_buf) : nullptr;
        const auto& channel = tables[block.channel];
        channel.index.locate(xp, len, interval);
        const double* line = channel.table.line.data();
        for (int64_t j = 0; j < len; ++j) {
          const A xj = xp[j], gj = gp[j];
          const int64_t i = interval[j];
          finite &= (xj - xj == A(0)) & (gj - gj == A(0));
          if (dxp) dxp[j] = static_cast<A>(gj * line[2 * i]);
          if (acc) {
            acc[2 * i] += gj;
            acc[2 * i + 1] += static_cast<double>(gj) * static_cast<double>(xj);
          }
        }
        if (dxd) {
          narrow_block<scalar_t>(dx_buf, dxd, len);
          layout.finish_write(dxd, dxs, block);
        }
      });
      if (!finite) inputs_finite.store(false, std::memory_order_relaxed);
    };
    if (!need_sums) {
      at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) { pass(begin, end, nullptr); });
      return;
    }
    double* sp = sums.mutable_data_ptr<double>();
    const int64_t e_count = layout.per_channel, per_chunk = (e_count + chunks - 1) / chunks;
    const int64_t stride = 2 * (k + 1), channel_stride = chunks * stride;
    // Work item w: chunk w % chunks of channel w / chunks.
    at::parallel_for(0, channels * chunks, 1, [&](int64_t w0, int64_t w1) {
      for (int64_t w = w0; w < w1; ++w) {
        const int64_t c = w / chunks, q = w % chunks, first = c * e_count;
        std::fill(sp + w * stride, sp + (w + 1) * stride, 0.0);
        pass(first + q * per_chunk, first + std::min(e_count, (q + 1) * per_chunk),
             sp + w * stride);
      }
    });
    if (!inputs_finite.load()) return;
    const auto out = [&](std::optional<at::Tensor>& t, int64_t c) {
      return t ? t->mutable_data_ptr<double>() + c * k : nullptr;
    };
    at::parallel_for(0, channels, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        double* cs = sp + c * channel_stride;
        // Chunk 0 plus chunk 1 plus ..., per interval, in that order.
        for (int64_t q = 1; q < chunks; ++q)
          for (int64_t i = 0; i < stride; ++i) cs[i] += cs[q * stride + i];
        unit_gradients(tables[c].table, cs, channel_units(params->view(), c, k), out(dm, c),
                       out(db, c), out(da, c));
      }
    });
  });
  if (!inputs_finite.load()) return dense();
  // dx in x's dtype, dm, db, da (float64 here) in the units'.
  const auto in_units_dtype = [&](std::optional<at::Tensor>& t) {
    return t ? std::optional(t->to(m.scalar_type())) : std::nullopt;
  };
  return {dx, in_units_dtype(dm), in_units_dtype(db), in_units_dtype(da)};
}

}  // namespace

TORCH_LIBRARY_IMPL(relu_ext, CPU, lib) {
  lib.impl("relu_sum_breakpoints", &relu_sum_breakpoints_cpu);
  lib.impl("relu_sum_breakpoints_backward", &relu_sum_breakpoints_backward_cpu);
}

}  // namespace relu_ext::breakpoints
