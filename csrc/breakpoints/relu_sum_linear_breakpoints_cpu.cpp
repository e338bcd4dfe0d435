// CPU launchers of relu_sum_linear_breakpoints and its backward (the method:
// docs/breakpoints.md, "relu_sum_linear"). Per input, its sorted breakpoints
// cut the line into K + 1 cells; on each, every edge is alpha + beta x, a row
// of O lines in input i's cell table, so a sample costs I·O multiply-adds
// whatever K is:
//   forward   y[n] = bias + sum_i (alpha + x beta)[i, cell(n, i)]
//   backward  per cell, sums of g and g x (S0, S1); a unit's sums over the
//             samples where it is active are prefix or suffix sums of those
//             over cells; dx[n, i] = g[n] . beta[i, cell(n, i)]
// Terms that are not finite go by the dense formula: a sample's non-finite
// x[n, i], and every sample of an input whose m, b or a are not all finite;
// so NaN and ±Inf land as in the reference. K = 0 and empty shapes go to the
// dense op. The forward keeps a row of y in registers while it gathers from
// a few inputs' tables held in L1; the backward groups a block of samples by
// cell (cell_groups.h), so that a cell's sums stay in registers across them.
#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <optional>
#include <tuple>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include "../checks.h"
#include "../cpu/relu_sum_linear_inputs.h"
#include "cache_aligned.h"
#include "cell_groups.h"
#include "relu_sum_linear_tables.h"

