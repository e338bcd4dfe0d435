// The derivatives of relu_ext's operators beyond what the fused backward
// kernels compute: forward mode (JVPs) and the derivatives of the backward
// (double backward, Hessians). derivatives.cpp derives them; the autograd
// kernels (autograd.cpp) and relu_ext.ReLUSumFunction use them.
#pragma once

#include <array>

#include "op_calls.h"

namespace relu_ext::derivatives {

using calls::Grads;
using calls::OptTensor;

// The tangent of relu_sum(x, m, b, a) along (x_t, m_t, b_t, a_t); absent
// tangents are zero. Also registered as the operator relu_ext::relu_sum_jvp.
at::Tensor relu_sum_jvp(const at::Tensor& x, const at::Tensor& m, const at::Tensor& b,
                        const OptTensor& a, const OptTensor& x_t, const OptTensor& m_t,
                        const OptTensor& b_t, const OptTensor& a_t);

// Gradients of <dx, dx_bar> + <dm, dm_bar> + <db, db_bar> + <da, da_bar>,
// where (dx, dm, db, da) = relu_sum_backward(grad, x, m, b, a), with respect
// to (grad, x, m, b, a): each computed only if `need` asks for it.
std::array<at::Tensor, 5> relu_sum_backward_vjp(const at::Tensor& grad, const at::Tensor& x,
                                                const at::Tensor& m, const at::Tensor& b,
                                                const OptTensor& a, const Grads& bars,
                                                std::array<bool, 5> need);

// The tangents of relu_sum_backward's outputs along (grad_t, x_t, m_t, b_t,
// a_t); only the outputs in `outputs` (the op's output_mask) are computed.
Grads relu_sum_backward_jvp(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& m,
                            const at::Tensor& b, const OptTensor& a, std::array<bool, 4> outputs,
                            const OptTensor& grad_t, const OptTensor& x_t,
                            const OptTensor& m_t, const OptTensor& b_t, const OptTensor& a_t);

// step_sum is linear in w and piecewise constant in x, m, b: its gradient
// with respect to w is the mask's sum over the inputs, Σ_n H(p_nk)·bar_n.
at::Tensor step_sum_vjp_w(const at::Tensor& bar, const at::Tensor& x, const at::Tensor& m,
                          const at::Tensor& b);

}  // namespace relu_ext::derivatives
