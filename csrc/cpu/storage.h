// How the CPU kernels see a tensor's elements: float and double as
// themselves; float16 and bfloat16 as their bits (Bits16), computed in
// float32 by the instruction set's HalfKernels (kernel_table.h), which read
// and write 16-bit arrays directly and convert a block at a time. Shared by
// the dense launchers (relu_sum_cpu.cpp) and the breakpoint algorithm.
#pragma once

#include <type_traits>

#include <ATen/core/Tensor.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "kernel_table.h"

namespace relu_ext::cpu {

// Storage<scalar_t>: S, the element type the kernels take; A, the compute
// (accumulation) type; and of(table), the table's kernels for them (the same
// members, forward, step, backward and their column forms, for every type).
template <class T>
struct Storage {
  using S = T;
  using A = T;
  static const TypedKernels<T>& of(const KernelTable& t) { return t.typed<T>(); }
};

template <const HalfKernels KernelTable::*kFormat>
struct Storage16 {
  using S = Bits16;
  using A = float;
  static const HalfKernels& of(const KernelTable& t) { return t.*kFormat; }
  static auto widen(const KernelTable& t) { return (t.*kFormat).widen; }
  static auto narrow(const KernelTable& t) { return (t.*kFormat).narrow; }
};
template <>
struct Storage<c10::Half> : Storage16<&KernelTable::f16> {};
template <>
struct Storage<c10::BFloat16> : Storage16<&KernelTable::bf16> {};

// Whether scalar_t's elements need converting (16-bit) before arithmetic.
template <class T>
constexpr bool kConverted = !std::is_same_v<typename Storage<T>::S, typename Storage<T>::A>;

template <class T>
const typename Storage<T>::S* data_of(const at::Tensor& t) {
  return reinterpret_cast<const typename Storage<T>::S*>(t.const_data_ptr<T>());
}
template <class T>
typename Storage<T>::S* mutable_data_of(at::Tensor& t) {
  return reinterpret_cast<typename Storage<T>::S*>(t.mutable_data_ptr<T>());
}

}  // namespace relu_ext::cpu
