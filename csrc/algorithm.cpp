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
  return auto_uses_breakpoints(x, m) ? calls::relu_sum_breakpoints(x, m, b, a)
                                     : calls::relu_sum(x, m, b, a);
}

}  // namespace

TORCH_LIBRARY_IMPL(relu_ext, CompositeImplicitAutograd, lib) {
  lib.impl("relu_sum_auto", &relu_sum_auto);
}

}  // namespace relu_ext::algorithm
