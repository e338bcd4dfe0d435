// What both relu_sum_linear launchers (dense: relu_sum_linear_cpu.cpp,
// breakpoints: ../breakpoints/relu_sum_linear_breakpoints_cpu.cpp) make of the
// op's tensors before a kernel reads them, and of the kernels' results after:
// copies in the compute dtype of x-, grad- or parameter size, never N·I·K or
// N·I·O (docs/how-it-works.md).
#pragma once

#include <array>
#include <optional>

#include <ATen/ATen.h>
#include <ATen/EmptyTensor.h>

#include "../checks.h"
#include "../kernel_inputs.h"
#include "kernel_table.h"

namespace relu_ext::cpu {

struct LinearInputs {
  at::ScalarType dtype, param_dtype, compute;
  at::Tensor x;     // (N, I), compute dtype, contiguous
  at::Tensor m, b;  // (I, K), compute dtype, contiguous
  at::Tensor a_t;   // (I, K, Op): a transposed, outputs innermost, zero-padded
  at::Tensor a;     // (O, I, K), compute dtype, contiguous, when a_t is not made
  int64_t n, inputs, units, outputs, padded;

  template <class T>
  LinearParams<T> params() const {
    return {m.const_data_ptr<T>(), b.const_data_ptr<T>(),
            a_t.defined() ? a_t.const_data_ptr<T>() : nullptr,
            inputs, units, outputs, padded};
  }
};

inline at::Tensor new_linear_cpu(at::IntArrayRef sizes, at::ScalarType dtype) {
  return at::detail::empty_cpu(sizes, dtype);
}

// Rows of width O copied into rows of width Op, the padding zero.
inline at::Tensor padded_rows(const at::Tensor& t, int64_t padded, at::ScalarType compute) {
  const int64_t width = t.size(-1);
  if (width == padded) return as_kernel_input(t, compute);
  auto sizes = t.sizes().vec();
  sizes.back() = padded;
  auto out = at::zeros(sizes, t.options().dtype(compute));
  out.narrow(-1, 0, width).copy_(t);
  return out;
}

// transpose: a as a_t; else as a (the breakpoint launchers transpose one
// input's slab at a time, on the threads).
inline LinearInputs linear_inputs(const at::Tensor& x, const at::Tensor& m,
                                  const at::Tensor& b, const at::Tensor& a,
                                  bool transpose = true) {
  LinearInputs in;
  in.dtype = x.scalar_type();
  in.param_dtype = m.scalar_type();
  in.compute = compute_dtype(in.dtype);
  in.x = as_kernel_input(x, in.compute);
  in.m = as_kernel_input(m, in.compute);
  in.b = as_kernel_input(b, in.compute);
  in.n = x.size(0);
  in.inputs = m.size(0);
  in.units = m.size(1);
  in.outputs = a.size(0);
  const int64_t pad = in.compute == at::kDouble ? kLinearPad<double> : kLinearPad<float>;
  in.padded = (in.outputs + pad - 1) / pad * pad;
  if (transpose) {
    in.a_t = padded_rows(as_dtype(a, in.compute).permute({1, 2, 0}), in.padded, in.compute);
  } else {
    in.a = as_kernel_input(a, in.compute);
  }
  return in;
}

// The kernels' (N, Op) y as the op's (N, O) y in x's dtype.
inline at::Tensor finish_rows(const at::Tensor& buf, int64_t width, at::ScalarType dtype) {
  auto y = buf.size(-1) == width ? buf : buf.narrow(-1, 0, width);
  return as_dtype(y, dtype).contiguous();
}

// The kernels' dat (I, K, Op) as da (O, I, K) in the parameters' dtype.
inline at::Tensor finish_da(const at::Tensor& dat, int64_t outputs, at::ScalarType dtype) {
  return as_dtype(dat.narrow(2, 0, outputs).permute({2, 0, 1}), dtype).contiguous();
}

// output_mask as kernel_table.h's bits.
inline unsigned grad_bits(std::array<bool, 4> mask) {
  return (mask[0] ? kGradX : 0u) | (mask[1] ? kGradM : 0u) | (mask[2] ? kGradB : 0u) |
         (mask[3] ? kGradA : 0u);
}

using LinearGrads = std::tuple<std::optional<at::Tensor>, std::optional<at::Tensor>,
                               std::optional<at::Tensor>, std::optional<at::Tensor>>;

// The requested gradients from the compute-dtype buffers (dx (N, I), dm and db
// (I, K), dat (I, K, Op), or da (O, I, K) when given as `da`), None where not
// requested.
inline LinearGrads finish_grads(const LinearInputs& in, unsigned grads, const at::Tensor& dx,
                                const at::Tensor& dm, const at::Tensor& db,
                                const at::Tensor& dat, const at::Tensor& da = {}) {
  LinearGrads out;
  if (grads & kGradX) std::get<0>(out) = as_dtype(dx, in.dtype);
  if (grads & kGradM) std::get<1>(out) = as_dtype(dm, in.param_dtype);
  if (grads & kGradB) std::get<2>(out) = as_dtype(db, in.param_dtype);
  if (grads & kGradA)
    std::get<3>(out) = da.defined() ? as_dtype(da, in.param_dtype)
                                    : finish_da(dat, in.outputs, in.param_dtype);
  return out;
}

}  // namespace relu_ext::cpu