namespace relu_ext::breakpoints {
namespace {

using cpu::LinearGrads;
using cpu::LinearInputs;
using cpu::LinearParams;
using cpu::kGradA;
using cpu::kGradB;
using cpu::kGradM;
using cpu::kGradX;

// Bytes of cell tables (and, backward, of cell sums) walked together: they
// stay in L2 while a block of samples is gathered from them.
constexpr int64_t kTableBytes = 1 << 20;
// Samples per forward block: its rows of y (one slice of outputs) stay in
// L1 or L2 across the inputs; and the fewest per backward block.
constexpr int64_t kBlock = 64;
// Samples per cell the backward's blocks are sized for (up to
// cpu::kLinearBlockRows).
constexpr int64_t kGroupRows = 16;
// Inputs a row of y gathers from before it is stored, and the most bytes of
// their tables (in L2): fewer inputs store y more often, more evict more of
// their tables from L1 (measured in docs/breakpoints.md).
constexpr int64_t kGatherInputs = 6;
constexpr int64_t kGatherBytes = 512 << 10;
// Outputs per forward task: 512 bytes of a row of y (narrower slices, tried
// to keep an input's table in L1 at large K, repeat the per-sample work of
// each slice and were slower; so were wider ones).
template <class T>
constexpr int64_t kOutSlice = 512 / sizeof(T);
// Units up to which a sample's cell is counted against every event
// (count_cells) rather than searched for (IntervalIndex::locate): the
// crossover measured in docs/breakpoints.md.
constexpr int64_t kCountedUnits = 64;

// Inputs whose tables fit kTableBytes (at least one).
int64_t chunk_inputs(int64_t bytes_per_input) {
  return std::max<int64_t>(1, kTableBytes / std::max<int64_t>(bytes_per_input, 1));
}

// Input i alone, as LinearParams with its slab of a (K, Op): what the kernels
// take as input 0.
template <class T>
LinearParams<T> one_input(const LinearParams<T>& p, int64_t i, const T* slab) {
  return {p.m + i * p.units, p.b + i * p.units, slab, 1, p.units, p.outputs, p.padded};
}

// cell[r] for the rows r of x (one input's samples): their cell in input
// tab's table, or -1 where x[r] is not finite (its term goes by the dense
// formula).
template <class T>
void find_cells(const cpu::LinearKernels<T>& kern, const ChannelTable<T>& tab, const T* x,
                int64_t rows, int64_t* idx, int32_t* cell) {
  const int64_t K = static_cast<int64_t>(tab.table.events.size());
  if (K <= kCountedUnits) {
    kern.count_cells(tab.table.events.data(), K, x, rows, cell);
    return;
  }
  tab.index.locate(x, rows, idx);
  for (int64_t r = 0; r < rows; ++r)
    cell[r] = std::isfinite(x[r]) ? static_cast<int32_t>(idx[r]) : -1;
}

bool trivial(const at::Tensor& x, const at::Tensor& m, const at::Tensor& a) {
  return x.size(0) == 0 || m.size(0) == 0 || m.size(1) == 0 || a.size(0) == 0;
}

template <class T>
void forward(const LinearInputs& in, const at::Tensor& bias, at::Tensor& y) {
  const auto& kern = cpu::kernels().linear<T>();
  const auto p = in.params<T>();
  const int64_t N = in.n, I = in.inputs, K = in.units, O = in.outputs, Op = in.padded;
  const auto tabs = make_linear_tables<T>(in.m, in.b);
  const T* a = in.a.const_data_ptr<T>();
  const auto xt = transposed(in.x);  // (I, N): an input's samples contiguous
  const T* x = xt.const_data_ptr<T>();
  const T* bp = bias.defined() ? bias.const_data_ptr<T>() : nullptr;
  T* yp = y.mutable_data_ptr<T>();
  // Every sample's cell in every input, found once for all the slices: (I, N),
  // x's size.
  const std::unique_ptr<int32_t[]> cell_of(new int32_t[I * N]);  // every entry is written
  at::parallel_for(0, I, 1, [&](int64_t i0, int64_t i1) {
    std::vector<int64_t> idx(kBlock);
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t n0 = 0; n0 < N; n0 += kBlock)
        find_cells(kern, tabs.inputs[i], x + i * N + n0, std::min(kBlock, N - n0), idx.data(),
                   cell_of.get() + i * N + n0);
  });
  const int64_t slice = kOutSlice<T>;
  const int64_t slices = (Op + slice - 1) / slice;
  // Then one parallel region: tasks are (slice of outputs, part of the samples),
  // each building the cell tables of its outputs alone (parts of one slice
  // build them twice), so there is no barrier per chunk of inputs. y[n, o]
  // sums its inputs in order in every case: bitwise the same however split.
  const int64_t parts = std::max<int64_t>(
      1, std::min((at::get_num_threads() + slices - 1) / slices, (N + kBlock - 1) / kBlock));
  at::parallel_for(0, slices * parts, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t o0 = (t / parts) * slice, part = t % parts;
      const int64_t width = std::min(slice, Op - o0), W = 2 * width;
      const int64_t n_begin = N * part / parts, n_end = N * (part + 1) / parts;
      LinearParams<T> ps = p;
      ps.outputs = std::min(width, O - o0);
      ps.padded = width;
      const int64_t chunk = std::min(I, chunk_inputs(((K + 1) * W + K * width) * sizeof(T)));
      // Inputs whose tables a row of y gathers from together, in L1.
      // Inputs whose tables a row of y gathers from before it is stored.
      const int64_t gather = std::clamp<int64_t>(
          kGatherBytes / static_cast<int64_t>((K + 1) * W * sizeof(T)), 1,
          std::min(chunk, kGatherInputs));
      AlignedVector<T> cells(chunk * (K + 1) * W), slabs(chunk * K * width), dense(kBlock * width);
      AlignedVector<double> scratch((K + 2) * W);
      std::vector<uint8_t> finite(chunk);
      std::vector<int32_t> cell(gather * kBlock);
      for (int64_t c0 = 0; c0 < I; c0 += chunk) {
        const int64_t c1 = std::min(I, c0 + chunk);
        for (int64_t i = c0; i < c1; ++i) {
          T* slab = slabs.data() + (i - c0) * K * width;
          finite[i - c0] = input_slab(a, O, I, K, i, o0, width, slab) && tabs.finite[i];
          if (finite[i - c0])
            kern.cells(one_input(ps, i, slab), 0, tabs.inputs[i].table.order.data(),
                       tabs.inputs[i].table.rising.data(), scratch.data(),
                       cells.data() + (i - c0) * (K + 1) * W);
        }
        for (int64_t n0 = n_begin; n0 < n_end; n0 += kBlock) {
          const int64_t rows = std::min(kBlock, n_end - n0);
          T* yb = yp + n0 * Op + o0;
          for (int64_t g0 = c0; g0 < c1; g0 += gather) {
            const int64_t g1 = std::min(c1, g0 + gather);
            // The group's cells, or a copy with those of inputs whose a is
            // not finite in this slice set to -1.
            const int32_t* cg = cell_of.get() + g0 * N + n0;
            int64_t ldc = N;
            if (!std::all_of(finite.begin() + (g0 - c0), finite.begin() + (g1 - c0),
                             [](uint8_t f) { return f != 0; })) {
              for (int64_t i = g0; i < g1; ++i) {
                int32_t* ci = cell.data() + (i - g0) * rows;
                if (finite[i - c0])
                  std::copy(cg + (i - g0) * N, cg + (i - g0) * N + rows, ci);
                else
                  std::fill(ci, ci + rows, -1);
              }
              cg = cell.data();
              ldc = rows;
            }
            kern.cells_forward(cells.data() + (g0 - c0) * (K + 1) * W, (K + 1) * W, W, width,
                               cg, ldc, x + g0 * N + n0, N, g1 - g0, rows, width, g0 == 0, yb,
                               Op);
            // The terms left out (cell -1) by the dense formula.
            for (int64_t i = g0; i < g1; ++i) {
              const T* xi = x + i * N + n0;
              const int32_t* ci = cg + (i - g0) * ldc;
              const auto pi = one_input(ps, i, slabs.data() + (i - c0) * K * width);
              for (int64_t r0 = 0; r0 < rows; ++r0) {
                if (ci[r0] >= 0) continue;
                int64_t r1 = r0 + 1;  // a run of them at once (all, for a non-finite input)
                while (r1 < rows && ci[r1] < 0) ++r1;
                kern.dense_forward(xi + r0, r1 - r0, pi, nullptr, dense.data());
                for (int64_t r = r0; r < r1; ++r)
                  for (int64_t o = 0; o < width; ++o) yb[r * Op + o] += dense[(r - r0) * width + o];
                r0 = r1;
              }
            }
          }
          if (c1 == I && bp)
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t o = 0; o < width; ++o) yb[r * Op + o] += bp[o0 + o];
        }
      }
    }
  });
}

