// relu_sum_auto: the algorithm chosen per call, in C++, where the choice costs
// nothing next to the op; a composite, so autograd, torch.func and
// torch.compile see the dense or the breakpoint op it calls.
#include "algorithm.h"

#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "autograd/op_calls.h"

namespace relu_ext::algorithm {
namespace {

at::Tensor relu_sum_auto(const at::Tensor& x, const at::Tensor& m, const at::Tensor& b,
                         const calls::OptTensor& a) {
  // Only CPU tensors have the breakpoint kernels. A malformed m (no dims)
  // goes to the dense op, which says what is wrong with it.
  if (x.is_cpu() && m.dim() >= 1 && breakpoints_cheaper(x.sym_numel(), m.sym_size(-1))) {
    return calls::relu_sum_breakpoints(x, m, b, a);
  }
  return calls::relu_sum(x, m, b, a);
}

}  // namespace

TORCH_LIBRARY_IMPL(relu_ext, CompositeImplicitAutograd, lib) {
  lib.impl("relu_sum_auto", &relu_sum_auto);
}

}  // namespace relu_ext::algorithm
