// relu_ext's operators called through the dispatcher, as the derivative
// formulas call them: every call goes through autograd, functorch and the
// backend choice again, so a derivative is itself differentiable (double
// backward, jacfwd of jacrev, ...) and runs on whatever device x is on.
#pragma once

#include <array>
#include <optional>
#include <tuple>

#include <ATen/core/Tensor.h>

namespace relu_ext::calls {

using OptTensor = std::optional<at::Tensor>;
// (dx, dm, db, da), each present only where asked for.
using Grads = std::tuple<OptTensor, OptTensor, OptTensor, OptTensor>;

at::Tensor relu_sum(const at::Tensor& x, const at::Tensor& m, const at::Tensor& b,
                    const OptTensor& a);
Grads relu_sum_backward(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& m,
                        const at::Tensor& b, const OptTensor& a, std::array<bool, 4> mask);
at::Tensor relu_sum_breakpoints(const at::Tensor& x, const at::Tensor& m,
                                const at::Tensor& b, const OptTensor& a);
Grads relu_sum_breakpoints_backward(const at::Tensor& grad, const at::Tensor& x,
                                    const at::Tensor& m, const at::Tensor& b,
                                    const OptTensor& a, std::array<bool, 4> mask);
at::Tensor step_sum(const at::Tensor& x, const at::Tensor& m, const at::Tensor& b,
                    const at::Tensor& w);
at::Tensor relu_sum_jvp(const at::Tensor& x, const at::Tensor& m, const at::Tensor& b,
                        const OptTensor& a, const OptTensor& x_t, const OptTensor& m_t,
                        const OptTensor& b_t, const OptTensor& a_t);

}  // namespace relu_ext::calls
