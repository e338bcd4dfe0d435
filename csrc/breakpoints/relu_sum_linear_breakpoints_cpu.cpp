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
// dense op.
#include <algorithm>
#include <array>
#include <cmath>
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
// Samples located and gathered together.
constexpr int64_t kBlock = 64;
// Outputs per forward task: the cell forward's register tile.
template <class T>
constexpr int64_t kOutSlice = 512 / sizeof(T);

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
  const auto xt = in.x.t().contiguous();  // (I, N): an input's samples contiguous
  const T* x = xt.const_data_ptr<T>();
  const T* bp = bias.defined() ? bias.const_data_ptr<T>() : nullptr;
  T* yp = y.mutable_data_ptr<T>();
  // One parallel region: tasks are (slice of outputs, part of the samples),
  // each building the cell tables of its outputs alone (parts of one slice
  // build them twice), so there is no barrier per chunk of inputs. y[n, o]
  // sums its inputs in order in every case: bitwise the same however split.
  const int64_t slices = (Op + kOutSlice<T> - 1) / kOutSlice<T>;
  const int64_t parts = std::max<int64_t>(
      1, std::min((at::get_num_threads() + slices - 1) / slices, (N + kBlock - 1) / kBlock));
  at::parallel_for(0, slices * parts, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t o0 = (t / parts) * kOutSlice<T>, part = t % parts;
      const int64_t width = std::min(kOutSlice<T>, Op - o0), W = 2 * width;
      const int64_t n_begin = N * part / parts, n_end = N * (part + 1) / parts;
      LinearParams<T> ps = p;
      ps.outputs = std::min(width, O - o0);
      ps.padded = width;
      const int64_t chunk = std::min(I, chunk_inputs(((K + 1) * W + K * width) * sizeof(T)));
      std::vector<T> cells(chunk * (K + 1) * W), slabs(chunk * K * width), xs(kBlock * chunk);
      std::vector<double> scratch((K + 2) * W);
      std::vector<uint8_t> finite(chunk);
      std::vector<const T*> rowp(kBlock * chunk);
      std::vector<T> dense;
      int64_t idx[kBlock];
      for (int64_t c0 = 0; c0 < I; c0 += chunk) {
        const int64_t c1 = std::min(I, c0 + chunk), count = c1 - c0;
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
          // Dense terms first, so that their rows do not move once pointed to.
          int64_t dense_count = 0;
          for (int64_t i = c0; i < c1; ++i)
            for (int64_t r = 0; r < rows; ++r)
              dense_count += !finite[i - c0] || !std::isfinite(x[i * N + n0 + r]);
          if (static_cast<int64_t>(dense.size()) < dense_count * W) dense.resize(dense_count * W);
          int64_t d = 0;
          for (int64_t i = c0; i < c1; ++i) {
            const T* xi = x + i * N + n0;
            const T* table = cells.data() + (i - c0) * (K + 1) * W;
            if (finite[i - c0]) tabs.inputs[i].index.locate(xi, rows, idx);
            for (int64_t r = 0; r < rows; ++r) {
              const int64_t e = r * count + (i - c0);
              if (finite[i - c0] && std::isfinite(xi[r])) {
                rowp[e] = table + idx[r] * W;
                xs[e] = xi[r];
              } else {
                // The dense value as alpha, beta = 0 at x = 0: y gains it exactly.
                T* row = dense.data() + (d++) * W;
                kern.dense_forward(xi + r, 1,
                                   one_input(ps, i, slabs.data() + (i - c0) * K * width),
                                   nullptr, row);
                std::fill(row + width, row + W, T(0));
                rowp[e] = row;
                xs[e] = T(0);
              }
            }
          }
          kern.cells_forward(rowp.data(), xs.data(), rows, count, width, c0 == 0,
                             c1 == I && bp ? bp + o0 : nullptr, yp + n0 * Op + o0, Op);
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
  std::vector<T> slab, cells, sums;  // its a (K, Op), cell table, cell sums
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
  const auto xt = in.x.t().contiguous();
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
  // Each thread owns whole inputs and walks all samples in order for each:
  // every input's sums are the same on any number of threads.
  at::parallel_for(0, I, 1, [&](int64_t i0, int64_t i1) {
    std::vector<InputWork<T>> work(std::min(sub, i1 - i0));
    std::vector<double> scratch((K + 2) * W);
    std::vector<T> dat(da ? K * Op : 0);  // input i's da, (K, Op)
    std::vector<int32_t> cell(kBlock);
    int64_t idx[kBlock];
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
      for (int64_t n0 = 0; n0 < N; n0 += kBlock) {
        const int64_t rows = std::min(kBlock, N - n0);
        for (int64_t i = s0; i < s1; ++i) {
          auto& w = work[i - s0];
          if (!w.finite) continue;
          const T* xi = x + i * N + n0;
          tabs.inputs[i].index.locate(xi, rows, idx);
          for (int64_t r = 0; r < rows; ++r) {
            const bool ok = std::isfinite(xi[r]);
            cell[r] = ok ? static_cast<int32_t>(idx[r]) : -1;
            if (!ok) w.extra.push_back(n0 + r);
          }
          kern.cells_backward(xi, cell.data(), g + n0 * Op, rows, Op, w.cells.data(),
                              need_sums ? w.sums.data() : nullptr,
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
  const auto dx = dxt.defined() ? dxt.t().contiguous() : at::Tensor();
  return cpu::finish_grads(in, grads, dx, dm, db, at::Tensor(), da);
}

TORCH_LIBRARY_IMPL(relu_ext, CPU, lib) {
  lib.impl("relu_sum_linear_breakpoints", &relu_sum_linear_breakpoints_cpu);
  lib.impl("relu_sum_linear_breakpoints_backward", &relu_sum_linear_breakpoints_backward_cpu);
}

}  // namespace
}  // namespace relu_ext::breakpoints
