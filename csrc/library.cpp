// The operator schemas: the contract every backend implements
// (cpu/relu_sum_cpu.cpp, cuda/relu_sum_cuda.cu) and that relu_ext/ops/_relu_sum.py gives
// fake kernels and autograd.
#include <torch/library.h>

TORCH_LIBRARY(relu_ext, lib) {
  // y = sum_k a_k relu(m_k x + b_k), elementwise over x; a = None means a_k = 1.
  lib.def("relu_sum(Tensor x, Tensor m, Tensor b, Tensor? a) -> Tensor");
  // The gradients of relu_sum with respect to (x, m, b, a), each computed
  // only if its output_mask entry is set (and, for a, if a is given);
  // None otherwise.
  lib.def(
      "relu_sum_backward(Tensor grad, Tensor x, Tensor m, Tensor b, Tensor? a, "
      "bool[4] output_mask) -> (Tensor?, Tensor?, Tensor?, Tensor?)");
  // The same two functions by the breakpoint algorithm (csrc/breakpoints/):
  // O((N + K) log K) instead of O(N K), equal to the above to rounding,
  // except that a float64 x within half an ulp of a breakpoint -b/m may be
  // put on the other side of it.
  lib.def("relu_sum_breakpoints(Tensor x, Tensor m, Tensor b, Tensor? a) -> Tensor");
  lib.def(
      "relu_sum_breakpoints_backward(Tensor grad, Tensor x, Tensor m, Tensor b, "
      "Tensor? a, bool[4] output_mask) -> (Tensor?, Tensor?, Tensor?, Tensor?)");
  // relu_sum by whichever of the two is cheaper for the sizes (algorithm.h);
  // a composite of the above.
  lib.def("relu_sum_auto(Tensor x, Tensor m, Tensor b, Tensor? a) -> Tensor");
  // sum_k w_k H(m_k x + b_k), elementwise over x, where H is relu's
  // derivative as torch takes it (0 where m x + b <= 0, else 1, also for NaN):
  // the building block of relu_sum's higher derivatives
  // (autograd/derivatives.cpp).
  lib.def("step_sum(Tensor x, Tensor m, Tensor b, Tensor w) -> Tensor");
  // The forward-mode derivative of relu_sum along tangents of its inputs
  // (absent ones are zero); a composite of the ops above.
  lib.def(
      "relu_sum_jvp(Tensor x, Tensor m, Tensor b, Tensor? a, Tensor? x_t, Tensor? m_t, "
      "Tensor? b_t, Tensor? a_t) -> Tensor");
}