at::Tensor relu_sum_linear_breakpoints_cpu(const at::Tensor& x_in, const at::Tensor& m_in,
                                           const at::Tensor& b_in, const at::Tensor& a_in,
                                           const std::optional<at::Tensor>& bias_in) {
  check_relu_sum_linear_args("relu_sum_linear_breakpoints", x_in, m_in, b_in, a_in, bias_in);
  if (trivial(x_in, m_in, a_in)) {
    static const auto dense = c10::Dispatcher::singleton()
                                  .findSchemaOrThrow("relu_ext::relu_sum_linear", "")
                                  .typed<at::Tensor(const at::Tensor&, const at::Tensor&,
                                                    const at::Tensor&, const at::Tensor&,
                                                    const std::optional<at::Tensor>&)>();
    return dense.call(x_in, m_in, b_in, a_in, bias_in);
  }
  const LinearInputs in = cpu::linear_inputs(x_in, m_in, b_in, a_in, /*transpose=*/false);
  const auto bias = bias_in ? cpu::padded_rows(*bias_in, in.padded, in.compute) : at::Tensor();
  auto y = cpu::new_linear_cpu({in.n, in.padded}, in.compute);
  AT_DISPATCH_FLOATING_TYPES(in.compute, "relu_sum_linear_breakpoints_cpu",
                             [&] { forward<scalar_t>(in, bias, y); });
  return cpu::finish_rows(y, in.outputs, in.dtype);
}

// Input i's gradients: from its cell sums, plus (dense) those of its samples
// with a non-finite x.
template <class T>
struct InputWork {
  AlignedVector<T> slab, cells, sums;  // its a (K, Op), cell table, cell sums
  bool finite = false;               // m, b and a all finite
  std::vector<int64_t> extra;        // samples with a non-finite x, in order
};

