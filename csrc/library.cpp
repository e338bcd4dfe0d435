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

  // The layer whose every edge is a sum of rectified linear units:
  //     y[n, o] = bias[o] + sum_i sum_k a[o, i, k] relu(m[i, k] x[n, i] + b[i, k])
  // x (N, I); m, b (I, K): input i's K units, shared by its O edges; a (O, I, K)
  // the edges' weights; bias (O,) or None. relu_ext.relu_sum_linear maps x of
  // any shape (..., I) onto (N, I).
  lib.def("relu_sum_linear(Tensor x, Tensor m, Tensor b, Tensor a, Tensor? bias) -> Tensor");
  // The gradients with respect to (x, m, b, a), each computed only if its
  // output_mask entry is set, None otherwise (bias's is grad's sum over rows,
  // taken by the caller).
  lib.def(
      "relu_sum_linear_backward(Tensor grad, Tensor x, Tensor m, Tensor b, Tensor a, "
      "bool[4] output_mask) -> (Tensor?, Tensor?, Tensor?, Tensor?)");
  // The same two by the breakpoint algorithm: per input, its K sorted
  // breakpoints cut the line into K + 1 cells on each of which every edge is
  // one line, so a sample costs I·O multiply-adds whatever K is.
  lib.def(
      "relu_sum_linear_breakpoints(Tensor x, Tensor m, Tensor b, Tensor a, Tensor? bias) "
      "-> Tensor");
  lib.def(
      "relu_sum_linear_breakpoints_backward(Tensor grad, Tensor x, Tensor m, Tensor b, "
      "Tensor a, bool[4] output_mask) -> (Tensor?, Tensor?, Tensor?, Tensor?)");
}
