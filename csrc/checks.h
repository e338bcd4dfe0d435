// Argument checks shared by the CPU and CUDA launchers. They raise the Python
// exception a user expects (TypeError for a dtype, ValueError for a shape or a
// device) with a message naming the argument, what was expected and what was
// given (docs/contract.md, "Arguments"). relu_ext/ops/_validation.py holds the same checks for the fake kernels;
// tests/ops/test_bad_inputs.py holds both to the same messages.
#pragma once

#include <optional>

#include <ATen/core/Tensor.h>

namespace relu_ext {

// x floating (float16, bfloat16, float32, float64); m, b, a on x's device,
// all of one dtype: x's, or float32 when x is float16 or bfloat16 (mixed
// precision: activation parameters stay float32 like a norm layer's, the
// output has x's dtype, the arithmetic is float32 either way). Any other mix,
// float64 x with float32 units included, is a TypeError naming both dtypes.
// m 1-D (K,), shared by every element of x, or 2-D (C, K), one row per
// channel, and then x 3-D (outer, C, inner): x[o, c, i] uses row c (the
// canonical layout relu_ext.relu_sum maps any x and dim onto). b and a the
// shape of m. `a_name` is what the op calls its per-unit weights ("w" for
// step_sum).
void check_relu_sum_args(const char* op, const at::Tensor& x, const at::Tensor& m,
                         const at::Tensor& b, const std::optional<at::Tensor>& a,
                         const char* a_name = "a");

// The incoming gradient of relu_sum_backward: x's dtype, shape and device.
void check_grad(const char* op, const at::Tensor& grad, const at::Tensor& x);

// relu_sum_linear's arguments: x 2-D (N, I) floating; m, b (I, K); a (O, I, K);
// bias (O,) or None; the parameters of one dtype (x's, or float32 when x is
// 16-bit) and on x's device, as for relu_sum.
void check_relu_sum_linear_args(const char* op, const at::Tensor& x, const at::Tensor& m,
                                const at::Tensor& b, const at::Tensor& a,
                                const std::optional<at::Tensor>& bias);

// The incoming gradient of relu_sum_linear_backward: x's dtype and device,
// shape (N, O).
void check_linear_grad(const char* op, const at::Tensor& grad, const at::Tensor& x,
                       const at::Tensor& a);

inline bool is_16bit(at::ScalarType t) { return t == at::kHalf || t == at::kBFloat16; }

// The dtype float32 and friends use for arithmetic (float for the 16-bit
// types: accumulation is never below float32, docs/contract.md, "Precision").
inline at::ScalarType compute_dtype(at::ScalarType t) {
  return t == at::kDouble ? at::kDouble : at::kFloat;
}

}  // namespace relu_ext