template <class T>
void backward(const LinearInputs& in, const at::Tensor& g_t, unsigned grads, at::Tensor& dxt,
              at::Tensor& dm_t, at::Tensor& db_t, at::Tensor& da_t) {
  const auto& kern = cpu::kernels().linear<T>();
  const auto p = in.params<T>();
  const int64_t N = in.n, I = in.inputs, K = in.units, Op = in.padded, W = 2 * Op;
  const auto tabs = make_linear_tables<T>(in.m, in.b);
  const T* a = in.a.const_data_ptr<T>();
  const auto xt = transposed(in.x);
  const T* x = xt.const_data_ptr<T>();
  const T* g = g_t.const_data_ptr<T>();
  T* dx = dxt.defined() ? dxt.mutable_data_ptr<T>() : nullptr;
  T* dm = dm_t.mutable_data_ptr<T>();
  T* db = db_t.mutable_data_ptr<T>();
  T* da = da_t.defined() ? da_t.mutable_data_ptr<T>() : nullptr;
  const bool need_cells = grads & kGradX, need_sums = grads & (kGradM | kGradB | kGradA);
  const int64_t per_input =
      ((K + 1) * W * (int64_t{need_cells} + need_sums) + K * Op) * sizeof(T);
  const int64_t sub = chunk_inputs(per_input);
  // Samples per block: enough for a cell's group to average kGroupRows, so
  // that its sums' loads and stores are spread over many rows, while the
  // block's rows of g stay in L2.
  const int64_t block = std::clamp<int64_t>(
      kGroupRows * (K + 1), kBlock,
      std::clamp<int64_t>(kTableBytes / (Op * static_cast<int64_t>(sizeof(T))), kBlock,
                          cpu::kLinearBlockRows));
  // Each thread owns whole inputs and walks all samples in order for each:
  // every input's sums are the same on any number of threads.
  at::parallel_for(0, I, 1, [&](int64_t i0, int64_t i1) {
    std::vector<InputWork<T>> work(std::min(sub, i1 - i0));
    AlignedVector<double> scratch((K + 2) * W);
    AlignedVector<T> dat(da ? K * Op : 0);  // input i's da, (K, Op)
    std::vector<int32_t> cell(block);
    std::vector<int64_t> idx(block);
    CellGrouper grouper(K + 1);
    for (int64_t s0 = i0; s0 < i1; s0 += sub) {
      const int64_t s1 = std::min(i1, s0 + sub);
      for (int64_t i = s0; i < s1; ++i) {
        auto& w = work[i - s0];
        w.extra.clear();
        w.slab.resize(K * Op);
        w.finite = input_slab(a, in.outputs, I, K, i, 0, Op, w.slab.data()) && tabs.finite[i];
        if (!w.finite) continue;
        if (need_cells) {
          w.cells.resize((K + 1) * W);
          kern.cells(one_input(p, i, w.slab.data()), 0, tabs.inputs[i].table.order.data(),
                     tabs.inputs[i].table.rising.data(), scratch.data(), w.cells.data());
        }
        if (need_sums) w.sums.assign((K + 1) * W, T(0));
      }
      for (int64_t n0 = 0; n0 < N; n0 += block) {
        const int64_t rows = std::min(block, N - n0);
        for (int64_t i = s0; i < s1; ++i) {
          auto& w = work[i - s0];
          if (!w.finite) continue;
          const T* xi = x + i * N + n0;
          find_cells(kern, tabs.inputs[i], xi, rows, idx.data(), cell.data());
          for (int64_t r = 0; r < rows; ++r)
            if (cell[r] < 0) w.extra.push_back(n0 + r);
          kern.groups_backward(need_cells ? w.cells.data() : nullptr,
                               need_sums ? w.sums.data() : nullptr, W, Op,
                               grouper.group(cell.data(), rows), xi, g + n0 * Op, Op, Op, rows,
                               need_cells ? dx + i * N + n0 : nullptr);
        }
      }
      // The samples of input i with a non-finite x, gathered, by the dense formula.
      const auto add_extra = [&](const InputWork<T>& w, const LinearParams<T>& pi, int64_t i,
                                 T* dmi, T* dbi, T* dati) {
        if (w.extra.empty()) return;
        const int64_t e = static_cast<int64_t>(w.extra.size());
        std::vector<T> xe(e), ge(e * Op), dxe(e), dme(K), dbe(K);
        std::vector<T> date((grads & kGradA) ? K * Op : 0);
        for (int64_t j = 0; j < e; ++j) {
          xe[j] = x[i * N + w.extra[j]];
          std::copy(g + w.extra[j] * Op, g + (w.extra[j] + 1) * Op, ge.data() + j * Op);
        }
        kern.dense_backward(xe.data(), 1, ge.data(), e, pi, 0, grads, dxe.data(), 1, dme.data(),
                            dbe.data(), date.data());
        if (dx)
          for (int64_t j = 0; j < e; ++j) dx[i * N + w.extra[j]] = dxe[j];
        if (grads & kGradM)
          for (int64_t k = 0; k < K; ++k) dmi[k] += dme[k];
        if (grads & kGradB)
          for (int64_t k = 0; k < K; ++k) dbi[k] += dbe[k];
        if (grads & kGradA)
          for (int64_t j = 0; j < K * Op; ++j) dati[j] += date[j];
      };
      for (int64_t i = s0; i < s1; ++i) {
        auto& w = work[i - s0];
        T* dmi = dm + i * K;
        T* dbi = db + i * K;
        T* dati = da ? dat.data() : nullptr;
        const auto pi = one_input(p, i, w.slab.data());
        if (!w.finite) {
          kern.dense_backward(x + i * N, 1, g, N, pi, 0, grads, dx ? dx + i * N : nullptr, 1,
                              dmi, dbi, dati);
        } else {
          if (need_sums)
            kern.unit_grads(pi, 0, tabs.inputs[i].table.order.data(),
                            tabs.inputs[i].table.rising.data(), w.sums.data(), scratch.data(),
                            grads, dmi, dbi, dati);
          add_extra(w, pi, i, dmi, dbi, dati);
        }
        if (da) store_input_slab(dati, in.outputs, I, K, i, Op, da);
      }
    }
  });
}

