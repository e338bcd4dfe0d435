// What the CPU and CUDA launchers do to the op's tensors before a kernel
// reads them.
#pragma once

#include <optional>

#include <ATen/core/Tensor.h>

#include "units.h"

namespace relu_ext {

// t in `dtype`: t itself when it already is. Checked here rather than left
// to Tensor::to, which returns t too but only after a trip through the
// dispatcher: several a call of the op, a visible part of a training step at
// the lesson's size (docs/how-it-works.md, "What a small call costs").
inline at::Tensor as_dtype(const at::Tensor& t, at::ScalarType dtype) {
  return t.scalar_type() == dtype ? t : t.to(dtype);
}

// In the compute dtype and contiguous; no copy when already so.
inline at::Tensor as_kernel_input(const at::Tensor& t, at::ScalarType dtype) {
  return as_dtype(t, dtype).contiguous();
}

// Raw pointers to parameters already made kernel inputs.
template <class T>
Units<T> units_of(const at::Tensor& m, const at::Tensor& b, const std::optional<at::Tensor>& a) {
  return {m.const_data_ptr<T>(), b.const_data_ptr<T>(), a ? a->const_data_ptr<T>() : nullptr,
          m.numel()};
}

}  // namespace relu_ext