LinearGrads relu_sum_linear_breakpoints_backward_cpu(const at::Tensor& grad_in,
                                                     const at::Tensor& x_in,
                                                     const at::Tensor& m_in,
                                                     const at::Tensor& b_in,
                                                     const at::Tensor& a_in,
                                                     std::array<bool, 4> output_mask) {
  const char* op = "relu_sum_linear_breakpoints_backward";
  check_relu_sum_linear_args(op, x_in, m_in, b_in, a_in, std::nullopt);
  check_linear_grad(op, grad_in, x_in, a_in);
  if (trivial(x_in, m_in, a_in)) {
    static const auto dense =
        c10::Dispatcher::singleton()
            .findSchemaOrThrow("relu_ext::relu_sum_linear_backward", "")
            .typed<LinearGrads(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                               const at::Tensor&, const at::Tensor&, std::array<bool, 4>)>();
    return dense.call(grad_in, x_in, m_in, b_in, a_in, output_mask);
  }
  const unsigned grads = cpu::grad_bits(output_mask);
  const LinearInputs in = cpu::linear_inputs(x_in, m_in, b_in, a_in, /*transpose=*/false);
  const int64_t I = in.inputs, K = in.units;
  const auto g = cpu::padded_rows(grad_in, in.padded, in.compute);
  // dx as (I, N), each input's samples contiguous, transposed at the end.
  auto dxt = (grads & kGradX) ? cpu::new_linear_cpu({I, in.n}, in.compute) : at::Tensor();
  auto dm = cpu::new_linear_cpu({I, K}, in.compute);
  auto db = cpu::new_linear_cpu({I, K}, in.compute);
  auto da = (grads & kGradA) ? cpu::new_linear_cpu({in.outputs, I, K}, in.compute) : at::Tensor();
  if (grads)
    AT_DISPATCH_FLOATING_TYPES(in.compute, "relu_sum_linear_breakpoints_backward_cpu",
                               [&] { backward<scalar_t>(in, g, grads, dxt, dm, db, da); });
  const auto dx = dxt.defined() ? transposed(dxt) : at::Tensor();
  return cpu::finish_grads(in, grads, dx, dm, db, at::Tensor(), da);
}

TORCH_LIBRARY_IMPL(relu_ext, CPU, lib) {
  lib.impl("relu_sum_linear_breakpoints", &relu_sum_linear_breakpoints_cpu);
  lib.impl("relu_sum_linear_breakpoints_backward", &relu_sum_linear_breakpoints_backward_cpu);
}

}  // namespace
}  // namespace relu_ext::breakpoints
